//! Accepted connections, admitted by the query layer's connection counts
//! ([`civlink_query::connections`]): one over a limit is closed at once,
//! before a byte of it is read.

use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use civlink_query::connections::{Admitted, ConnectionLimiter};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A listener that admits connections by the counts.
#[derive(Debug)]
pub struct AdmittingListener {
    listener: TcpListener,
    limiter: ConnectionLimiter,
}

impl AdmittingListener {
    /// `listener`, admitting by `limiter`.
    pub fn new(listener: TcpListener, limiter: ConnectionLimiter) -> AdmittingListener {
        AdmittingListener { listener, limiter }
    }
}

/// An admitted connection: the stream, and its place in the counts.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    _admitted: Admitted,
}

impl axum::serve::Listener for AdmittingListener {
    type Io = Connection;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Connection, SocketAddr) {
        loop {
            let (stream, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                // A failed accept (a client that reset, no file descriptors
                // left) ends nothing: wait a moment and go on.
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a REST connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            if let Some(admitted) = self.limiter.admit(peer.ip()) {
                let _ = stream.set_nodelay(true);
                return (Connection { stream, _admitted: admitted }, peer);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

impl AsyncRead for Connection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
