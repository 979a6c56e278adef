//! Shared-token authentication: the client sends a token, the server refuses calls
//! without the right one.

use async_trait::async_trait;
use subtle::ConstantTimeEq;

use super::{ClientCall, ClientFilter, ClientNext, ServerCall, ServerFilter, ServerNext};
use crate::service::Reply;
use crate::Error;

/// The metadata key the token travels under (`Bearer <token>`).
pub const AUTHORIZATION: &str = "authorization";

/// A shared token, as a filter for both sides: on a client it adds
/// `authorization: Bearer <token>` to every call; on a server it refuses a call whose
/// `authorization` is missing or different with [`Error::Unauthenticated`] (compared in
/// constant time), which the client neither retries nor counts against the provider,
/// and removes the token from an admitted call's metadata, so handlers (and what they
/// log) never see it.
///
/// The token never appears in `Debug` output or logs.
///
/// ```no_run
/// # async fn run() -> Result<(), erpc_core::Error> {
/// use erpc_core::{filter::TokenAuth, Client, Server};
///
/// let server = Server::builder().bind("127.0.0.1:0").filter(TokenAuth::new("s3cret")).build().await?;
/// let client = Client::builder()
///     .direct([server.local_addr().to_string()])
///     .filter(TokenAuth::new("s3cret"))
///     .build()?;
/// # let _ = client; Ok(()) }
/// ```
#[derive(Clone)]
pub struct TokenAuth {
    /// `Bearer <token>`, built once.
    expected: String,
}

impl TokenAuth {
    /// A filter for `token`.
    pub fn new(token: impl AsRef<str>) -> Self {
        Self {
            expected: format!("Bearer {}", token.as_ref()),
        }
    }

    fn admits(&self, presented: Option<&str>) -> bool {
        presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(self.expected.as_bytes())))
    }
}

impl std::fmt::Debug for TokenAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuth")
            .field("token", &"<redacted>")
            .finish()
    }
}

#[async_trait]
impl ServerFilter for TokenAuth {
    async fn call(&self, call: &mut ServerCall, next: ServerNext<'_>) -> Result<Reply, Error> {
        if !self.admits(call.metadata().get(AUTHORIZATION)) {
            let why = if call.metadata().get(AUTHORIZATION).is_some() {
                "wrong token"
            } else {
                "no token"
            };
            tracing::debug!(peer = %call.peer(), service = %call.service(), method = call.method(), why, "call refused: unauthenticated");
            return Err(Error::Unauthenticated(format!(
                "{why} for {}.{}",
                call.service(),
                call.method()
            )));
        }
        call.metadata_mut().remove(AUTHORIZATION);
        next.run(call).await
    }
}

#[async_trait]
impl ClientFilter for TokenAuth {
    async fn call(&self, call: &mut ClientCall<'_>, next: ClientNext<'_>) -> Result<(), Error> {
        call.metadata_mut()
            .insert_static(AUTHORIZATION, self.expected.clone());
        next.run(call).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_only_the_exact_token_and_hides_it() {
        let auth = TokenAuth::new("s3cret");
        assert!(auth.admits(Some("Bearer s3cret")));
        for wrong in [
            None,
            Some(""),
            Some("Bearer s3cre"),
            Some("Bearer s3cret!"),
            Some("s3cret"),
        ] {
            assert!(!auth.admits(wrong), "{wrong:?} admitted");
        }
        assert!(!format!("{auth:?}").contains("s3cret"));
    }
}
