//! Running the built `erpc` binary and starting real demo providers.

#![allow(dead_code, unreachable_pub)]

pub mod monitor;

use std::process::{Command, Stdio};
use std::sync::Arc;

/// What one run of `erpc` gave.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "expected success: {self:?}");
        self.assert_clean();
        &self.stdout
    }

    /// Asserts exit `code` with one stderr line containing `needle`.
    #[track_caller]
    pub fn fails(&self, code: i32, needle: &str) {
        assert_eq!(self.code, code, "expected exit {code}: {self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one stderr line: {self:?}");
        assert!(lines[0].starts_with("erpc: "), "{self:?}");
        assert!(
            lines[0].contains(needle),
            "expected {needle:?} in: {self:?}"
        );
        self.assert_clean();
    }

    #[track_caller]
    fn assert_clean(&self) {
        for bad in ["Caused by", "panicked", "RUST_BACKTRACE"] {
            assert!(!self.stderr.contains(bad), "{bad} in stderr: {self:?}");
        }
    }
}

/// The `erpc` command, with no registry from the environment.
pub fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_erpc"));
    command
        .args(args)
        .env_remove("ERPC_REGISTRY")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null());
    command
}

/// Runs `erpc args..` to completion.
pub fn erpc(args: &[&str]) -> Run {
    let output = command(args).output().expect("the erpc binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `erpc args..` with `input` on stdin, off the async runtime.
pub async fn erpc_with_stdin(args: Vec<String>, input: &'static str) -> Run {
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = command(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the erpc binary runs");
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(input.as_bytes())
            .expect("stdin takes the input");
        drop(stdin);
        let output = child.wait_with_output().expect("erpc ends");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .expect("the CLI runs")
}

/// Runs `erpc args..` off the async runtime.
pub async fn erpc_async(args: Vec<String>) -> Run {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        erpc(&args)
    })
    .await
    .expect("the CLI runs")
}

/// A running demo provider (HelloService in group test1, Calculator) with an admin
/// listener, on free 127.0.0.1 ports.
pub struct Provider {
    /// `127.0.0.1:port` of the erpc listener.
    pub addr: String,
    /// `127.0.0.1:port` of the admin listener.
    pub admin: String,
    handle: erpc::ServerHandle,
}

impl Provider {
    /// Starts a provider, registered in `registry` when given.
    pub async fn start(registry: Option<Arc<dyn erpc::registry::Registry>>) -> Provider {
        Self::start_weighted(registry, erpc::registry::DEFAULT_WEIGHT).await
    }

    /// Starts a provider registered with `weight` (0: drained, takes no calls).
    pub async fn start_weighted(
        registry: Option<Arc<dyn erpc::registry::Registry>>,
        weight: u32,
    ) -> Provider {
        let mut config = erpc::ServerConfig::default();
        config.weight = weight;
        config.bind = "127.0.0.1:0".into();
        config.admin = Some("127.0.0.1:0".into());
        let server = demo_provider::build_server(config, registry)
            .await
            .expect("provider binds");
        let addr = server.local_addr().to_string();
        let admin = server.admin_addr().expect("admin listener").to_string();
        Provider {
            addr,
            admin,
            handle: server.spawn(),
        }
    }

    /// Shuts down gracefully (deregisters first).
    pub async fn stop(self) {
        self.handle.shutdown().await.expect("provider stops");
    }
}

/// How many `method` calls the provider behind `admin` has completed (its `/metrics`).
pub fn server_calls(admin: &str, method: &str) -> u64 {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(admin) else {
        return 0;
    };
    let _ = write!(stream, "GET /metrics HTTP/1.0\r\nHost: {admin}\r\n\r\n");
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    let wanted = format!("method=\"{method}\"");
    text.lines()
        .filter(|l| l.starts_with("erpc_calls_total{") && l.contains(&wanted))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// A port on which nothing listens.
pub fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}
