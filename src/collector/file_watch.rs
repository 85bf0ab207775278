//! Waiting for a followed file to grow: change notification (Linux inotify) so an appended
//! line is read at once, with a bounded wait as the fallback, so a missed or unavailable
//! notification only delays reading by [`FOLLOW_POLL`](super::source::FOLLOW_POLL).
//!
//! Written on `libc` (already a dependency) rather than a watcher crate: one file, one watch,
//! a `poll(2)` with a timeout. Network filesystems do not notify of other machines' writes;
//! `REPLIKATIV_FOLLOW_POLL=1` turns notification off (then the file is polled).

use std::path::Path;
use std::time::Duration;

/// Waits for changes of one file.
pub(super) struct FileWatch {
    #[cfg(target_os = "linux")]
    inotify: Option<linux::Inotify>,
}

impl FileWatch {
    /// Watches `path`; falls back to plain timed waits when notification is unavailable or
    /// turned off (said once in the log).
    pub(super) fn new(path: &Path) -> FileWatch {
        if std::env::var_os("REPLIKATIV_FOLLOW_POLL").is_some_and(|v| v != "0") {
            tracing::info!(path = %path.display(), "REPLIKATIV_FOLLOW_POLL: polling the followed file");
            return FileWatch::polling();
        }
        #[cfg(target_os = "linux")]
        {
            match linux::Inotify::watch(path) {
                Ok(inotify) => FileWatch {
                    inotify: Some(inotify),
                },
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "no change notification for the followed file; polling it");
                    FileWatch::polling()
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            tracing::info!(path = %path.display(), "polling the followed file (no change notification on this platform)");
            FileWatch::polling()
        }
    }

    /// A watch that only waits.
    pub(super) fn polling() -> FileWatch {
        FileWatch {
            #[cfg(target_os = "linux")]
            inotify: None,
        }
    }

    /// Returns when the file may have changed, or after `timeout` at the latest.
    pub(super) fn wait(&mut self, timeout: Duration) {
        #[cfg(target_os = "linux")]
        if let Some(inotify) = &mut self.inotify {
            if let Err(e) = inotify.wait(timeout) {
                tracing::warn!(error = %e, "change notification failed; polling the followed file");
                self.inotify = None;
                std::thread::sleep(timeout);
            }
            return;
        }
        std::thread::sleep(timeout);
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::time::Duration;

    /// An inotify instance with one watch on a file.
    pub(super) struct Inotify {
        fd: OwnedFd,
    }

    impl Inotify {
        pub(super) fn watch(path: &Path) -> io::Result<Inotify> {
            // SAFETY: plain syscall; the result is checked before use.
            let raw = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `raw` is a fresh descriptor that nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            let mut bytes = path.as_os_str().as_bytes().to_vec();
            if bytes.contains(&0) {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"));
            }
            bytes.push(0);
            let mask = libc::IN_MODIFY
                | libc::IN_CLOSE_WRITE
                | libc::IN_ATTRIB
                | libc::IN_MOVE_SELF
                | libc::IN_DELETE_SELF;
            // SAFETY: `bytes` is NUL-terminated and outlives the call.
            let wd =
                unsafe { libc::inotify_add_watch(fd.as_raw_fd(), bytes.as_ptr().cast(), mask) };
            if wd < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Inotify { fd })
        }

        /// Waits until an event arrives or `timeout` passes, then drains the queue.
        pub(super) fn wait(&mut self, timeout: Duration) -> io::Result<()> {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: one valid pollfd for the duration of the call.
            let n = unsafe { libc::poll(&mut pfd, 1, ms) };
            if n < 0 {
                let e = io::Error::last_os_error();
                return if e.kind() == io::ErrorKind::Interrupted {
                    Ok(())
                } else {
                    Err(e)
                };
            }
            let mut buf = [0u8; 4096];
            loop {
                // SAFETY: `buf` is writable for its length.
                let r =
                    unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if r <= 0 {
                    let e = io::Error::last_os_error();
                    return match e.kind() {
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(()),
                        _ if r == 0 => Ok(()),
                        _ => Err(e),
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Instant;

    /// An append wakes a waiter long before its fallback timeout.
    #[test]
    fn an_append_wakes_the_waiter() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f.jsonl");
        std::fs::write(&path, b"").expect("create");
        let mut watch = FileWatch::new(&path);
        let writer = std::thread::spawn({
            let path = path.clone();
            move || {
                std::thread::sleep(Duration::from_millis(100));
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .expect("open");
                f.write_all(b"{}\n").expect("append");
            }
        });
        let start = Instant::now();
        watch.wait(Duration::from_secs(30));
        let woke = start.elapsed();
        writer.join().expect("writer");
        // Not a timing claim: without the notification the wait would last its 30 s.
        assert!(woke < Duration::from_secs(20), "woke after {woke:?}");
    }
}
