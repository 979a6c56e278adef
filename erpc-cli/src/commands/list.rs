//! `erpc list`: services with group, version, provider count and healthy count.

use erpc::ServiceKey;
use futures::future::join_all;

use crate::args::{Format, Global};
use crate::error::CliError;
use crate::output;
use crate::target::{accepts_connections, Target};

/// One listed service.
struct Row {
    key: ServiceKey,
    /// Providers the registry lists.
    providers: usize,
    /// Of those, the ones taking calls (weight > 0) that accept a connection now.
    healthy: usize,
}

/// Lists every service of the registry (or the `--admin` provider), filtered by
/// `--group` / `--version` when given.
pub(crate) async fn run(global: &Global) -> Result<(), CliError> {
    let target = crate::target::Target::new(global)?;
    let Some(mut keys) = target.services().await? else {
        return Err(CliError::usage(format!(
            "{} keeps no service catalogue: list needs a nacos:// or zookeeper:// registry, or the provider's admin listener (--admin HOST:PORT); `erpc describe SERVICE` works on any target",
            target.shown()
        )));
    };
    keys.retain(|k| {
        global.group.as_ref().is_none_or(|g| *g == k.group)
            && global.version.as_ref().is_none_or(|v| *v == k.version)
    });
    keys.sort_by_key(ToString::to_string);
    let rows = join_all(keys.into_iter().map(|key| row(&target, key))).await;
    let rows = rows.into_iter().collect::<Result<Vec<_>, _>>()?;
    let printed = match global.output {
        Format::Json => {
            let list: Vec<_> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "service": r.key.interface, "group": r.key.group, "version": r.key.version,
                        "providers": r.providers, "healthy": r.healthy,
                    })
                })
                .collect();
            output::json(&serde_json::Value::Array(list), Format::Json)
        }
        Format::Table => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.key.interface.clone(),
                        r.key.group.clone(),
                        r.key.version.clone(),
                        r.providers.to_string(),
                        r.healthy.to_string(),
                    ]
                })
                .collect();
            output::table(
                &["SERVICE", "GROUP", "VERSION", "PROVIDERS", "HEALTHY"],
                &cells,
            )
        }
    };
    println!("{printed}");
    Ok(())
}

async fn row(target: &Target, key: ServiceKey) -> Result<Row, CliError> {
    let providers = target.providers(&key).await?;
    let checks = providers
        .iter()
        .filter(|p| p.takes_calls())
        .map(|p| accepts_connections(&p.addr, target.timeout));
    let healthy = join_all(checks).await.into_iter().filter(|up| *up).count();
    Ok(Row {
        key,
        providers: providers.len(),
        healthy,
    })
}
