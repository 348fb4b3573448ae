//! Accepted connections, admitted by the query layer's connection counts
//! ([`civlink_query::connections`]): one over a limit is closed at once,
//! before a byte of it is read.

use std::pin::Pin;
use std::task::{Context, Poll};

use civlink_query::connections::{Admitted, ConnectionLimiter};
use futures::Stream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// An admitted connection: the stream, and its place in the counts.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    _admitted: Admitted,
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

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

/// The listener's admitted connections, as tonic takes them.
pub fn admitted(
    listener: TcpListener,
    limiter: ConnectionLimiter,
) -> impl Stream<Item = Result<Connection, std::io::Error>> + Send + 'static {
    futures::stream::unfold((listener, limiter), |(listener, limiter)| async move {
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(accepted) => accepted,
                // A failed accept (a client that reset, no file descriptors
                // left) ends nothing: wait a moment and go on.
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a Flight SQL connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Some(admitted) = limiter.admit(peer.ip()) else {
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let connection = Connection { stream, _admitted: admitted };
            return Some((Ok(connection), (listener, limiter)));
        }
    })
}
