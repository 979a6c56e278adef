//! The one error type of erpc: every failure a caller, a server or a registry can meet.

use std::time::Duration;

use crate::protocol::Status;

/// Everything that can go wrong in erpc, with enough context to act on it.
///
/// Application errors are not here: a method returning `Result<T, MyError>` delivers
/// `MyError` as a value inside `Ok(..)`. This enum is for failures of the call itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The call did not finish before its deadline; the provider was told to cancel it.
    #[error("call {method} on {service} timed out after {after:?}")]
    Timeout {
        /// Service key of the call.
        service: String,
        /// Method name.
        method: String,
        /// The timeout that ran out.
        after: Duration,
    },
    /// A TCP connection to a provider could not be opened (the request never left).
    #[error("cannot connect to {addr}: {reason}")]
    Connect {
        /// Provider address.
        addr: String,
        /// Why the connection failed.
        reason: String,
    },
    /// The connection carrying the call broke, or the peer stopped answering heartbeats.
    #[error("connection to {addr} lost: {reason}")]
    ConnectionLost {
        /// Provider address.
        addr: String,
        /// What was observed (closed, heartbeat timeout, I/O error...).
        reason: String,
    },
    /// The registry knows no usable provider for the service.
    #[error("no provider available for {service}")]
    NoProvider {
        /// Service key.
        service: String,
    },
    /// The chosen provider's circuit breaker refused the call at the moment of sending
    /// (it was ejected after the pick); never sent, so retried elsewhere. When every
    /// provider is ejected the client ignores ejection instead (panic mode).
    #[error(
        "the chosen provider of {service} was ejected before the call was sent (circuit open)"
    )]
    CircuitOpen {
        /// Service key.
        service: String,
    },
    /// The provider does not host the service (wrong interface, group or version).
    #[error("service not found: {service}")]
    ServiceNotFound {
        /// Service key as sent.
        service: String,
    },
    /// The provider hosts the service but not the method.
    #[error("method {method} not found on {service}")]
    MethodNotFound {
        /// Service key.
        service: String,
        /// Method name as sent.
        method: String,
    },
    /// Arguments or a result could not be serialized.
    #[error("encode failed: {0}")]
    Encode(String),
    /// Arguments or a result could not be deserialized.
    #[error("decode failed: {0}")]
    Decode(String),
    /// The provider refused the call because it is at its limit; retry elsewhere.
    #[error("provider overloaded: {0}")]
    Overloaded(String),
    /// The provider's handler panicked; the message is the panic payload.
    #[error("remote handler failed: {0}")]
    HandlerPanicked(String),
    /// The call was cancelled before it completed.
    #[error("call cancelled")]
    Cancelled,
    /// The provider is shutting down and did not take the call (it never ran).
    #[error("provider {addr} is going away")]
    GoingAway {
        /// Provider address.
        addr: String,
    },
    /// The provider answered with a protocol-level failure not covered above.
    #[error("remote error ({status:?}): {message}")]
    Remote {
        /// Status from the response frame.
        status: Status,
        /// Message from the provider.
        message: String,
    },
    /// A request or response body was over the frame limit of the side that refused it:
    /// a request is refused by the client before it is sent (over its own
    /// `max_frame_bytes`) or by the provider unread; a response by the client unread.
    /// Retrying elsewhere does not help, and the provider's health is not in question.
    #[error("{direction} body of {size} bytes exceeds the {limit}-byte frame limit")]
    FrameTooLarge {
        /// Body size in bytes (head and payload, after compression).
        size: u64,
        /// The limit that refused it.
        limit: u64,
        /// Whether the request or the response was too large.
        direction: FrameDirection,
    },
    /// The provider refused the caller's credentials (a server filter such as
    /// [`crate::filter::TokenAuth`]). Not retried elsewhere and not held against the
    /// provider's health: another provider would refuse the same credentials.
    #[error("unauthenticated: {0}")]
    Unauthenticated(String),
    /// A frame broke the wire protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A registry operation failed.
    #[error("registry error: {0}")]
    Registry(String),
    /// A setting was invalid (file, environment or builder).
    #[error("configuration error: {0}")]
    Config(String),
    /// An I/O error outside a call (binding a listener, reading a file).
    #[error("i/o error: {context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// True when the request provably never reached a provider's handler, so sending it
    /// to another provider cannot run it twice.
    ///
    /// A circuit-open refusal is one: the request was never sent. It also ends an
    /// attempt whose provider was picked while its breaker admitted calls, but whose
    /// single half-open probe slot another call took first; that attempt moves on to
    /// another provider.
    pub fn never_reached_provider(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::GoingAway { .. }
                | Error::Overloaded(_)
                | Error::NoProvider { .. }
                | Error::CircuitOpen { .. }
        )
    }

    /// A stable lowercase name for the variant (`"timeout"`, `"connect"`, ...), used as
    /// the `kind` label of `erpc_call_errors_total` (see [`crate::admin`]).
    ///
    /// ```
    /// assert_eq!(erpc_core::Error::Cancelled.kind(), "cancelled");
    /// assert_eq!(erpc_core::Error::Overloaded("busy".into()).kind(), "overloaded");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Timeout { .. } => "timeout",
            Error::Connect { .. } => "connect",
            Error::ConnectionLost { .. } => "connection_lost",
            Error::NoProvider { .. } => "no_provider",
            Error::CircuitOpen { .. } => "circuit_open",
            Error::ServiceNotFound { .. } => "service_not_found",
            Error::MethodNotFound { .. } => "method_not_found",
            Error::Encode(_) => "encode",
            Error::Decode(_) => "decode",
            Error::Overloaded(_) => "overloaded",
            Error::HandlerPanicked(_) => "handler_panicked",
            Error::Cancelled => "cancelled",
            Error::GoingAway { .. } => "going_away",
            Error::Remote { .. } => "remote",
            Error::FrameTooLarge { .. } => "frame_too_large",
            Error::Unauthenticated(_) => "unauthenticated",
            Error::Protocol(_) => "protocol",
            Error::Registry(_) => "registry",
            Error::Config(_) => "config",
            Error::Io { .. } => "io",
        }
    }

    /// Builds an [`Error::Io`] with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Which frame of a call was too large (see [`Error::FrameTooLarge`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameDirection {
    /// The request, consumer to provider.
    Request,
    /// The response, provider to consumer.
    Response,
}

impl std::fmt::Display for FrameDirection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Request => "request",
            Self::Response => "response",
        })
    }
}

/// Shorthand for results in erpc.
pub type Result<T, E = Error> = std::result::Result<T, E>;
