//! One service's providers as the client balances over them: the registry's list,
//! each provider's endpoint, and the balancer's picker for exactly this list.
//!
//! A route is built when the service's provider list changes (off the call path) and
//! only read by calls, so a call finds its endpoints by index: no address lookups,
//! no gathering of candidates, no per-call rebuilding of balancer state.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use tokio::time::Instant;

use super::pool::{Endpoint, Pool};
use crate::admin::CallMetrics;
use crate::balance::{LiveCandidates, LoadBalancer, Picker};
use crate::registry::Provider;
use crate::service::ServiceKey;

/// Pickers kept per route for handles with their own balancer (`with_balancer`).
const MAX_OVERRIDES: usize = 8;

/// A handle-level balancer and its picker for one route.
type Override = (Arc<dyn LoadBalancer>, Arc<dyn Picker>);

/// A service's providers, endpoints and picker.
pub(crate) struct Route {
    pub(crate) providers: Vec<Provider>,
    pub(crate) endpoints: Vec<Arc<Endpoint>>,
    picker: Arc<dyn Picker>,
    /// Pickers of handle-level balancers, keyed by the balancer they came from.
    overrides: Mutex<Vec<Override>>,
    /// Per-provider pick counters, resolved when the route is built (empty with
    /// metrics off): counting an attempt takes no lookup.
    picks: Vec<Counter>,
}

impl Route {
    /// The route for `providers`. Providers that were not in `previous` start with a
    /// clean slate: a provider that reappears in the registry is tried at once,
    /// whatever its reconnect backoff or ejection were.
    ///
    /// With `metrics`, the route resolves the pick counter of each provider of `key`.
    pub(crate) fn new(
        key: &ServiceKey,
        providers: Vec<Provider>,
        pool: &Pool,
        balancer: &dyn LoadBalancer,
        previous: Option<&Route>,
        metrics: Option<&CallMetrics>,
    ) -> Self {
        let endpoints = providers
            .iter()
            .map(|p| {
                let endpoint = pool.endpoint(&p.addr);
                let known = previous.is_some_and(|r| r.providers.iter().any(|q| q.addr == p.addr));
                if previous.is_some() && !known {
                    endpoint.reset();
                }
                endpoint
            })
            .collect();
        let picks = match metrics {
            Some(metrics) => providers
                .iter()
                .map(|p| metrics.pick_counter(key, &p.addr))
                .collect(),
            None => Vec::new(),
        };
        Self {
            picker: Arc::from(balancer.picker(&providers)),
            providers,
            endpoints,
            overrides: Mutex::default(),
            picks,
        }
    }

    /// Counts an attempt sent to provider `i`, when metrics are on.
    pub(crate) fn count_pick(&self, i: usize) {
        if let Some(counter) = self.picks.get(i) {
            counter.inc();
        }
    }

    /// The picker of `balancer` for this route (the client's own when `None`, borrowed:
    /// the common case touches no shared reference count).
    pub(crate) fn picker(&self, balancer: Option<&Arc<dyn LoadBalancer>>) -> RoutePicker<'_> {
        let Some(balancer) = balancer else {
            return RoutePicker::Own(&*self.picker);
        };
        let mut overrides = self.overrides.lock();
        if let Some((_, picker)) = overrides.iter().find(|(b, _)| Arc::ptr_eq(b, balancer)) {
            return RoutePicker::Override(picker.clone());
        }
        let picker: Arc<dyn Picker> = Arc::from(balancer.picker(&self.providers));
        if overrides.len() == MAX_OVERRIDES {
            overrides.remove(0);
        }
        overrides.push((balancer.clone(), picker.clone()));
        RoutePicker::Override(picker)
    }
}

/// A route's picker for one call: its own, or a handle-level balancer's.
pub(crate) enum RoutePicker<'a> {
    Own(&'a dyn Picker),
    Override(Arc<dyn Picker>),
}

impl std::ops::Deref for RoutePicker<'_> {
    type Target = dyn Picker;

    fn deref(&self) -> &Self::Target {
        match self {
            RoutePicker::Own(picker) => *picker,
            RoutePicker::Override(picker) => &**picker,
        }
    }
}

/// How choosy a pick is: the client asks for the best tier first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tier {
    /// Admitted by its breaker, and neither going away nor backing off.
    Preferred,
    /// Admitted by its breaker.
    Admitted,
    /// Every provider not yet tried by the call would be ejected: ejection is
    /// ignored ("panic mode"), since refusing all calls helps nobody.
    Panic,
}

impl Tier {
    pub(crate) const ALL: [Tier; 3] = [Tier::Preferred, Tier::Admitted, Tier::Panic];
}

/// A route seen by one pick: providers the call already tried are not eligible.
pub(crate) struct View<'a> {
    pub(crate) route: &'a Route,
    pub(crate) tried: &'a [usize],
    pub(crate) tier: Tier,
    pub(crate) now: Instant,
}

impl LiveCandidates for View<'_> {
    fn providers(&self) -> &[Provider] {
        &self.route.providers
    }

    fn is_eligible(&self, i: usize) -> bool {
        let Some(endpoint) = self.route.endpoints.get(i) else {
            return false;
        };
        if self.tried.contains(&i) {
            return false;
        }
        match self.tier {
            Tier::Preferred => endpoint.admits(self.now) && !endpoint.is_avoided(self.now),
            Tier::Admitted => endpoint.admits(self.now),
            Tier::Panic => true,
        }
    }

    fn in_flight(&self, i: usize) -> usize {
        self.route.endpoints.get(i).map_or(0, |e| e.in_flight())
    }

    fn latency(&self, i: usize) -> Option<Duration> {
        self.route
            .endpoints
            .get(i)
            .and_then(|e| e.latency_at(self.now))
    }
}
