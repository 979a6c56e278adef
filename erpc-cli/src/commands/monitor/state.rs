//! What the page shows, refreshed by one polling task: the registry's services and
//! providers, each provider's rates from its admin `/metrics`, and a short history per
//! service; and the governance actions, sent to the registry.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use erpc::registry::{Provider, Registration};
use erpc::ServiceKey;
use futures::future::join_all;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::prom::{self, Totals};
use crate::error::chain;
use crate::target::{accepts_connections, Target};

/// Points of history kept per service (10 minutes at the default 2 s interval).
const HISTORY: usize = 300;

/// Registry metadata key of a provider's admin listener (set by erpc servers).
const ADMIN_KEY: &str = "erpc.admin";

/// The page's whole view, as `/api/state` serves it.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Snapshot {
    /// The registry URL without credentials.
    pub(crate) registry: String,
    /// Why governance is unavailable (ZooKeeper), or `None` when it works.
    pub(crate) governance_unsupported: Option<String>,
    /// Why providers disabled outside this monitor cannot be shown (the registry
    /// refused to list them), or `None`.
    pub(crate) disabled_unlisted: Option<String>,
    /// Actions need the operator token.
    pub(crate) token_required: bool,
    /// Unix milliseconds of the last refresh.
    pub(crate) updated_ms: u64,
    /// The seconds between refreshes.
    pub(crate) interval_s: f64,
    /// Why the last refresh failed (registry down), if it did.
    pub(crate) error: Option<String>,
    /// Every service, sorted.
    pub(crate) services: Vec<ServiceView>,
}

/// One service.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ServiceView {
    /// `group/interface:version`.
    pub(crate) key: String,
    /// Interface name.
    pub(crate) interface: String,
    /// Group (may be empty).
    pub(crate) group: String,
    /// Version.
    pub(crate) version: String,
    /// Providers, by address.
    pub(crate) providers: Vec<ProviderView>,
    /// Calls per second and p99 over time (oldest first).
    pub(crate) history: Vec<Point>,
}

/// One provider of one service.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProviderView {
    /// `host:port` (or `tls://host:port`).
    pub(crate) addr: String,
    /// Weight (100 normal, 0 drained).
    pub(crate) weight: u32,
    /// Listed by the registry (false: disabled from this monitor).
    pub(crate) enabled: bool,
    /// Accepted a TCP connection in this refresh.
    pub(crate) healthy: bool,
    /// The erpc version it registered.
    pub(crate) erpc_version: Option<String>,
    /// Its admin listener, from the metadata.
    pub(crate) admin: Option<String>,
    /// Registry metadata.
    pub(crate) metadata: BTreeMap<String, String>,
    /// Server-side figures from its `/metrics`, when read.
    pub(crate) stats: Option<Stats>,
    /// Why the figures are missing.
    pub(crate) stats_error: Option<String>,
}

/// A provider's figures over the last refresh interval.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Stats {
    /// Calls completed per second.
    pub(crate) rate: f64,
    /// Failed calls per second.
    pub(crate) error_rate: f64,
    /// Calls in progress now.
    pub(crate) in_flight: f64,
    /// 99th percentile latency in milliseconds (none without calls in the interval).
    pub(crate) p99_ms: Option<f64>,
    /// Calls completed since the provider started.
    pub(crate) calls_total: f64,
}

/// One point of a service's history.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Point {
    /// Unix milliseconds.
    pub(crate) t: u64,
    /// Calls per second over all providers.
    pub(crate) rate: f64,
    /// 99th percentile latency in milliseconds over all providers.
    pub(crate) p99_ms: Option<f64>,
}

/// A governance action, as the page posts it to `/api/governance`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Action {
    /// Interface name.
    pub(crate) interface: String,
    /// Group.
    #[serde(default)]
    pub(crate) group: String,
    /// Version.
    pub(crate) version: String,
    /// The provider's address as listed.
    pub(crate) addr: String,
    /// New weight, if it changes.
    pub(crate) weight: Option<u32>,
    /// Enable (true) or disable (false), if it changes.
    pub(crate) enabled: Option<bool>,
}

/// Why an action was refused.
#[derive(Debug)]
pub(crate) enum ActionError {
    /// The registry cannot do it (ZooKeeper).
    Unsupported(String),
    /// No such provider of that service.
    UnknownProvider(String),
    /// The request makes no sense (nothing to change, weight too high).
    Invalid(String),
    /// The registry failed.
    Registry(String),
}

/// A provider's counters at one refresh.
struct Seen {
    at: Instant,
    totals: Totals,
}

/// A service's providers as the registry lists them, with their enabled flag, and why
/// disabled ones could not be listed (when the registry refused).
type RegistryView = (Vec<(Provider, bool)>, Option<String>);

/// Mutable state behind the page.
#[derive(Default)]
struct State {
    snapshot: Snapshot,
    /// Last counters by (service key, provider address).
    previous: HashMap<(String, String), Seen>,
    /// History by service key.
    history: HashMap<String, VecDeque<Point>>,
    /// Providers disabled from here, by service: the registry no longer lists them, so
    /// the monitor remembers them to offer "enable".
    disabled: HashMap<ServiceKey, BTreeMap<String, Provider>>,
}

/// The monitor: its target registry and the state the page reads.
pub(crate) struct Monitor {
    target: Target,
    interval: Duration,
    http: reqwest::Client,
    state: Mutex<State>,
    /// Wakes the poller early (after an action).
    pub(crate) wake: tokio::sync::Notify,
}

impl Monitor {
    /// A monitor of `target`, refreshing every `interval`.
    pub(crate) fn new(target: Target, interval: Duration, token_required: bool) -> Self {
        let governance_unsupported = target.nacos().is_none().then(|| {
            format!(
                "governance is not supported by this registry ({}): weights and enabled flags are Nacos instance properties",
                target.shown()
            )
        });
        let snapshot = Snapshot {
            registry: target.shown(),
            governance_unsupported,
            token_required,
            interval_s: interval.as_secs_f64(),
            ..Snapshot::default()
        };
        let http = reqwest::Client::builder()
            .timeout(target.timeout)
            .build()
            .unwrap_or_default();
        Self {
            target,
            interval,
            http,
            state: Mutex::new(State {
                snapshot,
                ..State::default()
            }),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// The current view.
    pub(crate) fn snapshot(&self) -> Snapshot {
        self.state.lock().snapshot.clone()
    }

    /// Refreshes forever, every interval or when woken.
    pub(crate) async fn poll_forever(&self) {
        loop {
            self.refresh().await;
            tokio::select! {
                () = tokio::time::sleep(self.interval) => {}
                () = self.wake.notified() => {}
            }
        }
    }

    /// One refresh: services, providers, health and metrics.
    pub(crate) async fn refresh(&self) {
        let listed = match self.listed().await {
            Ok(listed) => listed,
            Err(error) => {
                let mut state = self.state.lock();
                state.snapshot.error = Some(error);
                state.snapshot.updated_ms = unix_ms();
                return;
            }
        };
        // Each admin listener is read once, whatever number of services it hosts.
        let mut admins: Vec<String> = listed
            .iter()
            .flat_map(|(_, providers)| providers.iter())
            .filter_map(|(p, _)| p.metadata.get(ADMIN_KEY).cloned())
            .collect();
        admins.sort();
        admins.dedup();
        let scrapes = join_all(admins.iter().map(|admin| self.scrape(admin))).await;
        let scrapes: HashMap<&String, Result<HashMap<String, Totals>, String>> =
            admins.iter().zip(scrapes).collect();
        let health = join_all(listed.iter().flat_map(|(_, providers)| {
            providers.iter().map(|(p, _)| {
                accepts_connections(&p.addr, self.target.timeout.min(Duration::from_secs(1)))
            })
        }))
        .await;
        let mut health = health.into_iter();

        let now = Instant::now();
        let mut state = self.state.lock();
        let mut services = Vec::with_capacity(listed.len());
        for (key, providers) in listed {
            let key_text = key.to_string();
            let mut window = Totals::default();
            let mut rate_sum = 0.0;
            let mut views = Vec::with_capacity(providers.len());
            for (provider, enabled) in providers {
                let healthy = health.next().unwrap_or(false);
                let admin = provider.metadata.get(ADMIN_KEY).cloned();
                let (stats, stats_error) = match admin.as_ref().and_then(|a| scrapes.get(a)) {
                    None => (
                        None,
                        Some("no admin listener in the registry metadata".into()),
                    ),
                    Some(Err(error)) => (None, Some(error.clone())),
                    Some(Ok(by_service)) => {
                        let totals = by_service.get(&key_text).cloned().unwrap_or_default();
                        let slot = (key_text.clone(), provider.addr.clone());
                        let stats = match state.previous.get(&slot) {
                            Some(seen) => {
                                let seconds = now.duration_since(seen.at).as_secs_f64().max(1e-3);
                                let delta = totals.since(&seen.totals);
                                window.add(&delta);
                                rate_sum += delta.calls / seconds;
                                Stats {
                                    rate: delta.calls / seconds,
                                    error_rate: delta.errors / seconds,
                                    in_flight: totals.in_flight,
                                    p99_ms: delta.p99().map(|s| s * 1000.0),
                                    calls_total: totals.calls,
                                }
                            }
                            None => Stats {
                                rate: 0.0,
                                error_rate: 0.0,
                                in_flight: totals.in_flight,
                                p99_ms: None,
                                calls_total: totals.calls,
                            },
                        };
                        state.previous.insert(slot, Seen { at: now, totals });
                        (Some(stats), None)
                    }
                };
                views.push(ProviderView {
                    erpc_version: provider.metadata.get("erpc.version").cloned(),
                    addr: provider.addr,
                    weight: provider.weight,
                    enabled,
                    healthy,
                    admin,
                    metadata: provider.metadata,
                    stats,
                    stats_error,
                });
            }
            let history = state.history.entry(key_text.clone()).or_default();
            history.push_back(Point {
                t: unix_ms(),
                rate: rate_sum,
                p99_ms: window.p99().map(|s| s * 1000.0),
            });
            while history.len() > HISTORY {
                history.pop_front();
            }
            services.push(ServiceView {
                key: key_text,
                interface: key.interface.clone(),
                group: key.group.clone(),
                version: key.version.clone(),
                providers: views,
                history: history.iter().cloned().collect(),
            });
        }
        let keys: Vec<String> = services.iter().map(|s| s.key.clone()).collect();
        state.history.retain(|k, _| keys.contains(k));
        // Providers gone from the registry leave no counters behind.
        state.previous.retain(|(key, addr), _| {
            services
                .iter()
                .any(|s| s.key == *key && s.providers.iter().any(|p| p.addr == *addr))
        });
        state.snapshot.services = services;
        state.snapshot.error = None;
        state.snapshot.updated_ms = unix_ms();
    }

    /// Every service with its providers (and whether each is enabled): the registry's
    /// list, plus the providers disabled from here that still accept connections.
    async fn listed(&self) -> Result<Vec<(ServiceKey, Vec<(Provider, bool)>)>, String> {
        let Some(mut keys) = self.target.services().await.map_err(|e| e.message)? else {
            return Err(format!(
                "{} keeps no service catalogue",
                self.target.shown()
            ));
        };
        keys.sort_by_key(ToString::to_string);
        let lists = join_all(keys.iter().map(|key| self.registry_view(key))).await;
        let mut listed = Vec::with_capacity(keys.len());
        let mut unlisted = None;
        for (key, view) in keys.into_iter().zip(lists) {
            let (mut all, why) = view?;
            unlisted = unlisted.or(why);
            let remembered: Vec<Provider> = {
                let mut state = self.state.lock();
                match state.disabled.get_mut(&key) {
                    Some(disabled) => {
                        // Listed again (enabled by someone else, or seen disabled).
                        disabled.retain(|addr, _| !all.iter().any(|(p, _)| p.addr == *addr));
                        disabled.values().cloned().collect()
                    }
                    None => Vec::new(),
                }
            };
            for provider in remembered {
                // A disabled provider that stopped is forgotten.
                if accepts_connections(&provider.addr, Duration::from_secs(1)).await {
                    all.push((provider, false));
                } else if let Some(disabled) = self.state.lock().disabled.get_mut(&key) {
                    disabled.remove(&provider.addr);
                }
            }
            all.sort_by(|a, b| a.0.addr.cmp(&b.0.addr));
            listed.push((key, all));
        }
        self.state.lock().snapshot.disabled_unlisted = unlisted;
        Ok(listed)
    }

    /// The providers of `key` with their enabled flag: what consumers call, and on Nacos
    /// every disabled instance too, whoever disabled it (rnacos lists none; a Nacos that
    /// refuses the listing neither, and then the reason comes along).
    async fn registry_view(&self, key: &ServiceKey) -> Result<RegistryView, String> {
        let providers = self.target.providers(key).await.map_err(|e| e.message)?;
        let others = self.target.unlisted_instances(key, &providers).await;
        let mut view: Vec<(Provider, bool)> = providers.into_iter().map(|p| (p, true)).collect();
        let unlisted = match others {
            None => None,
            Some(Ok(instances)) => {
                // An enabled instance whose heartbeats stopped is called by no one.
                let disabled = instances.into_iter().filter(|i| !i.enabled);
                view.extend(disabled.map(|i| (i.provider, false)));
                None
            }
            Some(Err(error)) => Some(format!(
                "providers disabled outside this monitor are not shown: listing every instance of {key} failed ({})",
                error.message
            )),
        };
        Ok((view, unlisted))
    }

    /// The server-side totals of the provider whose admin listener is `admin`.
    async fn scrape(&self, admin: &str) -> Result<HashMap<String, Totals>, String> {
        let url = format!("http://{admin}/metrics");
        let text = async {
            self.http
                .get(&url)
                .send()
                .await?
                .error_for_status()?
                .text()
                .await
        }
        .await
        .map_err(|e| format!("reading {url}: {}", chain(&e)))?;
        prom::server_totals(&text)
    }

    /// Applies `action` through the registry: sets the weight and enabled flag of one
    /// provider of one service.
    pub(crate) async fn act(&self, action: &Action) -> Result<(), ActionError> {
        let Some(nacos) = self.target.nacos() else {
            return Err(ActionError::Unsupported(
                self.state
                    .lock()
                    .snapshot
                    .governance_unsupported
                    .clone()
                    .unwrap_or_default(),
            ));
        };
        if action.weight.is_none() && action.enabled.is_none() {
            return Err(ActionError::Invalid(
                "say what to change: weight and/or enabled".into(),
            ));
        }
        if action.weight.is_some_and(|w| w > 1_000_000) {
            return Err(ActionError::Invalid(
                "weight must be at most 1000000 (100 is normal)".into(),
            ));
        }
        let key = ServiceKey::new(&action.interface, &action.group, &action.version);
        let listed = self
            .registry_view(&key)
            .await
            .map_err(ActionError::Registry)?;
        let (mut provider, was_enabled) =
            match listed.0.into_iter().find(|(p, _)| p.addr == action.addr) {
                Some(listed) => listed,
                None => {
                    let state = self.state.lock();
                    let remembered = state
                        .disabled
                        .get(&key)
                        .and_then(|d| d.get(&action.addr))
                        .cloned();
                    match remembered {
                        Some(provider) => (provider, false),
                        None => {
                            return Err(ActionError::UnknownProvider(format!(
                                "{key} has no provider {} in {}",
                                action.addr,
                                self.target.shown()
                            )))
                        }
                    }
                }
            };
        if let Some(weight) = action.weight {
            provider.weight = weight;
        }
        let enabled = action.enabled.unwrap_or(was_enabled);
        let registration = Registration {
            key: key.clone(),
            provider: provider.clone(),
        };
        nacos
            .update_instance(&registration, enabled)
            .await
            .map_err(|e| ActionError::Registry(chain(&e)))?;
        let mut state = self.state.lock();
        let disabled = state.disabled.entry(key).or_default();
        if enabled {
            disabled.remove(&provider.addr);
        } else {
            disabled.insert(provider.addr.clone(), provider);
        }
        drop(state);
        self.wake.notify_one();
        Ok(())
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
