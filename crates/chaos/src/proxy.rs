//! A TCP proxy in front of Redis that can stall: while stalled it keeps
//! every connection open and moves no byte, as a hung network or a frozen
//! server would.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The proxy's controls; it runs until dropped.
#[derive(Debug)]
pub struct StallingProxy {
    /// Where clients connect.
    pub port: u16,
    stalled: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl StallingProxy {
    /// Forwards 127.0.0.1:`port` (a free one) to 127.0.0.1:`upstream`.
    pub async fn start(upstream: u16) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let (stalled, watching) = watch::channel(false);
        let watching = Arc::new(watching);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let watching = Arc::clone(&watching);
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    let up = pipe(client_read, server_write, (*watching).clone());
                    let down = pipe(server_read, client_write, (*watching).clone());
                    // Either side closing ends both.
                    tokio::select! {
                        _ = up => {}
                        _ = down => {}
                    }
                });
            }
        });
        Ok(StallingProxy {
            port,
            stalled,
            task,
        })
    }

    /// Stalls (`true`) or resumes (`false`) every connection, open and new.
    pub fn stall(&self, stalled: bool) {
        let _ = self.stalled.send(stalled);
    }
}

impl Drop for StallingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Copies `from` to `to`, holding still while stalled.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut stalled: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        while *stalled.borrow() {
            if stalled.changed().await.is_err() {
                return Ok(());
            }
        }
        let read = tokio::select! {
            read = from.read(&mut buffer) => read?,
            // Stalled meanwhile: hold what was not read yet.
            _ = stalled.changed() => continue,
        };
        if read == 0 {
            return Ok(());
        }
        to.write_all(&buffer[..read]).await?;
    }
}
