//! The byte stream under a connection: plain TCP, or TLS over TCP with the `tls`
//! feature.
//!
//! Both sides read and write a connection from two tasks, so a [`Stream`] splits into a
//! [`ReadHalf`] and a [`WriteHalf`]. Plain TCP keeps tokio's lock-free owned halves; a
//! TLS stream is one state machine for both directions and is split with
//! [`tokio::io::split`].

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::registry::TLS_PREFIX;

/// The client's TLS settings: `Some` speaks TLS to every provider.
#[cfg(feature = "tls")]
pub(crate) type ClientTls = Option<crate::TlsClientConfig>;
/// The server's TLS settings: `Some` accepts only TLS.
#[cfg(feature = "tls")]
pub(crate) type ServerTls = Option<std::sync::Arc<crate::TlsServerConfig>>;

/// The client's TLS settings: always `None` without the `tls` feature.
#[cfg(not(feature = "tls"))]
pub(crate) type ClientTls = Option<NoTls>;
/// The server's TLS settings: always `None` without the `tls` feature.
#[cfg(not(feature = "tls"))]
pub(crate) type ServerTls = Option<std::sync::Arc<NoTls>>;

/// Stands in for the TLS configurations without the `tls` feature; it has no values,
/// so the TLS paths below compile away.
#[cfg(not(feature = "tls"))]
#[derive(Debug, Clone)]
pub(crate) enum NoTls {}

#[cfg(not(feature = "tls"))]
impl NoTls {
    async fn connect(&self, _: &str, _: TcpStream) -> Result<Stream, String> {
        match *self {}
    }

    async fn accept(&self, _: TcpStream, _: SocketAddr) -> Option<Stream> {
        match *self {}
    }
}

/// Opens a connection to `addr`: `host:port`, or `tls://host:port` for a provider that
/// only accepts TLS. With `tls` set every connection is TLS; without it a `tls://`
/// provider is refused here, before anything is sent to it.
///
/// The error is the reason, for [`crate::Error::Connect`].
pub(crate) async fn connect(addr: &str, tls: &ClientTls) -> Result<Stream, String> {
    let (tls_only, host_port) = match addr.strip_prefix(TLS_PREFIX) {
        Some(host_port) => (true, host_port),
        None => (false, addr),
    };
    if tls_only && tls.is_none() {
        return Err(NEEDS_TLS.into());
    }
    let tcp = TcpStream::connect(host_port)
        .await
        .map_err(|e| e.to_string())?;
    match tls {
        Some(tls) => tls.connect(host_port, tcp).await,
        None => Ok(Stream::Tcp(tcp)),
    }
}

/// Why a client without TLS refuses a `tls://` provider.
#[cfg(feature = "tls")]
const NEEDS_TLS: &str = "the provider only accepts TLS; configure ClientBuilder::tls";
/// Why a client without TLS refuses a `tls://` provider.
#[cfg(not(feature = "tls"))]
const NEEDS_TLS: &str =
    "the provider only accepts TLS; enable the erpc `tls` feature and configure ClientBuilder::tls";

/// Turns an accepted connection into a [`Stream`]: as is, or after the server side of
/// the TLS handshake when `tls` is set (`None` when that fails; the reason is logged).
pub(crate) async fn accept(tcp: TcpStream, peer: SocketAddr, tls: &ServerTls) -> Option<Stream> {
    match tls {
        // Boxed: the handshake's state is kilobytes, which every plain connection's
        // task would otherwise carry for its whole life.
        Some(tls) => Box::pin(tls.accept(tcp, peer)).await,
        None => Some(Stream::Tcp(tcp)),
    }
}

/// TLS over TCP, either side of the handshake.
#[cfg(feature = "tls")]
pub(crate) type TlsStream = tokio_rustls::TlsStream<TcpStream>;

/// An established connection's byte stream.
pub(crate) enum Stream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP (boxed: the TLS state is large).
    #[cfg(feature = "tls")]
    Tls(Box<TlsStream>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Tcp(stream) => stream,
            #[cfg(feature = "tls")]
            Stream::Tls(stream) => stream.get_ref().0,
        }
    }

    /// Sets `TCP_NODELAY` on the underlying socket.
    pub(crate) fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.tcp().set_nodelay(nodelay)
    }

    /// Splits into halves that two tasks can drive at once.
    pub(crate) fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Tcp(stream) => {
                let (read, write) = stream.into_split();
                (ReadHalf::Tcp(read), WriteHalf::Tcp(write))
            }
            #[cfg(feature = "tls")]
            Stream::Tls(stream) => {
                let (read, write) = tokio::io::split(*stream);
                (ReadHalf::Tls(read), WriteHalf::Tls(write))
            }
        }
    }
}

impl From<TcpStream> for Stream {
    fn from(stream: TcpStream) -> Self {
        Stream::Tcp(stream)
    }
}

/// The read half of a [`Stream`].
pub(crate) enum ReadHalf {
    /// Plain TCP.
    Tcp(OwnedReadHalf),
    /// TLS over TCP.
    #[cfg(feature = "tls")]
    Tls(tokio::io::ReadHalf<TlsStream>),
}

/// The write half of a [`Stream`].
pub(crate) enum WriteHalf {
    /// Plain TCP.
    Tcp(OwnedWriteHalf),
    /// TLS over TCP.
    #[cfg(feature = "tls")]
    Tls(tokio::io::WriteHalf<TlsStream>),
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Tcp(read) => Pin::new(read).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            ReadHalf::Tls(read) => Pin::new(read).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Tcp(write) => Pin::new(write).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            WriteHalf::Tls(write) => Pin::new(write).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Tcp(write) => Pin::new(write).poll_write_vectored(cx, bufs),
            #[cfg(feature = "tls")]
            WriteHalf::Tls(write) => Pin::new(write).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            WriteHalf::Tcp(write) => write.is_write_vectored(),
            #[cfg(feature = "tls")]
            WriteHalf::Tls(write) => write.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Tcp(write) => Pin::new(write).poll_flush(cx),
            #[cfg(feature = "tls")]
            WriteHalf::Tls(write) => Pin::new(write).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Tcp(write) => Pin::new(write).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            WriteHalf::Tls(write) => Pin::new(write).poll_shutdown(cx),
        }
    }
}
