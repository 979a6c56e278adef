//! `erpc monitor` against real providers registered in a real registry (rnacos): its
//! HTTP API (services, providers, rates from the providers' `/metrics`, governance with
//! the operator token), and the page itself in a real headless Chromium driven over
//! WebDriver (chromedriver), which also saves a screenshot to `target/monitor.png`.
//!
//! rnacos comes from `ERPC_RNACOS_BIN` (else `scripts/install-rnacos.sh`'s cache);
//! Chromium and chromedriver from the PATH (`scripts/install-chromium.sh`). A missing
//! one prints SKIPPED, unless `ERPC_NACOS_REQUIRE` / `ERPC_CHROMIUM_REQUIRE` is set.

#[path = "../../erpc-nacos/tests/support/mod.rs"]
mod support;

mod common;

use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::monitor::Monitor;
use common::Provider;
use demo_api::CalculatorClient;
use erpc::nacos::NacosRegistry;
use erpc::registry::{Registration, Registry};
use serde_json::{json, Value};
use support::{eventually, Kind, Options, Server, Unavailable};

/// Generous bound for the registry, the monitor or the browser to show a change on a
/// loaded machine.
const SETTLE: Duration = Duration::from_secs(60);

const CALC: &str = "demo_api::Calculator";
const CALC_KEY: &str = "demo_api::Calculator:1.0";

/// The provider `addr` of the Calculator in a monitor state, if listed.
fn provider<'a>(state: &'a Value, addr: &str) -> Option<&'a Value> {
    state["services"]
        .as_array()?
        .iter()
        .find(|s| s["key"] == CALC_KEY)?["providers"]
        .as_array()?
        .iter()
        .find(|p| p["addr"] == addr)
}

/// Calculator calls the provider whose admin listener is `admin` has served, read from
/// its own `/metrics` (the server side's count).
async fn served(admin: &str) -> u64 {
    let text = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .expect("admin answers")
        .text()
        .await
        .expect("metrics text");
    let prefix = format!(r#"erpc_calls_total{{side="server",service="{CALC_KEY}",method="add"}} "#);
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |v| v.trim().parse().expect("a count"))
}

async fn consumer(registry: Arc<dyn Registry>) -> CalculatorClient {
    let client = erpc::Client::builder()
        .registry(registry)
        .build()
        .expect("client builds");
    CalculatorClient::new(client)
}

/// Makes `n` calls; returns how many succeeded.
async fn burst(calc: &CalculatorClient, n: usize) -> usize {
    let calls = (0..n).map(|i| calc.add(i as i64, 1));
    let results = futures::future::join_all(calls).await;
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| match r {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(format!("{e:?}")),
            Err(e) => Some(e.to_string()),
        })
        .collect();
    if !failed.is_empty() {
        eprintln!("{} of {n} calls failed, first: {}", failed.len(), failed[0]);
    }
    n - failed.len()
}

/// Waits until calls stop reaching `stopped` while still reaching `still`: bursts of
/// calls, each checked on both providers' own counters.
async fn calls_stop_reaching(calc: &CalculatorClient, stopped: &Provider, still: &Provider) {
    eventually(
        SETTLE,
        "the consumer to stop calling the provider",
        || async {
            let (before_stopped, before_still) =
                (served(&stopped.admin).await, served(&still.admin).await);
            assert_eq!(burst(calc, 40).await, 40, "every call succeeds");
            let (after_stopped, after_still) =
                (served(&stopped.admin).await, served(&still.admin).await);
            (after_stopped == before_stopped && after_still >= before_still + 40).then_some(())
        },
    )
    .await;
}

/// Waits until the consumer's calls reach `provider` again.
async fn calls_reach(calc: &CalculatorClient, provider: &Provider) {
    eventually(
        SETTLE,
        "the consumer to call the provider again",
        || async {
            let before = served(&provider.admin).await;
            assert_eq!(burst(calc, 40).await, 40, "every call succeeds");
            (served(&provider.admin).await > before).then_some(())
        },
    )
    .await;
}

fn rnacos(test: &str) -> Option<Server> {
    match Server::start(Kind::Rnacos, Options::default()) {
        Ok(server) => Some(server),
        Err(Unavailable(why)) => {
            support::skipped(test, Kind::Rnacos, &why);
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_api_against_providers_in_rnacos() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let Some(nacos) = rnacos("erpc monitor API") else {
        return;
    };
    let url = format!("nacos://{}", nacos.addr());
    let nacos_registry = NacosRegistry::from_url(&url).expect("nacos URL");
    let registry: Arc<dyn Registry> = Arc::new(nacos_registry.clone());
    let a = Provider::start(Some(registry.clone())).await;
    let b = Provider::start(Some(registry.clone())).await;
    let token = "op-s3cret";
    let monitor = Monitor::start(&url, Some(token));

    // Both providers, with their admin listeners from the registry metadata.
    let state = eventually(SETTLE, "both providers on the monitor", || async {
        let state = monitor.state().await;
        (provider(&state, &a.addr).is_some() && provider(&state, &b.addr).is_some())
            .then_some(state)
    })
    .await;
    assert_eq!(state["token_required"], true);
    assert_eq!(state["governance_unsupported"], Value::Null);
    let services: Vec<(&str, &str, &str)> = state["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|s| {
            (
                s["interface"].as_str().unwrap_or_default(),
                s["group"].as_str().unwrap_or_default(),
                s["version"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        services,
        [
            (CALC, "", "1.0"),
            ("demo_api::HelloService", "test1", "1.0")
        ]
    );
    for p in [&a, &b] {
        let shown = provider(&state, &p.addr).expect("listed");
        assert_eq!(shown["admin"], p.admin.as_str(), "{shown}");
        assert_eq!(shown["weight"], 100, "{shown}");
        assert_eq!(shown["enabled"], true, "{shown}");
        assert_eq!(shown["healthy"], true, "{shown}");
        assert_eq!(shown["erpc_version"], env!("CARGO_PKG_VERSION"), "{shown}");
        assert_eq!(shown["metadata"]["methods"], "add,divide,whoami", "{shown}");
    }

    // A burst of calls shows as rates and counts.
    let calc = consumer(registry.clone()).await;
    assert_eq!(burst(&calc, 200).await, 200);
    let state = eventually(SETTLE, "the calls on the monitor", || async {
        let state = monitor.state().await;
        let total =
            |addr: &str| provider(&state, addr).and_then(|p| p["stats"]["calls_total"].as_f64());
        (total(&a.addr)? + total(&b.addr)? >= 200.0).then_some(state)
    })
    .await;
    let history = state["services"][0]["history"].as_array().expect("history");
    assert!(!history.is_empty(), "{state}");
    eventually(SETTLE, "a call rate and p99 on the monitor", || async {
        assert_eq!(burst(&calc, 100).await, 100);
        let state = monitor.state().await;
        let p = provider(&state, &a.addr)?;
        (p["stats"]["rate"].as_f64()? > 0.0 && p["stats"]["p99_ms"].as_f64()? > 0.0).then_some(())
    })
    .await;

    // Without the token, or with a wrong one: 401 and nothing changes.
    let drain_a =
        json!({"interface": CALC, "group": "", "version": "1.0", "addr": a.addr, "weight": 0});
    for wrong in [None, Some("op-wrong"), Some("")] {
        let (status, answer) = monitor.act(wrong, drain_a.clone()).await;
        assert_eq!(status, 401, "{wrong:?}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .is_some_and(|e| e.contains("token")),
            "{answer}"
        );
    }
    let listed = nacos_registry
        .providers(&erpc::ServiceKey::new(CALC, "", "1.0"))
        .await
        .expect("nacos lists");
    assert_eq!(
        listed.iter().map(|p| p.weight).collect::<Vec<_>>(),
        [100, 100],
        "a refused action changed nothing"
    );

    // Not JSON (a cross-site form post): refused, even with the token.
    let form = reqwest::Client::new()
        .post(format!("{}api/governance", monitor.url))
        .header("x-erpc-token", token)
        .header("content-type", "text/plain")
        .body(drain_a.to_string())
        .send()
        .await
        .expect("the monitor answers");
    assert_eq!(form.status().as_u16(), 415);

    // Unknown provider, nothing to change: refused with the reason.
    let (status, _) = monitor
        .act(
            Some(token),
            json!({"interface": CALC, "version": "1.0", "addr": "127.0.0.1:1", "weight": 5}),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = monitor
        .act(
            Some(token),
            json!({"interface": CALC, "version": "1.0", "addr": a.addr}),
        )
        .await;
    assert_eq!(status, 400);

    // Weight 0 drains a: the registry says so, the page too, and the consumer stops
    // sending it calls.
    let (status, answer) = monitor.act(Some(token), drain_a).await;
    assert_eq!(status, 200, "{answer}");
    let key = erpc::ServiceKey::new(CALC, "", "1.0");
    let listed = nacos_registry.providers(&key).await.expect("nacos lists");
    let weight_of = |addr: &str| listed.iter().find(|p| p.addr == addr).map(|p| p.weight);
    assert_eq!(weight_of(&a.addr), Some(0));
    assert_eq!(
        listed
            .iter()
            .find(|p| p.addr == a.addr)
            .and_then(|p| p.metadata.get("erpc.admin")),
        Some(&a.admin),
        "metadata kept"
    );
    eventually(SETTLE, "the drained weight on the monitor", || async {
        let state = monitor.state().await;
        (provider(&state, &a.addr)?["weight"] == 0).then_some(())
    })
    .await;
    calls_stop_reaching(&calc, &a, &b).await;
    let (status, _) = monitor
        .act(
            Some(token),
            json!({"interface": CALC, "version": "1.0", "addr": a.addr, "weight": 100}),
        )
        .await;
    assert_eq!(status, 200);
    let listed = nacos_registry.providers(&key).await.expect("nacos lists");
    assert_eq!(
        listed.iter().find(|p| p.addr == a.addr).map(|p| p.weight),
        Some(100),
        "weight 100 again (rnacos ignores an update to exactly 1.0)"
    );
    calls_reach(&calc, &a).await;

    // Disable b: the registry no longer lists it, the page shows it disabled (and keeps
    // offering "enable"), the consumer stops calling it; enabling brings it back.
    let (status, answer) = monitor
        .act(
            Some(token),
            json!({"interface": CALC, "version": "1.0", "addr": b.addr, "enabled": false}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let listed = nacos_registry.providers(&key).await.expect("nacos lists");
    assert!(listed.iter().all(|p| p.addr != b.addr), "{listed:?}");
    eventually(SETTLE, "b disabled on the monitor", || async {
        let state = monitor.state().await;
        let shown = provider(&state, &b.addr)?;
        (shown["enabled"] == false).then_some(())
    })
    .await;
    calls_stop_reaching(&calc, &b, &a).await;
    let (status, _) = monitor
        .act(
            Some(token),
            json!({"interface": CALC, "version": "1.0", "addr": b.addr, "enabled": true}),
        )
        .await;
    assert_eq!(status, 200);
    let listed = nacos_registry.providers(&key).await.expect("nacos lists");
    let b_listed = listed
        .iter()
        .find(|p| p.addr == b.addr)
        .expect("b listed again");
    assert_eq!(b_listed.weight, 100);
    assert_eq!(b_listed.metadata.get("erpc.admin"), Some(&b.admin));
    eventually(SETTLE, "b enabled on the monitor", || async {
        let state = monitor.state().await;
        (provider(&state, &b.addr)?["enabled"] == true).then_some(())
    })
    .await;
    calls_reach(&calc, &b).await;

    drop(monitor);
    a.stop().await;
    b.stop().await;
}

/// chromedriver on the PATH (or `ERPC_CHROMEDRIVER`), or why not.
fn chromedriver() -> Result<String, String> {
    if let Ok(path) = std::env::var("ERPC_CHROMEDRIVER") {
        return Ok(path);
    }
    let found = std::process::Command::new("sh")
        .args(["-c", "command -v chromedriver"])
        .output()
        .map_err(|e| e.to_string())?;
    let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
    if path.is_empty() {
        return Err("chromedriver not found (run scripts/install-chromium.sh)".into());
    }
    Ok(path)
}

fn chromium_binary() -> Option<String> {
    if let Ok(path) = std::env::var("ERPC_CHROMIUM") {
        return Some(path);
    }
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        let found = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
            .ok()?;
        let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
        (!path.is_empty()).then_some(path)
    })
}

/// A chromedriver process on a free port, killed on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver(path: &str) -> Driver {
    let port = support::free_port(false);
    let child = std::process::Command::new(path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Driver { child, port };
    eventually(SETTLE, "chromedriver to listen", || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()
    })
    .await;
    driver
}

/// The text of the first element `css` selects, if present.
async fn text_of(browser: &fantoccini::Client, css: &str) -> Option<String> {
    let element = browser.find(fantoccini::Locator::Css(css)).await.ok()?;
    element.text().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_page_in_headless_chromium() {
    let required = std::env::var_os("ERPC_CHROMIUM_REQUIRE").is_some();
    let driver_path = match (chromedriver(), chromium_binary()) {
        (Ok(driver), Some(_)) => driver,
        (driver, chromium) => {
            let why = format!("chromedriver: {driver:?}, chromium: {chromium:?}");
            assert!(
                !required,
                "Chromium required (ERPC_CHROMIUM_REQUIRE) but unavailable: {why}"
            );
            eprintln!("\n********\nSKIPPED: erpc monitor page in Chromium: {why}\n********\n");
            return;
        }
    };
    let Some(nacos) = rnacos("erpc monitor page") else {
        return;
    };
    let url = format!("nacos://{}", nacos.addr());
    let registry: Arc<dyn Registry> = Arc::new(NacosRegistry::from_url(&url).expect("nacos URL"));
    let a = Provider::start(Some(registry.clone())).await;
    let b = Provider::start(Some(registry.clone())).await;
    let token = "page-s3cret";
    let monitor = Monitor::start(&url, Some(token));

    let driver = start_driver(&driver_path).await;
    let profile = tempfile::tempdir().expect("a profile directory");
    let mut chrome_options = json!({
        "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", "--window-size=1400,720",
            format!("--user-data-dir={}", profile.path().display()),
        ],
    });
    if let Some(binary) = chromium_binary() {
        chrome_options["binary"] = json!(binary);
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), chrome_options);
    let browser =
        fantoccini::ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("a Chromium session");

    browser.goto(&monitor.url).await.expect("the page loads");
    let row =
        |addr: &str| format!(r#"section[data-key="{CALC_KEY}"] tr.provider[data-addr="{addr}"]"#);
    // The page lists both providers.
    for p in [&a, &b] {
        eventually(SETTLE, "the provider on the page", || async {
            text_of(&browser, &format!("{} .status", row(&p.addr)))
                .await
                .filter(|s| s.contains("healthy"))
        })
        .await;
    }
    let title = browser.title().await.expect("a title");
    assert_eq!(title, "erpc monitor");

    // A burst of calls: the rates the page shows change from zero.
    let rate_of = |addr: String| {
        let browser = &browser;
        let css = format!("{} .rate", row(&addr));
        async move {
            text_of(browser, &css)
                .await
                .and_then(|t| t.trim().parse::<f64>().ok())
        }
    };
    eventually(
        SETTLE,
        "a zero call rate on the page before any call",
        || async { rate_of(a.addr.clone()).await.filter(|r| *r == 0.0) },
    )
    .await;
    // Calls keep flowing in the background from here on.
    let calc = consumer(registry.clone()).await;
    let calling = Arc::new(AtomicBool::new(true));
    let failures = Arc::new(AtomicU64::new(0));
    let background = {
        let (calc, calling, failures) = (calc.clone(), calling.clone(), failures.clone());
        tokio::spawn(async move {
            while calling.load(Ordering::Relaxed) {
                if burst(&calc, 20).await != 20 {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    for p in [&a, &b] {
        eventually(SETTLE, "a non-zero call rate on the page", || async {
            rate_of(p.addr.clone()).await.filter(|r| *r > 0.0)
        })
        .await;
    }

    // The page re-renders every second: find and click in one go, again if the button
    // was replaced in between.
    let disable_b = format!(r#"{} button[data-action="disable"]"#, row(&b.addr));
    let click_disable_b = || async {
        eventually(SETTLE, "a click on b's disable button", || async {
            let button = browser
                .find(fantoccini::Locator::Css(&disable_b))
                .await
                .ok()?;
            button.click().await.ok()
        })
        .await
    };

    // Without the operator token the page is refused (401) and b stays enabled.
    click_disable_b().await;
    eventually(SETTLE, "the page to show the refusal", || async {
        text_of(&browser, "#message")
            .await
            .filter(|m| m.starts_with("refused (401)"))
    })
    .await;
    let still = browser
        .find(fantoccini::Locator::Css(&row(&b.addr)))
        .await
        .expect("b's row")
        .attr("data-enabled")
        .await
        .expect("an attribute");
    assert_eq!(
        still.as_deref(),
        Some("true"),
        "a refused action changed nothing"
    );

    // With the token typed in: press "disable" on b; the page shows it disabled, and
    // the consumer's calls stop reaching it (counted by b itself).
    browser
        .find(fantoccini::Locator::Css("#token"))
        .await
        .expect("the token field (shown when --token is set)")
        .send_keys(token)
        .await
        .expect("types the token");
    click_disable_b().await;
    eventually(SETTLE, "b disabled on the page", || async {
        let enabled = browser
            .find(fantoccini::Locator::Css(&row(&b.addr)))
            .await
            .ok()?
            .attr("data-enabled")
            .await
            .ok()??;
        let status = text_of(&browser, &format!("{} .status", row(&b.addr))).await?;
        (enabled == "false" && status.contains("disabled")).then_some(())
    })
    .await;
    let said = format!("{} disabled", b.addr);
    eventually(SETTLE, "the page to confirm the action", || async {
        text_of(&browser, "#message").await.filter(|m| *m == said)
    })
    .await;
    eventually(SETTLE, "calls to stop reaching b", || async {
        let before = served(&b.admin).await;
        let a_before = served(&a.admin).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        (served(&b.admin).await == before && served(&a.admin).await > a_before).then_some(())
    })
    .await;
    // The page shows b idle and a busy.
    eventually(SETTLE, "b idle and a busy on the page", || async {
        let (ra, rb) = (
            rate_of(a.addr.clone()).await?,
            rate_of(b.addr.clone()).await?,
        );
        (ra > 0.0 && rb == 0.0).then_some(())
    })
    .await;

    let png = browser.screenshot().await.expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    std::fs::create_dir_all(&target).expect("target directory");
    let saved = target.join("monitor.png");
    std::fs::write(&saved, &png).expect("screenshot saved");
    eprintln!("screenshot: {}", saved.display());

    calling.store(false, Ordering::Relaxed);
    background.await.expect("the caller stops");
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "every background call succeeded"
    );
    browser.close().await.expect("the session closes");
    drop(driver);
    drop(monitor);
    a.stop().await;
    b.stop().await;
}

/// A provider disabled outside the monitor (the Nacos console, another tool) is shown
/// disabled, and enabling it from the monitor gives it back to consumers. On the
/// official Nacos lines: rnacos's open API lists no disabled instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_disabled_outside_the_monitor_is_shown_and_enabled_from_it() {
    const TEST: &str = "a_provider_disabled_outside_the_monitor_is_shown_and_enabled_from_it";
    for kind in [Kind::Nacos2, Kind::Nacos3] {
        let server = match Server::start(kind, Options::default()) {
            Ok(server) => server,
            Err(Unavailable(why)) => {
                support::skipped(TEST, kind, &why);
                continue;
            }
        };
        let url = format!("nacos://{}", server.addr());
        let registry = NacosRegistry::from_url(&url).expect("nacos URL");
        let key = erpc::ServiceKey::new(CALC, "", "1.0");
        let registration = Registration {
            key: key.clone(),
            provider: erpc::registry::Provider::new(format!("127.0.0.1:{}", support::dead_port())),
        };
        let addr = registration.provider.addr.clone();
        registry
            .register_instance(&registration)
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: registers: {e}"));
        registry
            .update_instance(&registration, false)
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: disables: {e}"));

        let monitor = Monitor::start(&url, None);
        eventually(SETTLE, &format!("{kind:?}: shown disabled"), || async {
            let state = monitor.state().await;
            (provider(&state, &addr)?["enabled"] == false).then_some(())
        })
        .await;
        // `erpc providers --all` lists it too, with its state.
        let args = ["--registry", &url, "providers", CALC, "--all", "-o", "json"];
        let run = common::erpc_async(args.iter().map(|a| a.to_string()).collect()).await;
        let listed: Value = serde_json::from_str(run.ok()).expect("JSON");
        assert_eq!(
            listed,
            json!([{"addr": addr, "weight": 100, "state": "disabled", "metadata": {"protocol": "erpc"}}]),
            "{kind:?}"
        );
        let (status, answer) = monitor
            .act(
                None,
                json!({"interface": CALC, "version": "1.0", "addr": addr, "enabled": true}),
            )
            .await;
        assert_eq!(status, 200, "{kind:?}: {answer}");
        eventually(
            SETTLE,
            &format!("{kind:?}: listed for consumers"),
            || async {
                let listed = registry.providers(&key).await.ok()?;
                listed.iter().any(|p| p.addr == addr).then_some(())
            },
        )
        .await;
        registry
            .deregister_instance(&registration)
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: deregisters: {e}"));
    }
}

#[test]
fn monitor_needs_a_registry_that_answers() {
    common::erpc(&[
        "--addr",
        "127.0.0.1:1",
        "monitor",
        "--listen",
        "127.0.0.1:0",
    ])
    .fails(2, "monitor needs a nacos:// or zookeeper:// registry");
    let dead = format!("nacos://127.0.0.1:{}", support::dead_port());
    let run = common::erpc(&["--registry", &dead, "--timeout", "2s", "monitor"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
}
