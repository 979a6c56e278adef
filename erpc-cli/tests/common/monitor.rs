//! A running `erpc monitor` and its HTTP API, for the tests.

use std::io::BufRead;
use std::process::{Child, Stdio};

use serde_json::Value;

/// A running `erpc monitor`, killed on drop.
pub struct Monitor {
    child: Child,
    /// `http://127.0.0.1:port/`.
    pub url: String,
}

impl Monitor {
    /// Starts `erpc --registry URL monitor` on a free port, refreshing every 500 ms.
    pub fn start(registry_url: &str, token: Option<&str>) -> Monitor {
        let mut args = vec![
            "--registry",
            registry_url,
            "monitor",
            "--listen",
            "127.0.0.1:0",
            "--interval",
            "500ms",
        ];
        if let Some(token) = token {
            args.extend(["--token", token]);
        }
        let mut child = super::command(&args)
            .env_remove("ERPC_MONITOR_TOKEN")
            .stdout(Stdio::piped())
            .spawn()
            .expect("erpc monitor starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let first = std::io::BufReader::new(stdout)
            .lines()
            .next()
            .expect("a first line")
            .expect("utf-8");
        let url = first
            .strip_prefix("erpc monitor on ")
            .unwrap_or_else(|| panic!("unexpected first line: {first}"))
            .to_string();
        Monitor { child, url }
    }

    /// `GET /api/state`.
    pub async fn state(&self) -> Value {
        reqwest::get(format!("{}api/state", self.url))
            .await
            .expect("the monitor answers")
            .json()
            .await
            .expect("JSON state")
    }

    /// Posts `action`; returns the status and the JSON answer.
    pub async fn act(&self, token: Option<&str>, action: Value) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .post(format!("{}api/governance", self.url))
            .json(&action);
        if let Some(token) = token {
            request = request.header("x-erpc-token", token);
        }
        let response = request.send().await.expect("the monitor answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
