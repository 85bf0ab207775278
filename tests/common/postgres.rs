//! A throwaway PostgreSQL cluster for a test: `initdb` into a temporary directory, `pg_ctl
//! start` on a free loopback port, stopped and deleted when dropped. Found through Debian's
//! server binaries (`/usr/lib/postgresql/*/bin`, or `REPLIKATIV_PG_BIN`). `initdb` refuses to
//! run as root, so as root the cluster runs as the `postgres` user (`runuser`).
//!
//! Without the binaries, [`PgCluster::start`] fails the test when `CI` is set and otherwise
//! prints loudly that the test was skipped and how to enable it, returning `None`.
//!
//! The superuser `postgres` has the password [`PASSWORD`] over TCP (SCRAM); local socket
//! connections are trusted. `ssl = on` with a certificate for 127.0.0.1 signed by
//! [`PgCluster::ca`]; the role `tls_only` may connect over TLS only.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The superuser's password.
pub const PASSWORD: &str = "throwaway-secret";

/// A running cluster.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

fn server_bin() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("REPLIKATIV_PG_BIN") {
        let dir = PathBuf::from(dir);
        return dir.join("initdb").exists().then_some(dir);
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl PgCluster {
    /// Starts a cluster for `test`, or says loudly why the test is skipped (see the module).
    pub fn start(test: &str) -> Option<PgCluster> {
        Self::start_with(test, "")
    }

    /// [`start`](Self::start) with `conf` appended to `postgresql.conf` (later lines win).
    pub fn start_with(test: &str, conf: &str) -> Option<PgCluster> {
        let Some(bin) = server_bin() else {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI: no PostgreSQL server binaries under /usr/lib/postgresql/*/bin for {test} (.ci/run installs Debian's postgresql)"
            );
            eprintln!(
                "\n=== SKIPPED {test}: no PostgreSQL server binaries (/usr/lib/postgresql/*/bin).\n=== Install them to run it: apt-get install postgresql (or set REPLIKATIV_PG_BIN).\n"
            );
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("replikativ-pg-")
            .tempdir()
            .expect("temp dir");
        let as_postgres = is_root();
        let cluster = PgCluster {
            dir,
            bin,
            port: crate::common::free_port(),
            as_postgres,
        };
        if as_postgres {
            chown_postgres(cluster.dir.path());
        }
        let pwfile = cluster.dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).expect("password file");
        if as_postgres {
            chown_postgres(&pwfile);
        }
        cluster.run_ok(
            "initdb",
            &[
                "-D",
                cluster.data().to_str().expect("utf-8"),
                "-U",
                "postgres",
                "--pwfile",
                pwfile.to_str().expect("utf-8"),
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
        );
        cluster.write_tls();
        let base = format!(
            "port = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nmax_connections = 50\n",
            cluster.port,
            cluster.dir.path().display()
        );
        append(
            &cluster.data().join("postgresql.conf"),
            &format!("{base}{conf}\n"),
        );
        let hba = cluster.data().join("pg_hba.conf");
        let old = std::fs::read_to_string(&hba).expect("pg_hba.conf");
        std::fs::write(
            &hba,
            format!("hostnossl all tls_only 127.0.0.1/32 reject\n{old}"),
        )
        .expect("pg_hba.conf");
        cluster.start_server();
        cluster.psql(
            "postgres",
            "CREATE ROLE tls_only LOGIN PASSWORD 'tls-secret'",
        );
        Some(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL for `user` (no password: it comes from `PGPASSWORD` or a password file).
    pub fn url(&self, user: &str, db: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{db}", self.port)
    }

    /// The CA certificate (PEM) that signed the server's certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    fn run_ok(&self, program: &str, args: &[&str]) -> Output {
        let out = self
            .command(program)
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("running {program}: {e}"));
        assert!(
            out.status.success(),
            "{program} {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// `pg_ctl start`, waiting until it accepts connections.
    pub fn start_server(&self) {
        let log = self.dir.path().join("server.log");
        self.run_ok(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().expect("utf-8"),
                "-l",
                log.to_str().expect("utf-8"),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
    }

    /// `pg_ctl stop -m immediate`: the server dies without a checkpoint, as in a crash.
    pub fn stop_immediate(&self) {
        self.run_ok(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().expect("utf-8"),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }

    /// `createdb NAME`, as the superuser.
    pub fn createdb(&self, name: &str) {
        self.run_ok(
            "createdb",
            &[
                "-h",
                &self.socket_dir(),
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                name,
            ],
        );
    }

    fn socket_dir(&self) -> String {
        self.dir.path().to_str().expect("utf-8").to_string()
    }

    /// Runs `sql` in `db` as the superuser (over the socket), returning psql's unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = self.run_ok(
            "psql",
            &[
                "-h",
                &self.socket_dir(),
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-v",
                "ON_ERROR_STOP=1",
                "-XAtq",
                "-c",
                sql,
            ],
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A self-signed CA and a server certificate for 127.0.0.1 and localhost, in the data
    /// directory (the key private to the server's user, as Postgres demands).
    fn write_tls(&self) {
        let ca_key = rcgen::KeyPair::generate().expect("ca key");
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).expect("ca");
        let key = rcgen::KeyPair::generate().expect("server key");
        let params = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .expect("params");
        let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
        let cert = params.signed_by(&key, &issuer).expect("server cert");
        std::fs::write(self.ca(), ca.pem()).expect("ca.crt");
        let (crt, pem) = (
            self.data().join("server.crt"),
            self.data().join("server.key"),
        );
        std::fs::write(&crt, cert.pem()).expect("server.crt");
        std::fs::write(&pem, key.serialize_pem()).expect("server.key");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&pem, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        if self.as_postgres {
            chown_postgres(&crt);
            chown_postgres(&pem);
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl")
            .args([
                "-D",
                self.data().to_str().unwrap_or_default(),
                "-m",
                "immediate",
                "stop",
            ])
            .output();
        // The temporary directory goes with `self.dir`.
    }
}

fn append(path: &Path, text: &str) {
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open for append");
    f.write_all(text.as_bytes()).expect("append");
}

fn chown_postgres(path: &Path) {
    let out = Command::new("chown")
        .arg("postgres:postgres")
        .arg(path)
        .output()
        .expect("chown");
    assert!(out.status.success(), "chown {}: {out:?}", path.display());
}
