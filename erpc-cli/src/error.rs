//! What the CLI reports on failure: one line, and an exit code scripts can act on.
//!
//! Every failure is mapped here, in one place: `erpc::Error` by its [`kind`]
//! (`erpc::Error::kind`), Nacos errors by whether the server answered at all.
//!
//! [`kind`]: erpc::Error::kind

use std::process::ExitCode;

/// The exit codes: the categories a script distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// 1: the provider or registry answered "no" (unknown service or method, arguments
    /// that do not fit, timeout, handler failure), or the method returned an error value.
    Remote = 1,
    /// 2: the command line is wrong (bad option, bad JSON, unsupported combination).
    Usage = 2,
    /// 3: the registry or every provider could not be reached.
    Unreachable = 3,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// A failure of a command: its exit category and one line for the user.
#[derive(Debug)]
pub(crate) struct CliError {
    /// The exit code category.
    pub(crate) exit: Exit,
    /// What went wrong, on one line.
    pub(crate) message: String,
}

impl CliError {
    /// A remote refusal or failure (exit 1).
    pub(crate) fn remote(message: impl Into<String>) -> Self {
        Self::new(Exit::Remote, message)
    }

    /// A usage error (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self::new(Exit::Usage, message)
    }

    /// Nothing answered (exit 3).
    pub(crate) fn unreachable(message: impl Into<String>) -> Self {
        Self::new(Exit::Unreachable, message)
    }

    fn new(exit: Exit, message: impl Into<String>) -> Self {
        // One line, whatever the underlying error printed.
        let message = message
            .into()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        Self { exit, message }
    }

    /// The category `error` falls in (see [`Exit`]).
    pub(crate) fn exit_of(error: &erpc::Error) -> Exit {
        match error.kind() {
            "connect" | "connection_lost" | "going_away" | "no_provider" | "circuit_open"
            | "registry" | "io" => Exit::Unreachable,
            "config" => Exit::Usage,
            _ => Exit::Remote,
        }
    }
}

impl From<erpc::Error> for CliError {
    fn from(error: erpc::Error) -> Self {
        Self::new(Self::exit_of(&error), chain(&error))
    }
}

/// `error` and its sources on one line, `a: b: c`, leaving out a source whose text
/// the line already holds.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !line.contains(&text) {
            line = format!("{line}: {text}");
        }
        source = cause.source();
    }
    line
}

impl From<erpc::nacos::NacosError> for CliError {
    fn from(error: erpc::nacos::NacosError) -> Self {
        use erpc::nacos::NacosError;
        let exit = match &error {
            _ if error.is_unreachable() => Exit::Unreachable,
            NacosError::Config { .. } => Exit::Usage,
            _ => Exit::Remote,
        };
        Self::new(exit, chain(&error))
    }
}

impl From<erpc::zookeeper::ZookeeperError> for CliError {
    fn from(error: erpc::zookeeper::ZookeeperError) -> Self {
        use erpc::zookeeper::ZookeeperError;
        let exit = match &error {
            ZookeeperError::Config { .. } => Exit::Usage,
            ZookeeperError::Connect { .. } | ZookeeperError::Timeout { .. } => Exit::Unreachable,
            _ => Exit::Remote,
        };
        Self::new(exit, chain(&error))
    }
}

/// The closest of `candidates` to `wanted`, when close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
    wanted: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(wanted, c), c))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_exit_codes() {
        let unreachable = erpc::Error::Connect {
            addr: "h:1".into(),
            reason: "refused".into(),
        };
        assert_eq!(CliError::exit_of(&unreachable), Exit::Unreachable);
        assert_eq!(
            CliError::exit_of(&erpc::Error::Config("x".into())),
            Exit::Usage
        );
        assert_eq!(
            CliError::exit_of(&erpc::Error::HandlerPanicked("x".into())),
            Exit::Remote
        );
    }

    #[test]
    fn messages_are_one_line() {
        let error = CliError::remote("first\n   second");
        assert_eq!(error.message, "first second");
    }

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("ad", ["add", "divide", "whoami"]), Some("add"));
        assert_eq!(
            did_you_mean("devide", ["add", "divide", "whoami"]),
            Some("divide")
        );
        assert_eq!(did_you_mean("zzzz", ["add", "divide"]), None);
    }
}
