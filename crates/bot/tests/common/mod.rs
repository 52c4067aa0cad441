//! Shared test helper: run the real bot on a real socket (127.0.0.1:0) through
//! [`dialtone_bot::serve`], with a shutdown the test can trigger.

use std::net::SocketAddr;

use dialtone_bot::BotConfig;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A bot serving in the background; dropping the shutdown sender stops it.
pub(crate) struct Bot {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// Send (or drop) to shut the bot down.
    pub(crate) shutdown: oneshot::Sender<()>,
    /// The `serve` task.
    pub(crate) task: JoinHandle<std::io::Result<()>>,
}

/// Binds 127.0.0.1:0 and serves `config` on it.
pub(crate) async fn start(config: BotConfig) -> Bot {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (shutdown, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(dialtone_bot::serve(listener, config, async move {
        // Either an explicit send or the sender being dropped means "stop".
        let _ = rx.await;
    }));
    Bot {
        addr,
        shutdown,
        task,
    }
}
