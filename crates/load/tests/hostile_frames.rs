//! Issue 12 item 12 on the lean `--stream` path: an app frame over the size limit, or a text
//! frame that is not UTF-8, fails the stream as the full-call engine fails it (`stream
//! 31924`, close code 1009 or 1007), and the oversized frame is refused from its header,
//! never buffered.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use dialtone_audio::FrameSet;
use dialtone_load::stream::{self, StreamRun};
use dialtone_load::{Finished, Shard};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// What the app does after `start`.
#[derive(Clone, Copy)]
enum Junk {
    /// One text frame declaring this many bytes, then as much of it as the socket takes.
    Huge(u64),
    /// A short text frame that is not UTF-8.
    NotUtf8,
}

/// Per connection: the bytes of junk the app got onto the wire, and the close code of the
/// close frame dialtone sent (when the app could read one).
type Seen = (u64, Option<u16>);

async fn server(junk: Junk) -> (String, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/stream", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut ws = tokio_tungstenite::accept_async(sock).await.unwrap();
                for _ in 0..2 {
                    ws.next().await; // connected, start
                }
                let sent = AtomicU64::new(0);
                let frame = match junk {
                    Junk::Huge(n) => {
                        let mut head = vec![0x81, 127];
                        head.extend_from_slice(&n.to_be_bytes());
                        head
                    }
                    Junk::NotUtf8 => {
                        let payload = b"{\"event\":\"clear\",\"streamSid\":\"\xc3\x28\"}";
                        let mut f = vec![0x81, payload.len() as u8];
                        f.extend_from_slice(payload);
                        f
                    }
                };
                let raw = ws.get_mut();
                let mut ok = raw.write_all(&frame).await.is_ok();
                if let Junk::Huge(n) = junk {
                    let block = vec![b'x'; 64 << 10];
                    while ok && sent.load(Ordering::SeqCst) < n {
                        ok = raw.write_all(&block).await.is_ok();
                        if ok {
                            sent.fetch_add(block.len() as u64, Ordering::SeqCst);
                        }
                    }
                }
                let mut code = None;
                while let Some(Ok(m)) = ws.next().await {
                    if let Message::Close(f) = m {
                        code = f.map(|f| u16::from(f.code));
                        break;
                    }
                }
                let _ = tx.send((sent.load(Ordering::SeqCst), code));
            });
        }
    });
    (url, rx)
}

fn plan(url: String, streams: u64) -> StreamRun {
    StreamRun {
        url,
        streams,
        media: Duration::from_secs(2),
        ramp: Duration::from_millis(100),
        threads: 2,
        audio: Arc::new(FrameSet::silence(0)),
        account_sid: dialtone_call::DEFAULT_ACCOUNT_SID.into(),
        auth_token: dialtone_call::DEFAULT_AUTH_TOKEN.into(),
        seed: 1,
        shard: Shard::default(),
        lateness_bound: Duration::from_millis(50),
        tunnels: Default::default(),
        drain: Duration::from_secs(5),
    }
}

async fn run(p: StreamRun) -> Finished {
    tokio::task::spawn_blocking(move || stream::run(&p, Arc::new(AtomicBool::new(false)), |_| {}))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_frame_is_31924_and_never_buffered() {
    let (url, mut seen) = server(Junk::Huge(64 << 20)).await;
    let f = run(plan(url, 4)).await;
    assert_eq!(
        f.summary.outcomes.get("stream 31924"),
        Some(&4),
        "{:?}",
        f.summary.outcomes
    );
    for _ in 0..4 {
        let (sent, _) = seen.recv().await.unwrap();
        // 64 MiB offered; what got out is the kernel's socket buffers, not a read buffer.
        assert!(sent < 16 << 20, "the app got {sent} bytes out");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_frame_that_is_not_utf8_is_31924_with_close_1007() {
    let (url, mut seen) = server(Junk::NotUtf8).await;
    let f = run(plan(url, 3)).await;
    assert_eq!(
        f.summary.outcomes.get("stream 31924"),
        Some(&3),
        "{:?}",
        f.summary.outcomes
    );
    for _ in 0..3 {
        assert_eq!(seen.recv().await.unwrap().1, Some(1007));
    }
}
