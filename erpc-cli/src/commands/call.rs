//! `erpc call SERVICE METHOD ARGS`: one call with JSON arguments; also the pieces
//! `bench` shares (parsing arguments, building the client, explaining failures).

use erpc::{CallOptions, Client, Serialization, ServiceKey};

use crate::args::{CallArgs, Global};
use crate::error::CliError;
use crate::explain;
use crate::output;
use crate::target::Target;

/// Calls the method and prints its JSON result; an application error (a method's
/// `Err(..)`) prints too, and exits 1.
pub(crate) async fn run(global: &Global, args: &CallArgs) -> Result<(), CliError> {
    let prepared = Prepared::new(global, args).await?;
    let result = prepared.call().await;
    let value = match result {
        Ok(value) => value,
        Err(error) => return Err(prepared.explain(error).await),
    };
    println!("{}", output::json(&value, global.output));
    if is_application_error(&value) {
        return Err(CliError::remote(format!(
            "{}.{} returned an error value (printed above)",
            prepared.key, prepared.method
        )));
    }
    Ok(())
}

/// A call ready to send, any number of times.
pub(crate) struct Prepared {
    /// Where the service is.
    pub(crate) target: Target,
    /// The client, in the JSON serializer, without retries.
    pub(crate) client: Client,
    /// The service.
    pub(crate) key: ServiceKey,
    /// The method.
    pub(crate) method: String,
    /// The argument array.
    pub(crate) args: serde_json::Value,
    /// The call's timeout.
    pub(crate) options: CallOptions,
}

impl Prepared {
    /// Parses the arguments, checks the service exists where the registry can tell
    /// (so a registry that is down or a misspelt service fails before any call), and
    /// builds the client.
    pub(crate) async fn new(global: &Global, args: &CallArgs) -> Result<Self, CliError> {
        let values = parse_args(&read_args(&args.args)?)?;
        let target = crate::target::Target::new(global)?;
        let key = global.key(&args.service);
        if target.has_catalogue() && target.providers(&key).await?.is_empty() {
            return Err(explain::unknown_service(&target, &key).await);
        }
        let client = Client::builder()
            .registry(target.registry()?)
            .serialization(Serialization::Json)
            .retries(0)
            .timeout(global.timeout)
            .connect_timeout(global.timeout)
            .build()?;
        let options = CallOptions {
            timeout: Some(global.timeout),
            ..CallOptions::default()
        };
        Ok(Self {
            target,
            client,
            key,
            method: args.method.clone(),
            args: values,
            options,
        })
    }

    /// One call.
    pub(crate) async fn call(&self) -> Result<serde_json::Value, erpc::Error> {
        self.client
            .call(&self.key, &self.method, &self.args, &self.options)
            .await
    }

    /// `error` as one line that says what to change.
    pub(crate) async fn explain(&self, error: erpc::Error) -> CliError {
        let (target, key, method) = (&self.target, &self.key, self.method.as_str());
        match &error {
            erpc::Error::MethodNotFound { .. } => {
                explain::unknown_method(target, key, method).await
            }
            erpc::Error::ServiceNotFound { .. } => explain::unknown_service(target, key).await,
            erpc::Error::NoProvider { .. } if target.has_catalogue() => {
                explain::unknown_service(target, key).await
            }
            erpc::Error::Decode(reason) => {
                let reason = reason
                    .strip_prefix("provider could not decode the request: ")
                    .unwrap_or(reason);
                explain::bad_arguments(target, key, method, reason).await
            }
            _ => error.into(),
        }
    }
}

/// The arguments as given, or read from stdin for `-`.
fn read_args(given: &str) -> Result<String, CliError> {
    if given != "-" {
        return Ok(given.to_string());
    }
    std::io::read_to_string(std::io::stdin())
        .map_err(|e| CliError::usage(format!("cannot read the arguments from stdin: {e}")))
}

/// The argument array: JSON, and an array.
fn parse_args(text: &str) -> Result<serde_json::Value, CliError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        let shown = e.to_string();
        let what = shown
            .rsplit_once(" at line ")
            .map_or(shown.as_str(), |(what, _)| what);
        let line = text.lines().nth(e.line().saturating_sub(1)).unwrap_or("");
        CliError::usage(format!(
            "arguments are not valid JSON at line {}, column {}: {what} (in {:?})",
            e.line(),
            e.column(),
            line.chars().take(60).collect::<String>()
        ))
    })?;
    if !value.is_array() {
        return Err(CliError::usage(format!(
            "arguments must be a JSON array, one element per method argument (e.g. [{value}])"
        )));
    }
    Ok(value)
}

/// A method's `Err(..)` as serde writes a `Result`: an object with the one key `Err`.
pub(crate) fn is_application_error(value: &serde_json::Value) -> bool {
    value
        .as_object()
        .is_some_and(|o| o.len() == 1 && o.contains_key("Err"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_json_points_at_the_spot() {
        let error = parse_args("[1,\n 2 x]").unwrap_err();
        assert!(
            error
                .message
                .starts_with("arguments are not valid JSON at line 2, column 4: "),
            "{}",
            error.message
        );
        let error = parse_args(r#"{"a": 1}"#).unwrap_err();
        assert!(error.message.contains("[{\"a\":1}]"), "{}", error.message);
    }

    #[test]
    fn application_errors() {
        assert!(is_application_error(
            &serde_json::json!({"Err": "DivisionByZero"})
        ));
        assert!(!is_application_error(&serde_json::json!({"Ok": 5})));
        assert!(!is_application_error(&serde_json::json!("Err")));
    }
}
