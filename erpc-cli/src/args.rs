//! The command line: global options shared by every command, and the commands.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use erpc::ServiceKey;

/// Command line.
#[derive(Parser)]
#[command(
    name = "erpc",
    version,
    // `--version` is the service version; the tool's own version is `-V`.
    disable_version_flag = true,
    about = "List, describe, call, benchmark and watch erpc services",
    after_help = "Exit codes: 0 ok, 1 remote or application error, 2 usage, 3 registry or provider unreachable."
)]
pub(crate) struct Cli {
    /// Prints the erpc tool's version.
    #[arg(short = 'V', long = "tool-version", action = clap::ArgAction::Version)]
    tool_version: (),
    /// Options every command takes.
    #[command(flatten)]
    pub(crate) global: Global,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// `Debug` without the credentials a registry URL may hold.
impl std::fmt::Debug for Cli {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cli")
            .field("global", &self.global)
            .field("command", &self.command)
            .finish()
    }
}

/// Options every command takes (before or after the command name).
#[derive(Args)]
pub(crate) struct Global {
    /// Registry URL (nacos://h:8848?namespace=..&group=.., zookeeper://h:2181,..?root=/dubbo, static://h:p,..).
    #[arg(long, global = true, env = "ERPC_REGISTRY", conflicts_with = "addr")]
    pub(crate) registry: Option<String>,
    /// One provider directly, without a registry (HOST:PORT, like static://HOST:PORT).
    #[arg(long, global = true, value_name = "HOST:PORT")]
    pub(crate) addr: Option<String>,
    /// The provider's admin listener (HOST:PORT), read for `/services` (methods and
    /// argument names) when the registry does not list them.
    #[arg(long, global = true, value_name = "HOST:PORT")]
    pub(crate) admin: Option<String>,
    /// Service group [default: ""].
    #[arg(long, global = true)]
    pub(crate) group: Option<String>,
    /// Service version [default: 1.0].
    #[arg(long, global = true)]
    pub(crate) version: Option<String>,
    /// Timeout of each call and registry request (e.g. 3s, 500ms).
    #[arg(long, global = true, default_value = "3s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
    /// Output: a table (or pretty JSON for call results) for people, JSON for scripts.
    #[arg(short = 'o', long = "output", global = true, value_enum, default_value_t = Format::Table)]
    pub(crate) output: Format,
}

impl std::fmt::Debug for Global {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let registry = self
            .registry
            .as_deref()
            .map(|r| erpc::registry::redact_url(r, &["namespace", "group"]));
        f.debug_struct("Global")
            .field("registry", &registry)
            .field("addr", &self.addr)
            .field("admin", &self.admin)
            .field("group", &self.group)
            .field("version", &self.version)
            .field("timeout", &self.timeout)
            .field("output", &self.output)
            .finish()
    }
}

impl Global {
    /// The service key `interface` names with the global `--group` and `--version`.
    pub(crate) fn key(&self, interface: &str) -> ServiceKey {
        ServiceKey::new(
            interface,
            self.group.as_deref().unwrap_or(""),
            self.version.as_deref().unwrap_or("1.0"),
        )
    }
}

/// How results print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Aligned columns (pretty JSON for call results).
    Table,
    /// JSON (one line per value; JSON lines for `watch`).
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Lists services with group, version, provider count and healthy count (healthy:
    /// weight > 0 and accepting connections now).
    #[command(alias = "services")]
    List,
    /// Shows a service's methods (and argument names when the provider's admin
    /// `/services` is reachable).
    Describe {
        /// Interface name, e.g. `demo_api::Calculator`.
        service: String,
    },
    /// Lists a service's providers with their registry metadata.
    Providers {
        /// Interface name, e.g. `demo_api::Calculator`.
        service: String,
        /// Every instance the registry keeps, disabled and unhealthy ones included, with
        /// its state (Nacos 2.x/3.x; rnacos lists no disabled instance).
        #[arg(long)]
        all: bool,
    },
    /// Calls a method with JSON arguments and prints the JSON result.
    Call(CallArgs),
    /// Calls a method from many concurrent callers for a while (or until ctrl-c), then
    /// prints latency percentiles, error counts by kind and a latency histogram.
    Bench(BenchArgs),
    /// Prints a service's provider changes as they happen, one line each, until ctrl-c.
    Watch {
        /// Interface name, e.g. `demo_api::Calculator`.
        service: String,
        /// Stop after this many changes.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Serves a live monitor page: services, providers, call rates, error rates,
    /// in-flight calls and p99 from each provider's admin `/metrics`, with governance
    /// (weight, disable/enable through the registry).
    Monitor(MonitorArgs),
    /// Prints a shell completion script (e.g. `erpc completions bash > /etc/bash_completion.d/erpc`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `erpc call SERVICE METHOD [ARGS]`.
#[derive(Debug, Args)]
pub(crate) struct CallArgs {
    /// Interface name, e.g. `demo_api::Calculator`.
    pub(crate) service: String,
    /// Method name.
    pub(crate) method: String,
    /// Arguments as a JSON array, one element per method argument; `-` reads them
    /// from stdin.
    #[arg(default_value = "[]")]
    pub(crate) args: String,
}

/// `erpc bench SERVICE METHOD [ARGS] -c N -d DURATION`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// The call to repeat.
    #[command(flatten)]
    pub(crate) call: CallArgs,
    /// Concurrent callers.
    #[arg(short = 'c', long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) concurrency: u32,
    /// How long to run (e.g. 10s, 1m).
    #[arg(short = 'd', long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
}

/// `erpc monitor --listen HOST:PORT [--token T]`.
#[derive(Args)]
pub(crate) struct MonitorArgs {
    /// Where the page is served (port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:9090", value_name = "HOST:PORT")]
    pub(crate) listen: String,
    /// Operator token that governance actions must carry (header `x-erpc-token`); without
    /// it anyone who reaches the page can change weights.
    #[arg(long, env = "ERPC_MONITOR_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// How often the registry and the providers' metrics are read.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub(crate) interval: Duration,
}

/// `Debug` without the token.
impl std::fmt::Debug for MonitorArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorArgs")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("interval", &self.interval)
            .finish()
    }
}

/// `3s`, `500ms`, `1m`: humantime's syntax, and not zero.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if duration.is_zero() {
        return Err("must be more than zero".into());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_registry_credentials() {
        let args = Cli::parse_from([
            "x",
            "--registry",
            "nacos://nacos:S3cret-pw@127.0.0.1:8848?password=S3cret-pw",
            "list",
        ]);
        let shown = format!("{args:?}");
        assert!(!shown.contains("S3cret-pw"), "{shown}");
        assert!(shown.contains("127.0.0.1:8848"), "{shown}");
    }

    #[test]
    fn global_options_go_anywhere() {
        let args = Cli::parse_from([
            "x", "call", "S", "m", "--addr", "h:1", "--group", "g", "-o", "json",
        ]);
        assert_eq!(args.global.addr.as_deref(), Some("h:1"));
        assert_eq!(args.global.key("S").group, "g");
        assert_eq!(args.global.output, Format::Json);
    }

    #[test]
    fn debug_hides_the_operator_token() {
        let args = Cli::parse_from(["x", "monitor", "--token", "T0ken-s3cret"]);
        let shown = format!("{args:?}");
        assert!(!shown.contains("T0ken-s3cret"), "{shown}");
        assert!(shown.contains("127.0.0.1:9090"), "{shown}");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
