//! `replikativ peer`: serve a store and keep in sync with other peers until SIGTERM/SIGINT.

use anyhow::{Context as _, Result};

use super::args::PeerArgs;
use super::signals::Signals;
use crate::node::Node;

/// Runs `peer`.
pub fn run(args: PeerArgs) -> Result<()> {
    for url in &args.connect {
        super::check_peer_url(url)?;
    }
    args.node.check_tls(args.listen.is_some())?;
    actix_rt::System::new().block_on(async move {
        let mut signals = Signals::install()?;
        let mut builder = Node::builder()
            .name("peer")
            .store_dir(&args.store)
            .mirror(args.mirror)
            .max_subscriptions(args.max_subscriptions);
        if let Some(listen) = &args.listen {
            builder = builder.listen(listen.clone());
        }
        if args.web {
            builder = builder.web(super::args::tweets_cdvcs());
        }
        let mut builder = args.node.apply(builder)?;
        for url in &args.connect {
            builder = builder.connect(url.clone());
        }
        let node = builder
            .start()
            .await
            .with_context(|| format!("starting the peer on {}", args.store.display()))?;
        signals.on_hangup(super::node_args::reload_on_hangup(&node));
        // Replicas start on first use: the store is served from here on, however many CDVCSs
        // it holds.
        match (node.listen_addr(), &args.listen) {
            (Some(addr), _) => {
                say!("serving peers at {}://{addr}/", args.node.scheme());
                if args.web {
                    let web = if args.node.scheme() == "wss" {
                        "https"
                    } else {
                        "http"
                    };
                    say!("serving the browser peer at {web}://{addr}/app/");
                }
            }
            (None, Some(listen)) => say!("listening on {listen}"),
            (None, None) => {}
        }
        if args.mirror {
            say!("mirroring {}", args.connect.join(", "));
        }
        signals.recv().await;
        say!("stopping");
        node.shutdown().await;
        Ok(())
    })
}
