//! `erpc providers SERVICE`: the providers the registry lists, with their metadata.

use crate::args::{Format, Global};
use crate::error::CliError;
use crate::explain;
use crate::output;

/// Prints the providers of `service`.
pub(crate) async fn run(global: &Global, service: &str) -> Result<(), CliError> {
    let target = crate::target::Target::new(global)?;
    let key = global.key(service);
    let providers = target.providers(&key).await?;
    if providers.is_empty() {
        return Err(explain::unknown_service(&target, &key).await);
    }
    let printed = match global.output {
        Format::Json => {
            let list: Vec<_> = providers
                .iter()
                .map(|p| serde_json::json!({"addr": p.addr, "weight": p.weight, "metadata": p.metadata}))
                .collect();
            output::json(&serde_json::Value::Array(list), Format::Json)
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = providers
                .iter()
                .map(|p| {
                    let version = p.metadata.get("erpc.version").cloned().unwrap_or_default();
                    vec![p.addr.clone(), p.weight.to_string(), version]
                })
                .collect();
            output::table(&["ADDRESS", "WEIGHT", "ERPC"], &rows)
        }
    };
    println!("{printed}");
    Ok(())
}
