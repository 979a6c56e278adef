//! A real ZooKeeper server for the integration tests.
//!
//! [`ZooKeeper::start`] runs `org.apache.zookeeper.server.ZooKeeperServerMain` from the
//! lib directory `ERPC_ZOOKEEPER_LIB` (else the first complete
//! `~/.cache/erpc/zookeeper-*/lib`, made by `scripts/install-zookeeper.sh`) on a free
//! 127.0.0.1 port with a fresh data directory, waits until it serves (`srvr` names its mode), and kills
//! it when dropped. Ticks are 200 ms, so sessions may be as short as 400 ms.
//!
//! When no server can be had the test prints a loud `SKIPPED:` line and passes, unless
//! `ERPC_ZOOKEEPER_REQUIRE=1` is set (CI): then it fails.

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running ZooKeeper; killed on drop.
pub struct ZooKeeper {
    pub port: u16,
    lib: PathBuf,
    data: tempfile::TempDir,
    child: Option<Child>,
}

impl ZooKeeper {
    /// Starts a server, or reports the test SKIPPED (`None`), or panics when
    /// `ERPC_ZOOKEEPER_REQUIRE=1` and no server can be had.
    pub fn start(test: &str) -> Option<ZooKeeper> {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let lib = match lib_dir() {
            Ok(lib) => lib,
            Err(why) => {
                skipped(test, &why);
                return None;
            }
        };
        let mut server = ZooKeeper {
            port: free_port(),
            lib,
            data: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        if let Err(why) = server.spawn() {
            skipped(test, &why);
            return None;
        }
        Some(server)
    }

    /// `127.0.0.1:port`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The registry URL of this server, with `session_timeout_ms`.
    pub fn url(&self, session_timeout_ms: u64) -> String {
        format!(
            "zookeeper://{}?session_timeout_ms={session_timeout_ms}",
            self.addr()
        )
    }

    /// Kills the server (SIGKILL): the port goes dead, the data stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with its data (sessions and nodes
    /// survive, as after a crash of one ZooKeeper process).
    pub fn start_again(&mut self) {
        self.kill();
        self.spawn().expect("ZooKeeper starts again");
    }

    /// Starts the server again on the same port with an empty data directory: every
    /// session and node is gone, as after losing the ensemble's disks.
    pub fn start_again_empty(&mut self) {
        self.kill();
        self.data = tempfile::tempdir().expect("temp dir");
        self.spawn().expect("ZooKeeper starts again");
    }

    fn spawn(&mut self) -> Result<(), String> {
        let dir = self.data.path();
        let config = dir.join("zoo.cfg");
        std::fs::create_dir_all(dir.join("data")).map_err(|e| e.to_string())?;
        std::fs::write(
            &config,
            format!(
                "tickTime=200\ninitLimit=50\nsyncLimit=25\ndataDir={}\nclientPort={}\n\
                 clientPortAddress=127.0.0.1\nminSessionTimeout=400\nmaxSessionTimeout=30000\n\
                 admin.enableServer=false\n4lw.commands.whitelist=ruok,srvr\n",
                dir.join("data").display(),
                self.port
            ),
        )
        .map_err(|e| e.to_string())?;
        let log = dir.join("server.log");
        let child = java(
            &self.lib,
            "org.apache.zookeeper.server.ZooKeeperServerMain",
            &config,
            &log,
        )?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            // `srvr` names the mode once the server serves sessions (`ruok` answers
            // before the database is loaded).
            if four_letter(self.port, "srvr").is_some_and(|s| s.contains("Mode:")) {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                return Err(format!("ZooKeeper exited with {status}:\n{}", tail(&log)));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.kill();
        Err(format!(
            "ZooKeeper did not answer within 90 s:\n{}",
            tail(&log)
        ))
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        self.kill();
    }
}

fn lib_dir() -> Result<PathBuf, String> {
    if let Some(lib) = std::env::var_os("ERPC_ZOOKEEPER_LIB") {
        return Ok(PathBuf::from(lib));
    }
    let cache = std::env::var_os("ERPC_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/erpc")))
        .ok_or("no ERPC_ZOOKEEPER_LIB, ERPC_CACHE_DIR or HOME")?;
    let mut found: Vec<PathBuf> = std::fs::read_dir(&cache)
        .map_err(|e| format!("{}: {e}", cache.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("zookeeper-") && !n.ends_with(".lock"))
                && p.join(".complete").exists()
        })
        .collect();
    found.sort();
    found.pop().map(|p| p.join("lib")).ok_or_else(|| {
        format!(
            "no ZooKeeper in {} (run scripts/install-zookeeper.sh)",
            cache.display()
        )
    })
}

/// Reports a test that could not run, loudly, or fails it when a server is required.
pub fn skipped(test: &str, why: &str) {
    if std::env::var("ERPC_ZOOKEEPER_REQUIRE").as_deref() == Ok("1") {
        panic!("{test}: ZooKeeper required (ERPC_ZOOKEEPER_REQUIRE=1) but unavailable: {why}");
    }
    eprintln!("\n********\nSKIPPED: {test}: {why}\n********\n");
}

/// The answer to a four-letter word, or `None` when nothing answers.
pub fn four_letter(port: u16, word: &str) -> Option<String> {
    let mut stream =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500))
            .ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    stream.write_all(word.as_bytes()).ok()?;
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    Some(answer.trim().to_string())
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
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

/// A ZooKeeper ensemble of `n` servers on loopback (`QuorumPeerMain`); killed on drop.
pub struct Ensemble {
    lib: PathBuf,
    dir: tempfile::TempDir,
    /// Client port, quorum port, election port of each member (member `i` has id `i+1`).
    ports: Vec<(u16, u16, u16)>,
    children: Vec<Option<Child>>,
}

impl Ensemble {
    /// Starts `n` members and waits until each serves; `None` when SKIPPED.
    pub fn start(test: &str, n: usize) -> Option<Ensemble> {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let lib = match lib_dir() {
            Ok(lib) => lib,
            Err(why) => {
                skipped(test, &why);
                return None;
            }
        };
        let mut ensemble = Ensemble {
            lib,
            dir: tempfile::tempdir().expect("temp dir"),
            ports: (0..n)
                .map(|_| (free_port(), free_port(), free_port()))
                .collect(),
            children: (0..n).map(|_| None).collect(),
        };
        for member in 0..n {
            if let Err(why) = ensemble.launch(member) {
                skipped(test, &why);
                return None;
            }
        }
        for member in 0..n {
            if let Err(why) = ensemble.wait_serving(member, Duration::from_secs(120)) {
                skipped(test, &why);
                return None;
            }
        }
        Some(ensemble)
    }

    /// `zookeeper://` URL naming every member.
    pub fn url(&self, session_timeout_ms: u64) -> String {
        let hosts: Vec<String> = self
            .ports
            .iter()
            .map(|(client, _, _)| format!("127.0.0.1:{client}"))
            .collect();
        format!(
            "zookeeper://{}?session_timeout_ms={session_timeout_ms}",
            hosts.join(",")
        )
    }

    /// The member that leads now, if one does.
    pub fn leader(&self) -> Option<usize> {
        (0..self.ports.len()).find(|&m| {
            self.children[m].is_some()
                && four_letter(self.ports[m].0, "srvr").is_some_and(|s| s.contains("Mode: leader"))
        })
    }

    /// Kills member `m` (SIGKILL).
    pub fn kill(&mut self, m: usize) {
        if let Some(mut child) = self.children[m].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until member `m` serves (is leader or follower of a quorum).
    pub fn wait_serving(&mut self, m: usize, within: Duration) -> Result<(), String> {
        let log = self
            .dir
            .path()
            .join(format!("member{}", m + 1))
            .join("server.log");
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if four_letter(self.ports[m].0, "srvr").is_some_and(|s| s.contains("Mode:")) {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.children[m].as_mut().map(Child::try_wait) {
                return Err(format!(
                    "member {} exited with {status}:\n{}",
                    m + 1,
                    tail(&log)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "member {} did not serve within {within:?}:\n{}",
            m + 1,
            tail(&log)
        ))
    }

    fn launch(&mut self, m: usize) -> Result<(), String> {
        let home = self.dir.path().join(format!("member{}", m + 1));
        let data = home.join("data");
        std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
        std::fs::write(data.join("myid"), format!("{}\n", m + 1)).map_err(|e| e.to_string())?;
        let mut config = format!(
            "tickTime=200\ninitLimit=50\nsyncLimit=25\ndataDir={}\nclientPort={}\n\
             clientPortAddress=127.0.0.1\nminSessionTimeout=400\nmaxSessionTimeout=30000\n\
             admin.enableServer=false\n4lw.commands.whitelist=ruok,srvr\n",
            data.display(),
            self.ports[m].0
        );
        for (i, (_, quorum, election)) in self.ports.iter().enumerate() {
            config.push_str(&format!("server.{}=127.0.0.1:{quorum}:{election}\n", i + 1));
        }
        let config_path = home.join("zoo.cfg");
        std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
        let child = java(
            &self.lib,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            &config_path,
            &home.join("server.log"),
        )?;
        self.children[m] = Some(child);
        Ok(())
    }
}

impl Drop for Ensemble {
    fn drop(&mut self) {
        for m in 0..self.children.len() {
            self.kill(m);
        }
    }
}

/// Starts `main` from the jars in `lib` with `config`, logging to `log`.
fn java(lib: &Path, main: &str, config: &Path, log: &Path) -> Result<Child, String> {
    let out = std::fs::File::create(log).map_err(|e| e.to_string())?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    Command::new("java")
        .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"])
        .arg("-Dzookeeper.admin.enableServer=false")
        .arg("-cp")
        .arg(format!("{}/*", lib.display()))
        .arg(main)
        .arg(config)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot run java: {e}"))
}
