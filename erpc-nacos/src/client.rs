//! HTTP to a set of Nacos servers: failover between addresses and the login token.
//!
//! Every call starts at the server that answered last. A connection failure, a timeout
//! or a 5xx moves on to the next address; any other answer ends the call and makes that
//! server the preferred one. With credentials configured, every call carries an
//! `accessToken` query parameter; the token is renewed before its TTL runs out and once
//! more when a server answers 403 (the call is then retried once).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use tokio::sync::Mutex;

use crate::api::LoginAnswer;
use crate::error::clip;
use crate::{NacosConfig, NacosError};

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

struct Token {
    value: String,
    renew_at: Instant,
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
    credentials: Option<(String, String)>,
    token: Mutex<Option<Token>>,
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
            token: Mutex::new(None),
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
        let mut retried = false;
        loop {
            let mut query = params.clone();
            if let Some(token) = self.token(retried).await? {
                query.push(("accessToken", token));
            }
            let answer = self.send(&method, path, &query, None).await?;
            if answer.status == StatusCode::FORBIDDEN && self.credentials.is_some() && !retried {
                tracing::debug!(url = %answer.url, "Nacos answered 403: renewing the token and retrying once");
                retried = true;
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

    /// The current token, logging in when there is none, it is due for renewal, or
    /// `renew` is set.
    async fn token(&self, renew: bool) -> Result<Option<String>, NacosError> {
        let Some((username, password)) = &self.credentials else {
            return Ok(None);
        };
        let mut token = self.token.lock().await;
        if let Some(t) = token.as_ref() {
            if !renew && Instant::now() < t.renew_at {
                return Ok(Some(t.value.clone()));
            }
        }
        let fresh = self.login(username, password).await?;
        let value = fresh.value.clone();
        *token = Some(fresh);
        Ok(Some(value))
    }

    async fn login(&self, username: &str, password: &str) -> Result<Token, NacosError> {
        let form = vec![
            ("username", username.to_string()),
            ("password", password.to_string()),
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
        let login: LoginAnswer =
            serde_json::from_str(&answer.body).map_err(|e| NacosError::Decode {
                url: answer.url.clone(),
                reason: e.to_string(),
                body: clip(&answer.body),
            })?;
        if login.access_token.is_empty() {
            return Err(NacosError::Decode {
                url: answer.url,
                reason: "login answer has no accessToken".to_string(),
                body: clip(&answer.body),
            });
        }
        // Renew at 90 % of the TTL (Nacos's own client does the same).
        let ttl = Duration::from_secs(login.token_ttl.max(10));
        tracing::debug!(ttl = ?ttl, "logged in to Nacos");
        Ok(Token {
            value: login.access_token,
            renew_at: Instant::now() + ttl.mul_f64(0.9),
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
