//! The error type of the Nacos registry.

use std::path::PathBuf;

/// Longest server answer body kept in an error message.
const MAX_BODY: usize = 512;

/// Everything that can go wrong talking to Nacos, with the context to act on it.
///
/// URLs in these errors never carry the access token. At the [`erpc_core::registry::Registry`]
/// boundary every variant becomes [`erpc_core::Error::Registry`] with this message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NacosError {
    /// The `nacos://` URL or a configuration value could not be used.
    #[error("invalid Nacos configuration {input:?}: {reason}")]
    Config {
        /// The URL or value given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No configured server could be reached (connection refused, timeout, ...).
    #[error("cannot reach Nacos at {url}: {source}")]
    Transport {
        /// The last URL tried (without query).
        url: String,
        /// The HTTP client's error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with an HTTP error status.
    #[error("Nacos answered HTTP {status} to {method} {url}: {body}")]
    Http {
        /// HTTP method of the request.
        method: String,
        /// URL of the request (without query).
        url: String,
        /// HTTP status code.
        status: u16,
        /// Start of the answer body.
        body: String,
    },
    /// Logging in with the configured username and password failed.
    #[error("Nacos login as {username:?} at {url} failed with HTTP {status}: {body}")]
    Login {
        /// The username tried.
        username: String,
        /// Login URL.
        url: String,
        /// HTTP status code.
        status: u16,
        /// Start of the answer body (Nacos says `unknown user!` for bad credentials).
        body: String,
    },
    /// A login that a concurrent call made while this one waited for it failed; this
    /// call did not try again at once.
    #[error("Nacos login failed: {reason}")]
    LoginFailed {
        /// The failed login's error.
        reason: String,
    },
    /// The server answered 2xx with a body that could not be understood.
    #[error("unexpected answer from {url}: {reason}; body: {body}")]
    Decode {
        /// URL of the request (without query).
        url: String,
        /// Why it could not be read.
        reason: String,
        /// Start of the answer body.
        body: String,
    },
    /// The server answered 2xx but its JSON result carried a failure code.
    #[error("Nacos refused {operation} at {url}: code {code}: {message}")]
    Refused {
        /// What was attempted (`register`, `heartbeat`, ...).
        operation: &'static str,
        /// URL of the request (without query).
        url: String,
        /// Nacos result code.
        code: i64,
        /// Nacos message.
        message: String,
    },
    /// A service key cannot be a Nacos service name.
    #[error("service name {name:?} is not valid for Nacos: {reason}")]
    ServiceName {
        /// The Nacos service name built from the key.
        name: String,
        /// The rule it breaks.
        reason: &'static str,
    },
    /// A provider address is not `host:port`.
    #[error("provider address {addr:?} is not host:port")]
    Address {
        /// The address given.
        addr: String,
    },
    /// Reading or writing the on-disk provider cache failed.
    #[error("provider cache {path}: {source}")]
    Cache {
        /// The cache file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

impl NacosError {
    /// True when the server could not be reached at all (as opposed to answering "no").
    pub fn is_unreachable(&self) -> bool {
        match self {
            NacosError::Transport { .. } => true,
            NacosError::Http { status, .. } => *status >= 500,
            _ => false,
        }
    }

    pub(crate) fn config(input: impl Into<String>, reason: impl Into<String>) -> Self {
        NacosError::Config {
            input: input.into(),
            reason: reason.into(),
        }
    }
}

impl From<NacosError> for erpc_core::Error {
    fn from(error: NacosError) -> Self {
        erpc_core::Error::Registry(error.to_string())
    }
}

/// The start of `body`, cut at a character boundary, for error messages.
pub(crate) fn clip(body: &str) -> String {
    let body = body.trim();
    if body.len() <= MAX_BODY {
        return body.to_string();
    }
    let mut end = MAX_BODY;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &body[..end])
}
