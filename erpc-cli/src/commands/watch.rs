//! `erpc watch SERVICE`: the service's provider changes as the registry reports them.

use std::time::SystemTime;

use erpc::registry::{Change, Provider};
use erpc::ServiceKey;
use futures::StreamExt;

use crate::args::{Format, Global};
use crate::error::CliError;

/// Prints one line per added, changed or removed provider until ctrl-c, the end of the
/// subscription, or `count` lines. The providers present at the start print as `added`.
pub(crate) async fn run(
    global: &Global,
    service: &str,
    count: Option<u64>,
) -> Result<(), CliError> {
    let target = crate::target::Target::new(global)?;
    let key = global.key(service);
    // A registry that is down fails here (exit 3), not silently later; a service with no
    // provider yet is watched for, with a note in case its name is misspelt.
    if target.providers(&key).await?.is_empty() {
        let why = crate::explain::unknown_service(&target, &key).await;
        eprintln!("erpc: note: watching for providers: {}", why.message);
    }
    let registry = target.registry()?;
    let mut changes = registry.subscribe(&key).await?;
    let mut printed = 0u64;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let change = tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            change = changes.next() => change,
        };
        let Some(change) = change else {
            return Ok(());
        };
        for line in lines(&key, &change, global.output) {
            println!("{line}");
            printed += 1;
            if count.is_some_and(|n| printed >= n) {
                return Ok(());
            }
        }
    }
}

/// The lines of one change: added, then changed, then removed providers.
fn lines(key: &ServiceKey, change: &Change, format: Format) -> Vec<String> {
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let provider_line = |event: &str, p: &Provider| match format {
        Format::Json => serde_json::json!({
            "time": now, "event": event, "service": key.to_string(),
            "addr": p.addr, "weight": p.weight, "metadata": p.metadata,
        })
        .to_string(),
        Format::Table => format!("{now} {event:<7} {key} {} weight={}", p.addr, p.weight),
    };
    let mut lines: Vec<String> = change
        .added
        .iter()
        .map(|p| provider_line("added", p))
        .collect();
    lines.extend(change.updated.iter().map(|p| provider_line("changed", p)));
    lines.extend(change.removed.iter().map(|addr| {
        match format {
            Format::Json => serde_json::json!({
                "time": now, "event": "removed", "service": key.to_string(), "addr": addr,
            })
            .to_string(),
            Format::Table => format!("{now} {:<7} {key} {addr}", "removed"),
        }
    }));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_provider_change() {
        let key = ServiceKey::new("S", "", "1.0");
        let mut heavier = Provider::new("h:2");
        heavier.weight = 5;
        let change = Change {
            all: vec![],
            added: vec![Provider::new("h:1")],
            updated: vec![heavier],
            removed: vec!["h:3".into()],
        };
        let shown = lines(&key, &change, Format::Table);
        assert_eq!(shown.len(), 3);
        assert!(
            shown[0].ends_with("added   S:1.0 h:1 weight=100"),
            "{shown:?}"
        );
        assert!(
            shown[1].ends_with("changed S:1.0 h:2 weight=5"),
            "{shown:?}"
        );
        assert!(shown[2].ends_with("removed S:1.0 h:3"), "{shown:?}");
        let json: serde_json::Value =
            serde_json::from_str(&lines(&key, &change, Format::Json)[2]).unwrap();
        assert_eq!(json["event"], "removed");
    }
}
