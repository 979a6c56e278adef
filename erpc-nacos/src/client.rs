//! HTTP to a set of Nacos servers: failover between addresses and the login token.
//!
//! Every call starts at the server that answered last. A connection failure, a timeout
//! or a 5xx moves on to the next address; any other answer ends the call and makes that
//! server the preferred one. With credentials configured, every call carries an
//! `accessToken` query parameter; the token is renewed before its TTL runs out and once
//! more when a server answers 403 (the call is then retried once).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::api::LoginAnswer;
use crate::error::clip;
use crate::{NacosConfig, NacosError, Secret};

const LOGIN_V1: &str = "/v1/auth/login";
const LOGIN_V3: &str = "/v3/auth/user/login";

/// Query or form parameters of a call.
pub(crate) type Params = Vec<(&'static str, String)>;

/// A successful (non-5xx) answer.
struct Answer {
    status: StatusCode,
    url: String,
    body: String,
}

/// A login token and when to renew it.
#[derive(Clone)]
pub(crate) struct Token {
    value: Secret,
    renew_at: Instant,
    expires_at: Instant,
}

/// The login token shared by every call.
///
/// Reading it takes a short synchronous lock, never held across an await. Logins are
/// single-flight: while one call logs in, the others either go on with the current
/// token (when it is only due for renewal) or wait for that one login (when there is
/// no valid token) and share its token or its failure, instead of each logging in in
/// turn.
#[derive(Default)]
pub(crate) struct TokenCache {
    current: parking_lot::RwLock<Option<Token>>,
    login: Mutex<()>,
    /// Logins finished so far (successful or not).
    attempts: AtomicU64,
    /// Why the last login failed; `None` after a success.
    last_failure: parking_lot::Mutex<Option<String>>,
}

impl TokenCache {
    /// The token to send, logging in with `login` when there is none, it is due for
    /// renewal, or `refused` (the token a server just refused) is the current one.
    pub(crate) async fn get<F, Fut>(
        &self,
        refused: Option<&Secret>,
        login: F,
    ) -> Result<Secret, NacosError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Token, NacosError>>,
    {
        if let Some(token) = self.valid(refused) {
            if Instant::now() < token.renew_at {
                return Ok(token.value);
            }
            // Due for renewal but still valid: one call renews, the others go on with it.
            let Ok(_renewing) = self.login.try_lock() else {
                return Ok(token.value);
            };
            if let Some(fresh) = self.valid(refused).filter(|t| Instant::now() < t.renew_at) {
                return Ok(fresh.value);
            }
            return match self.attempt(login).await {
                Ok(fresh) => Ok(self.store(fresh)),
                Err(error) => {
                    tracing::warn!(%error, "renewing the Nacos login token failed; the current one is used until it expires");
                    Ok(token.value)
                }
            };
        }
        // No valid token: wait for the login in progress, or log in.
        let attempts = self.attempts.load(Ordering::Acquire);
        let _login = self.login.lock().await;
        if let Some(token) = self.valid(refused) {
            return Ok(token.value);
        }
        if self.attempts.load(Ordering::Acquire) != attempts {
            // A login finished while this call waited, and failed: share its outcome
            // rather than each waiting call trying again in turn.
            if let Some(reason) = self.last_failure.lock().clone() {
                return Err(NacosError::LoginFailed { reason });
            }
        }
        let fresh = self.attempt(login).await?;
        Ok(self.store(fresh))
    }

    /// Runs `login`, counting it and remembering why it failed.
    async fn attempt<F, Fut>(&self, login: F) -> Result<Token, NacosError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Token, NacosError>>,
    {
        let result = login().await;
        *self.last_failure.lock() = result.as_ref().err().map(ToString::to_string);
        self.attempts.fetch_add(1, Ordering::AcqRel);
        result
    }

    /// The current token unless it expired or is the `refused` one.
    fn valid(&self, refused: Option<&Secret>) -> Option<Token> {
        self.current
            .read()
            .as_ref()
            .filter(|t| Instant::now() < t.expires_at && Some(&t.value) != refused)
            .cloned()
    }

    fn store(&self, token: Token) -> Secret {
        let value = token.value.clone();
        *self.current.write() = Some(token);
        value
    }
}

/// A 5xx that every server gave, as an answer (login reports it as a failed login).
fn answered(result: Result<Answer, NacosError>) -> Result<Answer, NacosError> {
    match result {
        Err(NacosError::Http {
            status, url, body, ..
        }) => Ok(Answer {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            url,
            body,
        }),
        other => other,
    }
}

/// HTTP client bound to the configured servers.
pub(crate) struct Client {
    http: reqwest::Client,
    /// `http://host:port/nacos` for each server.
    bases: Vec<String>,
    preferred: AtomicUsize,
    credentials: Option<(String, Secret)>,
    token: TokenCache,
}

impl Client {
    pub(crate) fn new(config: &NacosConfig) -> Result<Self, NacosError> {
        let scheme = if config.tls { "https" } else { "http" };
        let context = format!("/{}", config.context_path.trim_matches('/'));
        let context = context.trim_end_matches('/');
        let bases = config
            .servers
            .iter()
            .map(|server| format!("{scheme}://{server}{context}"))
            .collect();
        // Nacos is an internal service: a proxy meant for the internet would only break it.
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(1)))
            .build()
            .map_err(|e| NacosError::config("HTTP client", e.to_string()))?;
        let credentials = config
            .username
            .clone()
            .map(|user| (user, config.password.clone().unwrap_or_default()));
        Ok(Self {
            http,
            bases,
            preferred: AtomicUsize::new(0),
            credentials,
            token: TokenCache::default(),
        })
    }

    /// Calls `path` (below the context path) with `params` in the query; returns the
    /// body of a 2xx answer.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        params: &Params,
    ) -> Result<String, NacosError> {
        let mut refused: Option<Secret> = None;
        loop {
            let mut query = params.clone();
            let token = self.token(refused.as_ref()).await?;
            if let Some(token) = &token {
                query.push(("accessToken", token.expose().to_string()));
            }
            let answer = self.send(&method, path, &query, None).await?;
            if answer.status == StatusCode::FORBIDDEN && token.is_some() && refused.is_none() {
                tracing::debug!(url = %answer.url, "Nacos answered 403: renewing the token and retrying once");
                refused = token;
                continue;
            }
            if !answer.status.is_success() {
                return Err(NacosError::Http {
                    method: method.to_string(),
                    url: answer.url,
                    status: answer.status.as_u16(),
                    body: clip(&answer.body),
                });
            }
            return Ok(answer.body);
        }
    }

    /// The token to send (none without credentials); see [`TokenCache::get`].
    async fn token(&self, refused: Option<&Secret>) -> Result<Option<Secret>, NacosError> {
        let Some((username, password)) = &self.credentials else {
            return Ok(None);
        };
        self.token
            .get(refused, || self.login(username, password))
            .await
            .map(Some)
    }

    async fn login(&self, username: &str, password: &Secret) -> Result<Token, NacosError> {
        let form = vec![
            ("username", username.to_string()),
            ("password", password.expose().to_string()),
        ];
        // Nacos 3 may refuse the v1 login (410, or 500 from its compatibility layer) where
        // its own v3 login works; keep the v1 answer when there is no v3 login at all.
        let mut answer = answered(
            self.send(&Method::POST, LOGIN_V1, &Vec::new(), Some(&form))
                .await,
        )?;
        let v1_missing = matches!(answer.status, StatusCode::NOT_FOUND | StatusCode::GONE);
        if v1_missing || answer.status.is_server_error() {
            let v3 = answered(
                self.send(&Method::POST, LOGIN_V3, &Vec::new(), Some(&form))
                    .await,
            )?;
            // Report the v1 answer unless v3 logged in or v1 does not exist.
            if v3.status.is_success() || (v1_missing && v3.status != StatusCode::NOT_FOUND) {
                answer = v3;
            }
        }
        if !answer.status.is_success() {
            return Err(NacosError::Login {
                username: username.to_string(),
                url: answer.url,
                status: answer.status.as_u16(),
                body: clip(&answer.body),
            });
        }
        // A login answer holds the token: its body is never put into an error.
        let login: LoginAnswer =
            serde_json::from_str(&answer.body).map_err(|e| NacosError::Decode {
                url: answer.url.clone(),
                reason: e.to_string(),
                body: format!("({} bytes, not shown: a login answer)", answer.body.len()),
            })?;
        if login.access_token.is_empty() {
            return Err(NacosError::Decode {
                url: answer.url,
                reason: "login answer has no accessToken".to_string(),
                body: format!("({} bytes, not shown: a login answer)", answer.body.len()),
            });
        }
        // Renew at 90 % of the TTL (Nacos's own client does the same).
        let ttl = Duration::from_secs(login.token_ttl.max(10));
        tracing::debug!(ttl = ?ttl, "logged in to Nacos");
        let now = Instant::now();
        Ok(Token {
            value: Secret::new(login.access_token),
            renew_at: now + ttl.mul_f64(0.9),
            expires_at: now + ttl,
        })
    }

    /// Sends one request, failing over between servers; any non-5xx answer is returned.
    async fn send(
        &self,
        method: &Method,
        path: &str,
        query: &Params,
        form: Option<&Params>,
    ) -> Result<Answer, NacosError> {
        let count = self.bases.len();
        let first = self.preferred.load(Ordering::Relaxed) % count;
        let mut failure: Option<NacosError> = None;
        for index in (0..count).map(|i| (first + i) % count) {
            let url = format!("{}{}", self.bases[index], path);
            let mut request = self.http.request(method.clone(), &url).query(query);
            if let Some(form) = form {
                request = request.form(form);
            }
            let error = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    if !status.is_server_error() {
                        if index != first {
                            tracing::info!(server = %self.bases[index], "switched to another Nacos server");
                            self.preferred.store(index, Ordering::Relaxed);
                        }
                        return Ok(Answer { status, url, body });
                    }
                    NacosError::Http {
                        method: method.to_string(),
                        url,
                        status: status.as_u16(),
                        body: clip(&body),
                    }
                }
                Err(source) => NacosError::Transport {
                    url,
                    source: source.without_url(),
                },
            };
            tracing::debug!(%error, "Nacos server failed; trying the next one");
            // An answer (5xx) says more than a refused connection: keep it.
            if !matches!(
                (&failure, &error),
                (Some(NacosError::Http { .. }), NacosError::Transport { .. })
            ) {
                failure = Some(error);
            }
        }
        Err(failure.unwrap_or_else(|| NacosError::config("servers", "no Nacos server configured")))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use super::*;

    /// A login that takes 1 s and hands out `t1`, `t2`, ... living 10 s (renewed at 9 s).
    fn slow_login(
        logins: &Arc<AtomicUsize>,
    ) -> impl FnOnce() -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Token, NacosError>> + Send>,
    > {
        let logins = logins.clone();
        move || {
            Box::pin(async move {
                let n = logins.fetch_add(1, Ordering::SeqCst) + 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = Instant::now();
                Ok(Token {
                    value: Secret::new(format!("t{n}")),
                    renew_at: now + Duration::from_secs(9),
                    expires_at: now + Duration::from_secs(10),
                })
            })
        }
    }

    /// Runs `calls` concurrent [`TokenCache::get`]s; returns each one's token and wait.
    async fn concurrent_gets(
        cache: &Arc<TokenCache>,
        logins: &Arc<AtomicUsize>,
        refused: Option<&str>,
        calls: usize,
    ) -> Vec<(String, Duration)> {
        let tasks: Vec<_> = (0..calls)
            .map(|_| {
                let (cache, login) = (cache.clone(), slow_login(logins));
                let refused = refused.map(Secret::from);
                tokio::spawn(async move {
                    let started = Instant::now();
                    let token = cache.get(refused.as_ref(), login).await.unwrap();
                    (token.expose().to_string(), started.elapsed())
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    }

    #[tokio::test(start_paused = true)]
    async fn calls_during_a_renewal_go_on_with_the_valid_token() {
        let cache = Arc::new(TokenCache::default());
        let logins = Arc::new(AtomicUsize::new(0));
        assert_eq!(concurrent_gets(&cache, &logins, None, 1).await[0].0, "t1");

        // Due for renewal (9.5 s), not expired (10 s): one call renews, 49 do not wait.
        tokio::time::advance(Duration::from_millis(9_500)).await;
        let results = concurrent_gets(&cache, &logins, None, 50).await;
        assert_eq!(logins.load(Ordering::SeqCst), 2, "one renewal");
        let waited: Vec<_> = results
            .iter()
            .filter(|(_, wait)| *wait >= Duration::from_millis(500))
            .collect();
        assert_eq!(waited.len(), 1, "only the renewing call waits: {results:?}");
        assert_eq!(waited[0].0, "t2");
        assert_eq!(
            results.iter().filter(|(token, _)| token == "t1").count(),
            49
        );
        // Afterwards everyone has the new token at once.
        let after = concurrent_gets(&cache, &logins, None, 5).await;
        assert!(
            after
                .iter()
                .all(|(token, wait)| token == "t2" && wait.is_zero()),
            "{after:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn calls_waiting_on_a_failed_login_share_its_failure() {
        let cache = Arc::new(TokenCache::default());
        let logins = Arc::new(AtomicUsize::new(0));
        let failing = |logins: &Arc<AtomicUsize>| {
            let logins = logins.clone();
            move || async move {
                logins.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_secs(1)).await;
                Err::<Token, _>(NacosError::config("login", "refused"))
            }
        };
        let started = Instant::now();
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let (cache, login) = (cache.clone(), failing(&logins));
                tokio::spawn(async move { cache.get(None, login).await.map(|_| ()) })
            })
            .collect();
        for task in tasks {
            let error = task.await.unwrap().unwrap_err();
            assert!(error.to_string().contains("refused"), "{error}");
        }
        // One login for all 20 calls, not 20 logins one after another.
        assert_eq!(logins.load(Ordering::SeqCst), 1);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        // The next call (nobody logging in) tries again.
        assert!(cache.get(None, failing(&logins)).await.is_err());
        assert_eq!(logins.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_calls_share_one_login() {
        let cache = Arc::new(TokenCache::default());
        let logins = Arc::new(AtomicUsize::new(0));
        // No token yet: everyone waits for the same single login.
        let results = concurrent_gets(&cache, &logins, None, 50).await;
        assert_eq!(logins.load(Ordering::SeqCst), 1);
        assert!(results.iter().all(|(token, _)| token == "t1"));

        // Expired (11 s): one login again.
        tokio::time::advance(Duration::from_secs(11)).await;
        let results = concurrent_gets(&cache, &logins, None, 50).await;
        assert_eq!(logins.load(Ordering::SeqCst), 2);
        assert!(results.iter().all(|(token, _)| token == "t2"));

        // Refused by a server (403) in 50 calls at once: one login, not 50.
        let results = concurrent_gets(&cache, &logins, Some("t2"), 50).await;
        assert_eq!(logins.load(Ordering::SeqCst), 3);
        assert!(
            results.iter().all(|(token, _)| token == "t3"),
            "{results:?}"
        );
    }
}
