//! `erpc describe SERVICE`: the methods of a service, with argument names when the
//! provider's admin listener is asked.

use crate::args::{Format, Global};
use crate::error::CliError;
use crate::explain;
use crate::output;

/// Prints the methods of `service`.
pub(crate) async fn run(global: &Global, service: &str) -> Result<(), CliError> {
    let target = crate::target::Target::new(global)?;
    let key = global.key(service);
    let providers = target.providers(&key).await?;
    let Some((methods, source)) = target.methods(&key).await? else {
        if providers.is_empty() || target.has_catalogue() {
            return Err(explain::unknown_service(&target, &key).await);
        }
        return Err(CliError::usage(format!(
            "{} lists no methods for {key} (static providers carry no metadata): pass the provider's admin listener with --admin HOST:PORT",
            target.shown()
        )));
    };
    let printed = match global.output {
        Format::Json => {
            let methods: Vec<_> = methods
                .iter()
                .map(|m| serde_json::json!({"name": m.name, "args": m.args, "idempotent": m.idempotent}))
                .collect();
            let document = serde_json::json!({
                "service": key.interface, "group": key.group, "version": key.version,
                "providers": providers.len(), "source": source.name(), "methods": methods,
            });
            output::json(&document, Format::Json)
        }
        Format::Table => {
            // Idempotence is known only from the admin listener.
            let with_idempotence = methods.iter().any(|m| m.idempotent.is_some());
            let rows: Vec<Vec<String>> = methods
                .iter()
                .map(|m| {
                    let mut row = vec![explain::signature(m)];
                    if with_idempotence {
                        row.push(
                            if m.idempotent == Some(true) {
                                "yes"
                            } else {
                                "no"
                            }
                            .into(),
                        );
                    }
                    row
                })
                .collect();
            let header: &[&str] = if with_idempotence {
                &["METHOD", "IDEMPOTENT"]
            } else {
                &["METHOD"]
            };
            format!(
                "{key}  group {:?}  version {}  providers {}  (methods from {})\n{}",
                key.group,
                key.version,
                providers.len(),
                source.name(),
                output::table(header, &rows)
            )
        }
    };
    println!("{printed}");
    Ok(())
}
