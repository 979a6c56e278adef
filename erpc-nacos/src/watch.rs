//! Subscriptions: poll a service's instance list and stream the changes.
//!
//! Nacos pushes only to its own clients (UDP for the Java client's User-Agent, gRPC for
//! 2.x clients), so erpc polls, at a jittered interval (default 500 ms ±20 %) that
//! notices a change within a second without making many subscribers poll in step.
//!
//! The rules that keep consumers working when Nacos is not:
//! - a failed poll emits nothing: the consumer keeps its last list;
//! - an error is never turned into an empty list; only an empty list *answered* by Nacos
//!   (every provider gone) is emitted as one;
//! - with a cache directory, each list received is written to disk, and a subscription
//!   opened while Nacos is unreachable starts from that file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use erpc_core::registry::{Change, ChangeStream, Provider};
use futures::StreamExt;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::ops::Naming;
use crate::NacosError;

/// Opens the stream of `service`'s provider changes; the first item is the current list.
pub(crate) async fn subscribe(
    naming: Arc<Naming>,
    service: String,
) -> Result<ChangeStream, NacosError> {
    let cache = naming.config.cache_dir.as_ref().map(|dir| {
        cache_file(
            dir,
            &naming.config.namespace,
            &naming.config.group,
            &service,
        )
    });
    let first = match naming.providers(&service).await {
        Ok(list) => {
            if let Some(path) = &cache {
                store(path, &list);
            }
            list
        }
        Err(error) => match cache.as_deref().map(load) {
            Some(Ok(list)) => {
                tracing::warn!(%error, %service, providers = list.len(), "Nacos unreachable; starting from the cached provider list");
                list
            }
            Some(Err(cache_error)) => {
                tracing::debug!(error = %cache_error, "no usable provider cache");
                return Err(error);
            }
            None => return Err(error),
        },
    };
    let state = Poll {
        naming,
        service,
        cache,
        previous: first.clone(),
        failing: false,
    };
    let first = futures::stream::iter([Change::between(&[], first)]);
    let rest = futures::stream::unfold(state, |mut state| async move {
        let change = state.next_change().await;
        Some((change, state))
    });
    Ok(first.chain(rest).boxed())
}

struct Poll {
    naming: Arc<Naming>,
    service: String,
    cache: Option<PathBuf>,
    previous: Vec<Provider>,
    failing: bool,
}

impl Poll {
    /// Polls until the list differs from the previous one.
    async fn next_change(&mut self) -> Change {
        loop {
            tokio::time::sleep(jittered(self.naming.config.poll_interval)).await;
            let current = match self.naming.providers(&self.service).await {
                Ok(current) => current,
                Err(error) => {
                    if !self.failing {
                        tracing::warn!(%error, service = %self.service, "polling Nacos failed; keeping the last provider list");
                    }
                    self.failing = true;
                    continue;
                }
            };
            if self.failing {
                tracing::info!(service = %self.service, "polling Nacos works again");
                self.failing = false;
            }
            if current == self.previous {
                continue;
            }
            if let Some(path) = &self.cache {
                store(path, &current);
            }
            let previous = std::mem::replace(&mut self.previous, current.clone());
            return Change::between(&previous, current);
        }
    }
}

/// `interval` ±20 %.
fn jittered(interval: Duration) -> Duration {
    interval.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
}

/// A provider as stored in the cache file.
#[derive(Debug, Serialize, Deserialize)]
struct CachedProvider {
    addr: String,
    weight: u32,
    #[serde(default)]
    metadata: std::collections::BTreeMap<String, String>,
}

/// `{dir}/{namespace}/{group}@@{service}.json`, with unsafe file-name characters escaped.
fn cache_file(dir: &Path, namespace: &str, group: &str, service: &str) -> PathBuf {
    let namespace = if namespace.is_empty() {
        crate::url::DEFAULT_NAMESPACE
    } else {
        namespace
    };
    dir.join(escape(namespace))
        .join(format!("{}@@{}.json", escape(group), escape(service)))
}

fn escape(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c.to_string()
            } else {
                format!("%{:02X}", u32::from(c))
            }
        })
        .collect()
}

/// Writes the list (write-then-rename, so a reader never sees half a file). Small and
/// only on change, so it is written inline.
fn store(path: &Path, providers: &[Provider]) {
    let cached: Vec<CachedProvider> = providers
        .iter()
        .map(|p| CachedProvider {
            addr: p.addr.clone(),
            weight: p.weight,
            metadata: p.metadata.clone(),
        })
        .collect();
    let result = (|| {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec_pretty(&cached)?)?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(error) = result {
        tracing::warn!(%error, path = %path.display(), "cannot write the provider cache");
    }
}

fn load(path: &Path) -> Result<Vec<Provider>, NacosError> {
    let cache_error = |source| NacosError::Cache {
        path: path.to_path_buf(),
        source,
    };
    let bytes = std::fs::read(path).map_err(cache_error)?;
    let cached: Vec<CachedProvider> = serde_json::from_slice(&bytes)
        .map_err(|e| cache_error(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    Ok(cached
        .into_iter()
        .map(|c| Provider {
            addr: c.addr,
            weight: c.weight,
            metadata: c.metadata,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_round_trip_and_file_names() {
        let dir = tempfile::tempdir().unwrap();
        let path = cache_file(dir.path(), "", "DEFAULT_GROUP", "providers:a::B:1.0:");
        assert!(path.ends_with("public/DEFAULT_GROUP@@providers%3Aa%3A%3AB%3A1.0%3A.json"));
        let mut p = Provider::new("10.0.0.1:9000");
        p.metadata.insert("protocol".into(), "erpc".into());
        store(&path, &[p.clone()]);
        assert_eq!(load(&path).unwrap(), vec![p]);
        assert!(load(&dir.path().join("missing.json")).is_err());
    }

    #[test]
    fn jitter_stays_within_20_percent() {
        for _ in 0..100 {
            let d = jittered(Duration::from_millis(500));
            assert!(d >= Duration::from_millis(400) && d <= Duration::from_millis(600));
        }
    }
}
