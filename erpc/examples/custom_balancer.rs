//! A load balancer of your own: zone-aware routing that keeps calls in the caller's
//! zone (from each provider's registry metadata) and spills over to other zones only
//! when no provider of its own zone can be called.
//!
//! ```sh
//! cargo run -p erpc --example custom_balancer
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use erpc::balance::{Candidates, LoadBalancer, PickContext, Picker};
use erpc::registry::{MemoryRegistry, Provider};

/// Tells which provider answered.
#[erpc::service(version = "1.0")]
pub trait Where {
    /// The zone of the provider that ran the call.
    #[erpc(idempotent)]
    async fn zone(&self) -> String;
}

struct InZone(&'static str);

impl Where for InZone {
    async fn zone(&self) -> String {
        self.0.to_string()
    }
}

/// Prefers providers whose `zone` metadata is `home`.
#[derive(Debug)]
struct ZoneAware {
    home: String,
}

impl LoadBalancer for ZoneAware {
    /// Called once per provider list (not per call): sort the list into local and
    /// remote once, so a pick is a short scan.
    fn picker(&self, providers: &[Provider]) -> Box<dyn Picker> {
        let (local, remote) = (0..providers.len())
            .partition(|&i| providers[i].metadata.get("zone") == Some(&self.home));
        Box::new(ZonePicker { local, remote })
    }
}

#[derive(Debug)]
struct ZonePicker {
    local: Vec<usize>,
    remote: Vec<usize>,
}

impl Picker for ZonePicker {
    fn pick(&self, candidates: &Candidates<'_>, _: &PickContext<'_>) -> Option<usize> {
        let least_loaded = |group: &[usize]| {
            group
                .iter()
                .copied()
                .filter(|&i| candidates.is_eligible(i))
                .min_by_key(|&i| candidates.get(i).map_or(usize::MAX, |c| c.in_flight))
        };
        least_loaded(&self.local).or_else(|| least_loaded(&self.remote))
    }
}

async fn provider(
    registry: &MemoryRegistry,
    zone: &'static str,
) -> Result<erpc::ServerHandle, erpc::Error> {
    Ok(erpc::Server::builder()
        .bind("127.0.0.1:0")
        .registry(registry.clone())
        .metadata("zone", zone)
        .add_service(WhereServer::new(InZone(zone)))
        .build()
        .await?
        .spawn())
}

/// Waits until `count` providers of `Where` are registered (servers register in the
/// background once spawned).
async fn wait_until_listed(registry: &MemoryRegistry, count: usize) -> Result<(), erpc::Error> {
    use erpc::registry::Registry;
    use futures::StreamExt;
    let descriptor = WhereClient::descriptor();
    let key = erpc::ServiceKey::new(
        descriptor.interface,
        descriptor.default_group,
        descriptor.default_version,
    );
    let mut changes = registry.subscribe(&key).await?;
    while let Some(change) = changes.next().await {
        if change.all.len() >= count {
            return Ok(());
        }
    }
    Err(erpc::Error::NoProvider {
        service: key.to_string(),
    })
}

#[tokio::main]
async fn main() -> Result<(), erpc::Error> {
    let registry = MemoryRegistry::new();
    let east = provider(&registry, "east").await?;
    let west = provider(&registry, "west").await?;

    wait_until_listed(&registry, 2).await?;

    let client = erpc::Client::builder()
        .registry(registry.clone())
        .balancer(ZoneAware {
            home: "west".into(),
        })
        .build()?;
    let stub = WhereClient::new(client).with_timeout(Duration::from_secs(2));
    let mut answered: BTreeMap<String, u32> = BTreeMap::new();
    for _ in 0..20 {
        *answered.entry(stub.zone().await?).or_default() += 1;
    }
    println!("from zone west, 20 calls answered by: {answered:?}");
    assert_eq!(answered.get("west"), Some(&20));

    // The home zone's only provider leaves: calls spill over to the other zone.
    west.shutdown().await?;
    let spilled = stub.zone().await?;
    println!("west gone, answered by: {spilled}");
    assert_eq!(spilled, "east");
    east.shutdown().await
}
