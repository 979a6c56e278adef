//! Turning the failures users cause (a misspelt service or method, arguments that do not
//! fit) into one line that says what to do, with a did-you-mean where one is known.

use erpc::ServiceKey;

use crate::error::{did_you_mean, CliError};
use crate::target::{MethodInfo, Target};

/// `key` names no service: say so, with the closest known service when the target has a
/// catalogue (or the same interface under another group or version).
pub(crate) async fn unknown_service(target: &Target, key: &ServiceKey) -> CliError {
    let known = target.services().await.ok().flatten().unwrap_or_default();
    if known.contains(key) {
        return CliError::unreachable(format!(
            "{key} is registered at {} but none of its providers is up",
            target.shown()
        ));
    }
    if let Some(other) = known.iter().find(|k| k.interface == key.interface) {
        return CliError::remote(format!(
            "unknown service {key}: {} is registered with --group {:?} --version {:?}",
            other.interface, other.group, other.version
        ));
    }
    let names: Vec<&str> = known.iter().map(|k| k.interface.as_str()).collect();
    let hint = match did_you_mean(&key.interface, names.iter().copied()) {
        Some(name) => format!(" (did you mean {name}?)"),
        None if !known.is_empty() => format!(" (known: {})", names.join(", ")),
        None if !target.has_catalogue() => {
            " (pass --admin HOST:PORT to list the provider's services)".to_string()
        }
        None => String::new(),
    };
    CliError::remote(format!("unknown service {key} at {}{hint}", target.shown()))
}

/// `method` is not a method of `key`: say so, with the closest method name when the
/// registry metadata or the admin listener lists them.
pub(crate) async fn unknown_method(target: &Target, key: &ServiceKey, method: &str) -> CliError {
    let methods = match target.methods(key).await {
        Ok(Some((methods, _))) => methods,
        _ => {
            return CliError::remote(format!(
                "unknown method {method} of {key} (run `erpc describe` with --admin HOST:PORT to list its methods)"
            ))
        }
    };
    let names: Vec<&str> = methods.iter().map(|m| m.name.as_str()).collect();
    let hint = match did_you_mean(method, names.iter().copied()) {
        Some(name) => format!("did you mean {name}? "),
        None => String::new(),
    };
    CliError::remote(format!(
        "unknown method {method} of {key}: {hint}(methods: {})",
        names.join(", ")
    ))
}

/// The provider could not decode the arguments: say which signature they must fit.
pub(crate) async fn bad_arguments(
    target: &Target,
    key: &ServiceKey,
    method: &str,
    reason: &str,
) -> CliError {
    let known = match target.methods(key).await {
        Ok(Some((methods, _))) => methods.into_iter().find(|m| m.name == method),
        _ => None,
    };
    let expected = match known.filter(|m| m.args.is_some()) {
        Some(m) => format!("{} of {key}, a JSON array in that order", signature(&m)),
        None => format!(
            "{method} of {key}, a JSON array with one element per argument (--admin HOST:PORT shows their names)"
        ),
    };
    let reason = reason.strip_prefix("decode failed: ").unwrap_or(reason);
    CliError::remote(format!(
        "arguments do not fit {expected}: the provider says: {reason}"
    ))
}

/// `name(a, b)`, or `name(..)` when argument names are unknown.
pub(crate) fn signature(method: &MethodInfo) -> String {
    match &method.args {
        Some(args) => format!("{}({})", method.name, args.join(", ")),
        None => format!("{}(..)", method.name),
    }
}
