//! `erpc providers SERVICE [--all]`: the providers the registry lists, with their
//! metadata; with `--all`, every instance it keeps (disabled and unhealthy ones too)
//! and its state.

use erpc::registry::Provider;

use crate::args::{Format, Global};
use crate::error::CliError;
use crate::explain;
use crate::output;

/// One row: a provider and its state (`enabled`, `disabled`, `unhealthy`).
struct Row {
    provider: Provider,
    state: &'static str,
}

/// Prints the providers of `service` (every instance with `all`).
pub(crate) async fn run(global: &Global, service: &str, all: bool) -> Result<(), CliError> {
    let target = crate::target::Target::new(global)?;
    let key = global.key(service);
    // What consumers call (every cluster), then, with `all`, what else Nacos keeps.
    let providers = target.providers(&key).await?;
    let others = match all {
        // Only Nacos keeps disabled instances: elsewhere every listed one is enabled.
        true => target
            .unlisted_instances(&key, &providers)
            .await
            .transpose()?,
        false => None,
    };
    let mut rows: Vec<Row> = providers
        .into_iter()
        .map(|provider| Row {
            provider,
            state: "enabled",
        })
        .collect();
    if let Some(others) = others {
        rows.extend(others.into_iter().map(|i| Row {
            state: if i.enabled { "unhealthy" } else { "disabled" },
            provider: i.provider,
        }));
        rows.sort_by(|a, b| a.provider.addr.cmp(&b.provider.addr));
    }
    if rows.is_empty() {
        return Err(explain::unknown_service(&target, &key).await);
    }
    let printed = match global.output {
        Format::Json => {
            let list: Vec<_> = rows
                .iter()
                .map(|Row { provider: p, state }| {
                    let mut item = serde_json::json!({"addr": p.addr, "weight": p.weight, "metadata": p.metadata});
                    if all {
                        item["state"] = serde_json::json!(state);
                    }
                    item
                })
                .collect();
            output::json(&serde_json::Value::Array(list), Format::Json)
        }
        Format::Table => {
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|Row { provider: p, state }| {
                    let version = p.metadata.get("erpc.version").cloned().unwrap_or_default();
                    let mut row = vec![p.addr.clone(), p.weight.to_string()];
                    if all {
                        row.push(state.to_string());
                    }
                    row.push(version);
                    row
                })
                .collect();
            let headers: &[&str] = match all {
                true => &["ADDRESS", "WEIGHT", "STATE", "ERPC"],
                false => &["ADDRESS", "WEIGHT", "ERPC"],
            };
            output::table(headers, &table)
        }
    };
    println!("{printed}");
    Ok(())
}
