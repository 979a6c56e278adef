//! Routing table: from a request's (interface, group, version, method) to a service and
//! method index, built once at start so dispatch costs two hash lookups and no string
//! scan.

use std::collections::HashMap;
use std::sync::Arc;

use crate::protocol::{RequestHead, Status};
use crate::service::{Service, ServiceKey};
use crate::Error;

/// One hosted service with its method-name index.
pub(crate) struct Route {
    pub(crate) service: Arc<dyn Service>,
    methods: HashMap<&'static str, usize>,
}

/// All hosted services.
#[derive(Default)]
pub(crate) struct Router {
    services: HashMap<ServiceKey, Route>,
}

impl Router {
    /// Adds a service; two services with the same key are a configuration error.
    pub(crate) fn add(&mut self, service: Arc<dyn Service>) -> Result<(), Error> {
        let key = service.key();
        if self.services.contains_key(&key) {
            return Err(Error::Config(format!("service {key} added twice")));
        }
        let methods = service
            .descriptor()
            .methods
            .iter()
            .enumerate()
            .map(|(i, m)| (m.name, i))
            .collect();
        self.services.insert(key, Route { service, methods });
        Ok(())
    }

    /// Every hosted service.
    pub(crate) fn services(&self) -> impl Iterator<Item = &Arc<dyn Service>> {
        self.services.values().map(|r| &r.service)
    }

    /// The service and method index for a request, or the status to answer.
    pub(crate) fn resolve(&self, head: &RequestHead) -> Result<(&Route, usize), (Status, String)> {
        let key = &head.service;
        let route = self.services.get(key).ok_or_else(|| {
            (
                Status::ServiceNotFound,
                format!("service {key} is not hosted here"),
            )
        })?;
        let index = route
            .methods
            .get(head.method.as_str())
            .copied()
            .ok_or_else(|| {
                (
                    Status::MethodNotFound,
                    format!("method {} not found on {key}", head.method),
                )
            })?;
        Ok((route, index))
    }
}
