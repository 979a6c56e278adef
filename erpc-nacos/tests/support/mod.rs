//! Real Nacos-compatible servers for the integration tests.
//!
//! Each [`Server`] runs in its own process on free 127.0.0.1 ports with a fresh data
//! directory, and is killed (with its whole process group) when dropped.
//!
//! Server lines:
//! - rnacos: binary from `ERPC_RNACOS_BIN`, else `~/.cache/erpc/rnacos-0.8.8/bin/rnacos`
//!   (built by `scripts/install-rnacos.sh`);
//! - official Nacos 2.x / 3.x: when `ERPC_NACOS2_LIB` / `ERPC_NACOS3_LIB` name an
//!   assembled lib directory, started through `scripts/run-nacos.sh LIBDIR PORT HOMEDIR`.
//!
//! [`Cluster`] runs rnacos as a raft cluster (several processes on loopback, each with
//! its own ports and data directory); nodes can be killed and started again.
//!
//! A line that is not available is reported with a loud `SKIPPED:` line on stderr. For
//! CI, `ERPC_NACOS_REQUIRE=1` makes a missing rnacos a failure, `ERPC_NACOS_REQUIRE=all`
//! any missing line.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod whoami;

/// A server line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rnacos,
    Nacos2,
    Nacos3,
}

impl Kind {
    /// Every line the tests know.
    pub const ALL: [Kind; 3] = [Kind::Rnacos, Kind::Nacos2, Kind::Nacos3];

    fn startup_timeout(self) -> Duration {
        match self {
            Kind::Rnacos => Duration::from_secs(30),
            Kind::Nacos2 | Kind::Nacos3 => Duration::from_secs(180),
        }
    }

    /// Seconds after which a server without beats drops an instance (upper bound).
    pub fn expiry(self) -> Duration {
        match self {
            Kind::Rnacos => Duration::from_secs(40),
            Kind::Nacos2 | Kind::Nacos3 => Duration::from_secs(35),
        }
    }
}

/// How to start a server.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Open-API authentication on (user `admin`/`admin` on rnacos, `nacos`/`nacos` on Nacos).
    pub auth: bool,
    /// Lifetime of login tokens in seconds, where the server lets tests set it (rnacos).
    pub token_ttl: Option<u64>,
    /// Password of the admin user, where the server lets tests set it (rnacos; the
    /// default is the one [`Server::credentials`] names).
    pub admin_password: Option<&'static str>,
}

/// Why a server line cannot run here.
#[derive(Debug)]
pub struct Unavailable(pub String);

/// A running server; killed on drop.
pub struct Server {
    pub kind: Kind,
    pub port: u16,
    options: Options,
    child: Option<Child>,
    data: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server of `kind` and waits until it answers.
    pub fn start(kind: Kind, options: Options) -> Result<Server, Unavailable> {
        let launcher = launcher(kind)?;
        let port = free_port(kind != Kind::Rnacos);
        let mut server = Server {
            kind,
            port,
            options,
            child: None,
            data: None,
        };
        server.spawn(&launcher, true);
        Ok(server)
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Username and password accepted when started with auth.
    pub fn credentials(&self) -> (&'static str, &'static str) {
        match self.kind {
            Kind::Rnacos => ("admin", self.options.admin_password.unwrap_or("admin")),
            Kind::Nacos2 | Kind::Nacos3 => ("nacos", "nacos"),
        }
    }

    /// Kills the server (the port goes dead).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The launcher may have children (a JVM under a shell): kill the group.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with a fresh, empty data directory.
    pub fn start_again_empty(&mut self) {
        self.kill();
        let launcher = launcher(self.kind).expect("the launcher was there a moment ago");
        self.spawn(&launcher, false);
    }

    /// Starts the process; on a loaded machine a JVM can fail to start (Derby's "Login
    /// timeout exceeded") and rnacos can panic while starting, so a failed start is tried
    /// again, four times at most (on new ports when `may_move`).
    fn spawn(&mut self, launcher: &Launcher, may_move: bool) {
        const ATTEMPTS: u32 = 5;
        for attempt in 1..=ATTEMPTS {
            match self.spawn_once(launcher) {
                Ok(()) => return,
                Err(why) if attempt < ATTEMPTS => {
                    self.kill();
                    if may_move {
                        self.port = free_port(self.kind != Kind::Rnacos);
                    }
                    eprintln!(
                        "{:?} failed to start (attempt {attempt}), retrying: {why}",
                        self.kind
                    );
                }
                Err(why) => {
                    self.kill();
                    panic!(
                        "{:?} failed to start {ATTEMPTS} times; last: {why}",
                        self.kind
                    );
                }
            }
        }
    }

    fn spawn_once(&mut self, launcher: &Launcher) -> Result<(), String> {
        let data = tempfile::Builder::new()
            .prefix("erpc-nacos-test-")
            .tempdir()
            .expect("temp dir");
        let log_path = data.path().join("server.log");
        let log = std::fs::File::create(&log_path).expect("log file");
        let mut command = match launcher {
            Launcher::Rnacos(bin) => {
                let mut c = Command::new(bin);
                c.env("RNACOS_HTTP_PORT", self.port.to_string())
                    .env("RNACOS_GRPC_PORT", free_port(false).to_string())
                    .env("RNACOS_HTTP_CONSOLE_PORT", free_port(false).to_string())
                    .env_remove("RNACOS_DATA_DIR")
                    .env("RNACOS_CONFIG_DB_DIR", data.path().join("db"))
                    .env("RNACOS_HTTP_WORKERS", "2")
                    .env("RNACOS_NAMING_HEALTH_TIMEOUT_SECOND", "8")
                    .env("RNACOS_NAMING_INSTANCE_TIMEOUT_SECOND", "12")
                    .env("RNACOS_ENABLE_OPEN_API_AUTH", self.options.auth.to_string())
                    .env(
                        "RNACOS_API_LOGIN_TIMEOUT",
                        self.options.token_ttl.unwrap_or(3600).to_string(),
                    )
                    .env(
                        "RNACOS_INIT_ADMIN_PASSWORD",
                        self.options.admin_password.unwrap_or("admin"),
                    )
                    .env("RUST_LOG", "warn")
                    .current_dir(data.path());
                c
            }
            Launcher::Script { script, lib } => {
                let mut c = Command::new("bash");
                c.arg(script)
                    .arg(lib)
                    .arg(self.port.to_string())
                    .arg(data.path().join("home"));
                c.env("NACOS_AUTH", if self.options.auth { "on" } else { "off" });
                c
            }
        };
        command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", self.kind));
        self.child = Some(child);
        self.data = Some(data);
        self.wait_ready(&log_path)
    }

    /// Waits until the server serves the naming API (and, with auth, knows its user: rnacos
    /// creates it a moment after it starts answering).
    fn wait_ready(&mut self, log: &Path) -> Result<(), String> {
        let deadline = Instant::now() + self.kind.startup_timeout();
        let (user, password) = self.credentials();
        let login = format!("username={user}&password={password}");
        let mut panicked: Option<Instant> = None;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!("exited with {status}; log:\n{}", tail(log)));
                }
            }
            // rnacos 0.8.8 often logs a panic of a raft thread while starting
            // (`raftapply.rs` unwrapping a manager not yet set) and mostly serves on; now
            // and then it never answers. Give a server that panicked 10 s to answer, then
            // start again instead of waiting out the startup timeout.
            if self.kind == Kind::Rnacos
                && panicked.is_none()
                && std::fs::read_to_string(log).is_ok_and(|text| text.contains("panicked at"))
            {
                panicked = Some(Instant::now());
            }
            if panicked.is_some_and(|at| at.elapsed() > Duration::from_secs(10)) {
                return Err(format!(
                    "panicked while starting and did not answer; log:\n{}",
                    tail(log)
                ));
            }
            let ready = match (self.kind, self.options.auth) {
                (Kind::Rnacos, false) => http(
                    self.port,
                    "GET",
                    "/nacos/v1/ns/instance/list?serviceName=erpc.ready&healthyOnly=true",
                    "",
                )
                .is_some_and(|(status, _)| status == 200),
                (Kind::Nacos2, false) => {
                    http(self.port, "GET", "/nacos/v1/console/health/readiness", "")
                        .is_some_and(|(status, _)| status == 200)
                }
                (Kind::Nacos3, false) => {
                    http(self.port, "GET", "/nacos/v3/admin/core/state/readiness", "")
                        .is_some_and(|(status, _)| status == 200)
                }
                (_, true) => {
                    let logged_in = http(self.port, "POST", "/nacos/v1/auth/login", &login)
                        .is_some_and(|(status, body)| {
                            status == 200 && body.contains("accessToken")
                        });
                    if !logged_in && self.kind != Kind::Rnacos {
                        // Recent Nacos ships without an admin password: set it (first call wins).
                        let _ = http(
                            self.port,
                            "POST",
                            "/nacos/v3/auth/user/admin",
                            &format!("password={password}"),
                        );
                        let _ = http(
                            self.port,
                            "POST",
                            "/nacos/v1/auth/users/admin",
                            &format!("password={password}"),
                        );
                    }
                    logged_in
                }
            };
            if ready {
                return Ok(());
            }
            // rnacos allows 100 logins a minute per user: do not burn them while waiting.
            let pause = if self.options.auth { 500 } else { 100 };
            std::thread::sleep(Duration::from_millis(pause));
        }
        Err(format!("not ready in time; log:\n{}", tail(log)))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

enum Launcher {
    Rnacos(PathBuf),
    Script { script: PathBuf, lib: PathBuf },
}

fn launcher(kind: Kind) -> Result<Launcher, Unavailable> {
    match kind {
        Kind::Rnacos => {
            let bin = std::env::var_os("ERPC_RNACOS_BIN")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME")
                        .map(|h| PathBuf::from(h).join(".cache/erpc/rnacos-0.8.8/bin/rnacos"))
                })
                .ok_or_else(|| Unavailable("neither ERPC_RNACOS_BIN nor HOME is set".into()))?;
            if bin.is_file() {
                Ok(Launcher::Rnacos(bin))
            } else {
                Err(Unavailable(format!(
                    "rnacos binary {} not found (run scripts/install-rnacos.sh or set ERPC_RNACOS_BIN)",
                    bin.display()
                )))
            }
        }
        Kind::Nacos2 | Kind::Nacos3 => {
            let var = if kind == Kind::Nacos2 {
                "ERPC_NACOS2_LIB"
            } else {
                "ERPC_NACOS3_LIB"
            };
            let lib = std::env::var_os(var).map(PathBuf::from).ok_or_else(|| {
                Unavailable(format!("{var} is not set (see scripts/NACOS-SERVERS.md)"))
            })?;
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/run-nacos.sh");
            if !script.is_file() {
                return Err(Unavailable(format!("{} not found", script.display())));
            }
            if !lib.is_dir() {
                return Err(Unavailable(format!(
                    "{var}={} is not a directory",
                    lib.display()
                )));
            }
            Ok(Launcher::Script { script, lib })
        }
    }
}

/// Starts one server of every available line, reporting the others as skipped.
/// Also turns on logs (`RUST_LOG=erpc_nacos=debug` to see the client at work).
pub fn servers(test: &str, options: Options) -> Vec<Server> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let mut servers = Vec::new();
    for kind in Kind::ALL {
        match Server::start(kind, options) {
            Ok(server) => servers.push(server),
            Err(Unavailable(why)) => skipped(test, kind, &why),
        }
    }
    servers
}

/// Reports a server line that could not be tested, loudly.
pub fn skipped(test: &str, kind: Kind, why: &str) {
    let required = match std::env::var("ERPC_NACOS_REQUIRE").as_deref() {
        Ok("all") => true,
        Ok("1") => kind == Kind::Rnacos,
        _ => false,
    };
    if required {
        panic!("{test} on {kind:?}: server required (ERPC_NACOS_REQUIRE) but unavailable: {why}");
    }
    eprintln!("\n********\nSKIPPED: {test} on {kind:?}: {why}\n********\n");
}

/// A port that was free a moment ago; with `grpc_room`, port-1000, port+1000 and
/// port+1001 too (Nacos binds JRaft and its gRPC ports at those offsets).
pub fn free_port(grpc_room: bool) -> u16 {
    if !grpc_room {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        return listener.local_addr().expect("local addr").port();
    }
    // Below the ephemeral range, so that no outgoing connection takes a port Nacos wants
    // a moment later (its gRPC ports bind on all interfaces).
    loop {
        let random = std::hash::BuildHasher::hash_one(
            &std::collections::hash_map::RandomState::new(),
            Instant::now(),
        );
        let port = 12_000 + (random % 18_000) as u16;
        let room = [port - 1000, port, port + 1000, port + 1001]
            .iter()
            .all(|p| TcpListener::bind(("0.0.0.0", *p)).is_ok());
        if room {
            return port;
        }
    }
}

/// A port on which nothing listens (bound, then released).
pub fn dead_port() -> u16 {
    free_port(false)
}

/// Status and body of one HTTP/1.0 request, or `None` when nothing answers.
pub fn http(port: u16, method: &str, path: &str, form: &str) -> Option<(u16, String)> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
            .ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(
        stream,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    )
    .ok()?;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.split_whitespace().nth(1)?.parse().ok()?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((status, body))
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Polls `probe` every 100 ms until it yields a value or `within` has passed.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {within:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// An rnacos cluster in raft cluster mode on loopback: node 1 initialises the cluster,
/// the others join it through node 1's raft (gRPC) address. Each node has its own free
/// HTTP, gRPC and console ports and its own data directory; all are killed on drop.
///
/// rnacos keeps configuration in raft and instances in its distro-like naming layer: an
/// instance registered through any node is served by all of them.
pub struct Cluster {
    bin: PathBuf,
    pub nodes: Vec<Node>,
}

/// One node of a [`Cluster`].
pub struct Node {
    /// Raft node id, 1-based.
    pub id: u64,
    pub http_port: u16,
    grpc_port: u16,
    console_port: u16,
    data: tempfile::TempDir,
    child: Option<Child>,
    /// Starts so far (names each start's log file).
    starts: u32,
}

impl Node {
    /// `127.0.0.1:http_port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.http_port)
    }

    /// Whether the node's process runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn log(&self) -> PathBuf {
        self.data.path().join(format!("server-{}.log", self.starts))
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process with this node's ports and data; `join` is the raft address
    /// of the node to join (none: initialise the cluster).
    fn spawn(&mut self, bin: &Path, join: Option<u16>) {
        self.starts += 1;
        let log = std::fs::File::create(self.log()).expect("log file");
        let mut command = Command::new(bin);
        command
            .env("RNACOS_HTTP_PORT", self.http_port.to_string())
            .env("RNACOS_GRPC_PORT", self.grpc_port.to_string())
            .env("RNACOS_HTTP_CONSOLE_PORT", self.console_port.to_string())
            .env_remove("RNACOS_DATA_DIR")
            .env("RNACOS_CONFIG_DB_DIR", self.data.path().join("db"))
            .env("RNACOS_RAFT_NODE_ID", self.id.to_string())
            .env(
                "RNACOS_RAFT_NODE_ADDR",
                format!("127.0.0.1:{}", self.grpc_port),
            )
            .env("RNACOS_HTTP_WORKERS", "2")
            // rnacos's (and Nacos's) defaults, 15 s to unhealthy and 30 s to removal, not
            // the single server's shorter ones: a cluster needs 15-18 s to notice a dead
            // node, and until then refuses beats of the instances that node owned.
            .env_remove("RNACOS_NAMING_HEALTH_TIMEOUT_SECOND")
            .env_remove("RNACOS_NAMING_INSTANCE_TIMEOUT_SECOND")
            .env("RNACOS_ENABLE_OPEN_API_AUTH", "false")
            .env("RUST_LOG", "warn")
            .current_dir(self.data.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        match join {
            None => command.env("RNACOS_RAFT_AUTO_INIT", "true"),
            Some(port) => command.env("RNACOS_RAFT_JOIN_ADDR", format!("127.0.0.1:{port}")),
        };
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start rnacos node {}: {e}", self.id));
        self.child = Some(child);
    }

    /// Why the node cannot serve: it exited. (rnacos 0.8.8 often logs a panic of a raft
    /// thread while starting, `raftapply.rs` unwrapping a manager not yet set, and goes
    /// on serving; a node that really fails shows in the cluster not forming.)
    fn failed(&mut self) -> Option<String> {
        let log = self.log();
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => Some(format!(
                "node {} exited with {status}; log:\n{}",
                self.id,
                tail(&log)
            )),
            _ => None,
        }
    }

    /// The node's raft view: (leader, members), when it answers.
    fn raft(&self) -> Option<(Option<u64>, Vec<u64>)> {
        let (status, body) = http(self.http_port, "GET", "/nacos/v1/raft/metrics", "")?;
        if status != 200 {
            return None;
        }
        let metrics: serde_json::Value = serde_json::from_str(&body).ok()?;
        let leader = metrics["current_leader"].as_u64();
        let mut members: Vec<u64> = metrics["membership_config"]["members"]
            .as_array()?
            .iter()
            .filter_map(serde_json::Value::as_u64)
            .collect();
        members.sort_unstable();
        Some((leader, members))
    }
}

impl Cluster {
    /// Within this the cluster forms (or a node rejoins) on a loaded machine.
    const FORM_TIMEOUT: Duration = Duration::from_secs(60);

    /// Starts a cluster of `size` rnacos nodes and waits until it has formed.
    pub fn start(size: u64) -> Result<Cluster, Unavailable> {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let Launcher::Rnacos(bin) = launcher(Kind::Rnacos)? else {
            unreachable!("the rnacos launcher is a binary");
        };
        const ATTEMPTS: u32 = 3;
        for attempt in 1..=ATTEMPTS {
            let nodes = (1..=size)
                .map(|id| Node {
                    id,
                    http_port: free_port(false),
                    grpc_port: free_port(false),
                    console_port: free_port(false),
                    data: tempfile::Builder::new()
                        .prefix("erpc-nacos-cluster-")
                        .tempdir()
                        .expect("temp dir"),
                    child: None,
                    starts: 0,
                })
                .collect();
            let mut cluster = Cluster {
                bin: bin.clone(),
                nodes,
            };
            match cluster.form() {
                Ok(()) => return Ok(cluster),
                Err(why) if attempt < ATTEMPTS => {
                    eprintln!("rnacos cluster failed to form (attempt {attempt}), retrying on new ports: {why}");
                }
                Err(why) => panic!("rnacos cluster failed to form {ATTEMPTS} times; last: {why}"),
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    /// Starts node 1, then the others joining it, and waits for the cluster.
    fn form(&mut self) -> Result<(), String> {
        let bin = self.bin.clone();
        self.nodes[0].spawn(&bin, None);
        // Node 1 first answers as a one-node cluster; the others join it then. It does
        // so in a second or two: one that takes 20 s is one of rnacos's starts that never
        // answer, so start over.
        let leader_deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(why) = self.nodes[0].failed() {
                return Err(why);
            }
            if self.nodes[0]
                .raft()
                .is_some_and(|(leader, _)| leader == Some(1))
            {
                break;
            }
            if Instant::now() > leader_deadline {
                return Err(format!(
                    "node 1 did not become leader; log:\n{}",
                    tail(&self.nodes[0].log())
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let deadline = Instant::now() + Self::FORM_TIMEOUT;
        // One at a time: two nodes joining at once can lose one of the joins (each
        // membership change is computed from the membership before the other).
        let join = self.nodes[0].grpc_port;
        for index in 1..self.nodes.len() {
            self.nodes[index].spawn(&bin, Some(join));
            let id = self.nodes[index].id;
            loop {
                if let Some(why) = self.nodes[index].failed() {
                    return Err(why);
                }
                if self.nodes[0]
                    .raft()
                    .is_some_and(|(_, members)| members.contains(&id))
                {
                    break;
                }
                if Instant::now() > deadline {
                    return Err(format!(
                        "node {id} did not join; its log:\n{}",
                        tail(&self.nodes[index].log())
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        self.wait_formed(deadline)
    }

    /// Waits until every running node answers, agrees on a leader and on the full
    /// membership, and serves an instance registered through one of them (the naming
    /// layer syncs between nodes, not only raft).
    fn wait_formed(&mut self, deadline: Instant) -> Result<(), String> {
        let size = self.nodes.len() as u64;
        let all: Vec<u64> = (1..=size).collect();
        let probe = format!(
            "127.0.0.{}",
            2 + self.nodes.iter().map(|n| n.starts).sum::<u32>()
        );
        let mut registered = false;
        loop {
            for node in self.nodes.iter_mut().filter(|n| n.is_running()) {
                if let Some(why) = node.failed() {
                    return Err(why);
                }
            }
            let running: Vec<&Node> = self.nodes.iter().filter(|n| n.is_running()).collect();
            let views: Vec<_> = running.iter().map(|n| n.raft()).collect();
            let agreed = views.iter().all(|view| {
                view.as_ref().is_some_and(|(leader, members)| {
                    leader.is_some()
                        && leader == &views[0].as_ref().and_then(|v| v.0)
                        && members == &all
                })
            });
            if agreed && !registered {
                registered = http(
                    running[0].http_port,
                    "POST",
                    &format!("/nacos/v1/ns/instance?serviceName=erpc.cluster.ready&ip={probe}&port=1&ephemeral=true"),
                    "",
                )
                .is_some_and(|(status, _)| status == 200);
            }
            if agreed && registered {
                let served = running.iter().all(|node| {
                    http(
                        node.http_port,
                        "GET",
                        "/nacos/v1/ns/instance/list?serviceName=erpc.cluster.ready",
                        "",
                    )
                    .is_some_and(|(status, body)| {
                        status == 200 && body.contains(&format!("\"{probe}\""))
                    })
                });
                if served {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!("cluster not formed in time; raft views: {views:?}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `127.0.0.1:http_port` of node `id` (1-based).
    pub fn addr(&self, id: u64) -> String {
        self.node(id).addr()
    }

    fn node(&self, id: u64) -> &Node {
        &self.nodes[id as usize - 1]
    }

    /// Kills node `id` (SIGKILL): its ports go dead, its data stays.
    pub fn kill(&mut self, id: u64) {
        self.nodes[id as usize - 1].kill();
    }

    /// Starts node `id` again on its ports with its data (as after a crash) and waits
    /// until the cluster has it back (see [`Cluster::wait_formed`]). A start that fails
    /// (rnacos panicking while starting) is tried again, three times at most.
    pub fn restart(&mut self, id: u64) {
        let bin = self.bin.clone();
        // Join through any other running node (node 1 may be the one down).
        let join = self
            .nodes
            .iter()
            .find(|n| n.id != id && n.is_running())
            .map(|n| n.grpc_port);
        const ATTEMPTS: u32 = 3;
        for attempt in 1..=ATTEMPTS {
            let node = &mut self.nodes[id as usize - 1];
            node.kill();
            node.spawn(&bin, join);
            match self.wait_formed(Instant::now() + Self::FORM_TIMEOUT) {
                Ok(()) => return,
                Err(why) if attempt < ATTEMPTS => {
                    eprintln!(
                        "rnacos node {id} failed to rejoin (attempt {attempt}), retrying: {why}"
                    );
                }
                Err(why) => {
                    panic!("rnacos node {id} failed to rejoin {ATTEMPTS} times; last: {why}")
                }
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
    }
}
