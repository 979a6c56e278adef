//! tonic unary gRPC without protoc: prost messages derived by hand and the service
//! written out the way tonic-build's generated code does it.

use std::convert::Infallible;
use std::task::{Context, Poll};

use futures::StreamExt;
use tonic::body::Body;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::transport::{Channel, Endpoint, Server};
use tonic_prost::ProstCodec;

/// Request message: `message EchoRequest { bytes payload = 1; }`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct EchoRequest {
    /// The bytes to echo.
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) payload: Vec<u8>,
}

/// Reply message: `message EchoReply { bytes payload = 1; }`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct EchoReply {
    /// The echoed bytes.
    #[prost(bytes = "vec", tag = "1")]
    pub(crate) payload: Vec<u8>,
}

const PATH: &str = "/bench.Echo/Echo";
/// HTTP/2 flow-control windows, raised on both ends so 64 KiB messages do not stall on
/// window updates (tonic's defaults are 64 KiB per stream).
const STREAM_WINDOW: u32 = 4 << 20;
const CONNECTION_WINDOW: u32 = 16 << 20;

/// The unary handler.
struct EchoMethod;

impl tonic::server::UnaryService<EchoRequest> for EchoMethod {
    type Response = EchoReply;
    type Future = BoxFuture<tonic::Response<EchoReply>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<EchoRequest>) -> Self::Future {
        Box::pin(async move {
            Ok(tonic::Response::new(EchoReply {
                payload: request.into_inner().payload,
            }))
        })
    }
}

/// The HTTP service routing `/bench.Echo/Echo` to [`EchoMethod`].
#[derive(Clone)]
struct EchoService;

impl Service<http::Request<Body>> for EchoService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() == PATH {
            Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(ProstCodec::default());
                Ok(grpc.unary(EchoMethod, request).await)
            })
        } else {
            Box::pin(async move { Ok(tonic::Status::unimplemented("no such method").into_http()) })
        }
    }
}

/// Serves until the process is killed; prints the bound port first.
pub(crate) async fn serve(port: u16) -> Result<(), String> {
    let listener = crate::listen_announced(port).await?;
    // `serve_with_incoming` does not apply the builder's TCP settings: set them here.
    let incoming = tonic::codegen::tokio_stream::wrappers::TcpListenerStream::new(listener)
        .inspect(|accepted| {
            if let Ok(stream) = accepted {
                let _ = stream.set_nodelay(true);
            }
        });
    Server::builder()
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_concurrent_streams(4096)
        .serve_with_incoming(EchoService, incoming)
        .await
        .map_err(|e| e.to_string())
}

/// A client over one channel (one HTTP/2 connection).
pub(crate) async fn client(addr: &str) -> Result<tonic::client::Grpc<Channel>, String> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|e| e.to_string())?
        .tcp_nodelay(true)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .connect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(tonic::client::Grpc::new(channel))
}

/// One call; returns the echoed length.
pub(crate) async fn call(
    client: &mut tonic::client::Grpc<Channel>,
    payload: &[u8],
) -> Result<usize, String> {
    client.ready().await.map_err(|e| e.to_string())?;
    let request = tonic::Request::new(EchoRequest {
        payload: payload.to_vec(),
    });
    let reply: tonic::Response<EchoReply> = client
        .unary(
            request,
            http::uri::PathAndQuery::from_static(PATH),
            ProstCodec::default(),
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(reply.into_inner().payload.len())
}
