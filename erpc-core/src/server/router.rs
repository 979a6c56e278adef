//! Routing table: from a request's (interface, group, version, method) to a service and
//! method index, built once at start so dispatch costs two hash lookups and no string
//! scan.

use rustc_hash::FxHashMap;
use std::sync::Arc;

use super::dispatch::MethodPace;
use super::limits::{Admission, Gate, LimitRule};
use crate::admin::{CallMetrics, InFlight, MethodObserver, Side};
use crate::protocol::{RawHead, Status};
use crate::service::{Service, ServiceKey};
use crate::Error;

/// One hosted service with its method-name index and overload gates.
pub(crate) struct Route {
    /// Shared with every call's context (no copy of the strings per call).
    pub(crate) key: Arc<ServiceKey>,
    pub(crate) service: Arc<dyn Service>,
    /// Method indexes by name, looked up with the request's bytes.
    methods: FxHashMap<&'static [u8], usize>,
    service_gate: Gate,
    method_gates: Vec<Gate>,
    /// Metric handles by method index, resolved when the route is built (empty with
    /// metrics off): observing a call takes no lookup.
    observers: Vec<MethodObserver>,
    /// How each method's first polls have run, by method index.
    paces: Vec<Arc<MethodPace>>,
}

impl Route {
    /// Starts observing a call of `method` when metrics are on.
    pub(crate) fn observe(&self, method: usize) -> Option<InFlight> {
        self.observers.get(method).map(MethodObserver::begin)
    }

    /// How `method`'s first polls have run (`method` is an index `resolve` gave).
    pub(crate) fn pace(&self, method: usize) -> &Arc<MethodPace> {
        &self.paces[method]
    }

    /// Passes the method's then the service's limits, or says which refused.
    pub(crate) fn admit(&self, method: usize) -> Result<Admission, String> {
        let mut admission = Admission::default();
        let descriptor = self.service.descriptor();
        if let Some(gate) = self.method_gates.get(method) {
            let name = descriptor.methods.get(method).map_or("", |m| m.name);
            gate.admit(&mut admission, || format!("method {name}"))?;
        }
        self.service_gate.admit(&mut admission, || {
            format!("service {}", descriptor.interface)
        })?;
        Ok(admission)
    }
}

/// All hosted services.
#[derive(Default)]
pub(crate) struct Router {
    /// Routes by interface name, then (group, version) among the few of each interface:
    /// a request's borrowed names are looked up as bytes, without building a key.
    services: FxHashMap<Box<[u8]>, Vec<Route>>,
}

impl Router {
    /// Adds a service with the limit rules naming its interface, observed by `metrics`
    /// when given; two services with the same key, or a rule naming an unknown method,
    /// are configuration errors.
    pub(crate) fn add(
        &mut self,
        service: Arc<dyn Service>,
        rules: &[LimitRule],
        metrics: Option<&CallMetrics>,
    ) -> Result<(), Error> {
        let key = service.key();
        let same_interface = self.services.get(key.interface.as_bytes());
        if same_interface.is_some_and(|routes| routes.iter().any(|r| *r.key == key)) {
            return Err(Error::Config(format!("service {key} added twice")));
        }
        let descriptor = service.descriptor();
        let methods = descriptor
            .methods
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name.as_bytes(), i))
            .collect();
        let mut service_gate = Gate::default();
        let mut method_gates: Vec<Gate> =
            descriptor.methods.iter().map(|_| Gate::default()).collect();
        for rule in rules.iter().filter(|r| r.service == descriptor.interface) {
            match &rule.method {
                None => service_gate = Gate::from_rule(rule),
                Some(method) => {
                    let index = descriptor.method_index(method).ok_or_else(|| {
                        Error::Config(format!(
                            "limit names unknown method {method} of {}",
                            rule.service
                        ))
                    })?;
                    method_gates[index] = Gate::from_rule(rule);
                }
            }
        }
        let observers = match metrics {
            Some(metrics) => descriptor
                .methods
                .iter()
                .map(|m| metrics.method(Side::Provider, &key, m.name))
                .collect(),
            None => Vec::new(),
        };
        self.services
            .entry(key.interface.as_bytes().into())
            .or_default()
            .push(Route {
                key: Arc::new(key),
                service,
                methods,
                service_gate,
                method_gates,
                observers,
                paces: descriptor.methods.iter().map(|_| Arc::default()).collect(),
            });
        Ok(())
    }

    /// Every hosted service.
    pub(crate) fn services(&self) -> impl Iterator<Item = &Arc<dyn Service>> {
        self.services.values().flatten().map(|r| &r.service)
    }

    /// The service and method index for a request, or the status to answer. The
    /// request's names are compared as bytes: those that match a route's are UTF-8 by
    /// that, and only a request that matches none is checked (a name that is not UTF-8
    /// is a bad request, as it would be anywhere else in the head).
    pub(crate) fn resolve(&self, head: &RawHead<'_>) -> Result<(&Route, usize), (Status, String)> {
        let route = self.services.get(head.interface).and_then(|routes| {
            routes.iter().find(|r| {
                r.key.group.as_bytes() == head.group && r.key.version.as_bytes() == head.version
            })
        });
        let Some(route) = route else {
            return Err(unrouted(head));
        };
        let Some(&index) = route.methods.get(head.method) else {
            let [.., method] = head.names().map_err(bad_request)?;
            return Err((
                Status::MethodNotFound,
                format!("method {method} not found on {}", route.key),
            ));
        };
        Ok((route, index))
    }
}

/// Why a request routes nowhere: a name that is not UTF-8, or no such service.
fn unrouted(head: &RawHead<'_>) -> (Status, String) {
    match head.names() {
        Ok([interface, group, version, _]) => {
            let key = ServiceKey::new(interface, group, version);
            (
                Status::ServiceNotFound,
                format!("service {key} is not hosted here"),
            )
        }
        Err(message) => bad_request(message),
    }
}

/// A head the server cannot read is a bad request.
fn bad_request(message: String) -> (Status, String) {
    (Status::BadRequest, message)
}
