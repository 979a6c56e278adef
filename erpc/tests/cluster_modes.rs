//! Cluster modes and the client's protections, end to end through `Client` against
//! in-process servers: failsafe answers `()`/`None` on failure and the error otherwise,
//! failfast makes one attempt only, a retry budget that is spent stops retries,
//! forking sends each call to two providers and answers with the first success,
//! `CircuitOpen` surfaces when a provider is ejected between pick and send, and a
//! `#[erpc(hash_key = "arg")]` method sticks each key to one provider.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use erpc::balance::ConsistentHash;
use erpc::{BreakerPolicy, Client, ClusterMode, Error, RetryBudgetPolicy, ServerHandle};
use support::{bounded, eventually, server, spawn, TEST_LIMIT};
use tokio::sync::Notify;

/// The service these tests call.
#[erpc::service(group = "modes", version = "1.0")]
trait Modes {
    /// Panics when `fail`, else returns nothing.
    async fn note(&self, fail: bool);
    /// Panics when `fail`, else `Some(name)`.
    async fn find(&self, fail: bool) -> Option<String>;
    /// Panics when `fail`, else 7.
    async fn count(&self, fail: bool) -> u32;
    /// Always panics (safe to retry: it changes nothing).
    #[erpc(idempotent)]
    async fn flaky(&self) -> u32;
    /// Waits until the test releases it, then panics.
    async fn doom(&self) -> u32;
    /// The provider's name, after the provider's delay.
    #[erpc(idempotent)]
    async fn lookup(&self) -> String;
    /// The provider's name; sticky balancers route by `user`.
    #[erpc(hash_key = "user")]
    async fn owner(&self, user: u64) -> String;
    /// Keeps `data` (nothing).
    async fn store(&self, data: Vec<u8>);
    /// Keeps `item` (nothing): its encoding always fails.
    async fn keep(&self, item: Unencodable);
}

/// An argument whose encoding always fails.
#[derive(Debug, serde::Deserialize)]
struct Unencodable;

impl serde::Serialize for Unencodable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("Unencodable never encodes"))
    }
}

/// A client filter that notes the outcome of every call it passes on.
#[derive(Default, Clone)]
struct Outcomes(Arc<std::sync::Mutex<Vec<String>>>);

#[erpc::async_trait]
impl erpc::filter::ClientFilter for Outcomes {
    async fn call(
        &self,
        call: &mut erpc::filter::ClientCall<'_>,
        next: erpc::filter::ClientNext<'_>,
    ) -> Result<(), Error> {
        let result = next.run(call).await;
        let outcome = result.as_ref().map_or_else(|e| e.kind(), |()| "ok");
        self.0.lock().unwrap().push(outcome.to_string());
        result
    }
}

/// One provider: its name, how many handlers ran (and, of `lookup`, how many finished or
/// were stopped), the gate `doom` waits
/// on and the delay of `lookup`.
#[derive(Clone)]
struct ModesImpl {
    name: String,
    runs: Arc<AtomicUsize>,
    finished: Arc<AtomicUsize>,
    stopped: Arc<AtomicUsize>,
    gate: Arc<Notify>,
    delay: Duration,
}

impl ModesImpl {
    fn new(name: &str) -> Self {
        Self {
            name: name.into(),
            runs: Arc::default(),
            finished: Arc::default(),
            stopped: Arc::default(),
            gate: Arc::default(),
            delay: Duration::ZERO,
        }
    }

    fn slow(name: &str, delay: Duration) -> Self {
        Self {
            delay,
            ..Self::new(name)
        }
    }

    fn ran(&self) {
        self.runs.fetch_add(1, Ordering::SeqCst);
    }
}

/// Counts a `lookup` handler dropped before its end (the call was cancelled).
struct Stopped {
    counter: Arc<AtomicUsize>,
    done: bool,
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if !self.done {
            self.counter.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Modes for ModesImpl {
    async fn note(&self, fail: bool) {
        self.ran();
        assert!(!fail, "note failed on purpose");
    }

    async fn find(&self, fail: bool) -> Option<String> {
        self.ran();
        assert!(!fail, "find failed on purpose");
        Some(self.name.clone())
    }

    async fn count(&self, fail: bool) -> u32 {
        self.ran();
        assert!(!fail, "count failed on purpose");
        7
    }

    async fn flaky(&self) -> u32 {
        self.ran();
        panic!("flaky fails on {}", self.name)
    }

    async fn doom(&self) -> u32 {
        self.ran();
        self.gate.notified().await;
        panic!("doom on {}", self.name)
    }

    async fn lookup(&self) -> String {
        self.ran();
        let mut guard = Stopped {
            counter: self.stopped.clone(),
            done: false,
        };
        tokio::time::sleep(self.delay).await;
        guard.done = true;
        self.finished.fetch_add(1, Ordering::SeqCst);
        self.name.clone()
    }

    async fn owner(&self, _user: u64) -> String {
        self.ran();
        self.name.clone()
    }

    async fn store(&self, _data: Vec<u8>) {
        self.ran();
    }

    async fn keep(&self, _item: Unencodable) {
        self.ran();
    }
}

async fn start(provider: &ModesImpl) -> ServerHandle {
    spawn(server().add_service(ModesServer::new(provider.clone()))).await
}

fn runs(providers: &[ModesImpl]) -> usize {
    providers
        .iter()
        .map(|p| p.runs.load(Ordering::SeqCst))
        .sum()
}

/// A breaker that never ejects within these tests (they count attempts, not ejections).
fn lenient_breaker() -> BreakerPolicy {
    BreakerPolicy {
        consecutive_failures: 1_000,
        min_calls: 1_000,
        ..BreakerPolicy::default()
    }
}

fn client_of(servers: &[ServerHandle]) -> erpc::ClientBuilder {
    Client::builder()
        .direct(servers.iter().map(|s| s.local_addr().to_string()))
        .timeout(Duration::from_secs(10))
        .breaker(lenient_breaker())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failsafe_answers_unit_and_none_on_failure_and_the_error_otherwise() {
    bounded(TEST_LIMIT, async {
        let provider = ModesImpl::new("a");
        let server = start(&provider).await;
        let modes = ModesClient::new(
            client_of(std::slice::from_ref(&server))
                .cluster(ClusterMode::Failsafe)
                .build()
                .unwrap(),
        );

        modes
            .note(true)
            .await
            .expect("failsafe turns a failed `()` call into `()`");
        assert_eq!(modes.find(true).await.unwrap(), None);
        let error = modes.count(true).await.unwrap_err();
        assert!(matches!(error, Error::HandlerPanicked(_)), "{error:?}");
        // Answers still come through unchanged.
        modes.note(false).await.unwrap();
        assert_eq!(modes.find(false).await.unwrap().as_deref(), Some("a"));
        assert_eq!(modes.count(false).await.unwrap(), 7);
        // Every call ran exactly once: failsafe does not retry.
        assert_eq!(provider.runs.load(Ordering::SeqCst), 6);
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failsafe_never_hides_a_request_the_client_cannot_send_with_or_without_filters() {
    bounded(TEST_LIMIT, async {
        let provider = ModesImpl::new("a");
        let server = start(&provider).await;
        let outcomes = Outcomes::default();
        let plain = client_of(std::slice::from_ref(&server));
        let filtered = client_of(std::slice::from_ref(&server)).filter(outcomes.clone());
        for builder in [plain, filtered] {
            let modes = ModesClient::new(
                builder
                    .cluster(ClusterMode::Failsafe)
                    .max_frame_bytes(1024)
                    .build()
                    .unwrap(),
            );
            let error = modes.store(vec![0; 4096]).await.unwrap_err();
            assert!(
                matches!(
                    error,
                    Error::FrameTooLarge {
                        direction: erpc::FrameDirection::Request,
                        ..
                    }
                ),
                "{error:?}"
            );
            let error = modes.keep(Unencodable).await.unwrap_err();
            assert!(
                matches!(&error, Error::Encode(message) if message.contains("never encodes")),
                "{error:?}"
            );
            // A call that can be sent still gets failsafe's empty answer.
            modes.note(true).await.expect("failsafe answers `()`");
        }
        // The filter saw both refusals as the calls' errors, then the failed call.
        assert_eq!(
            *outcomes.0.lock().unwrap(),
            ["frame_too_large", "encode", "handler_panicked"]
        );
        // Only the two sendable calls reached the provider.
        assert_eq!(provider.runs.load(Ordering::SeqCst), 2);
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failfast_makes_one_attempt_where_failover_tries_another_provider() {
    bounded(TEST_LIMIT, async {
        let providers = [ModesImpl::new("a"), ModesImpl::new("b")];
        let servers = [start(&providers[0]).await, start(&providers[1]).await];
        let client = client_of(&servers).retries(2).build().unwrap();
        let calls = 10;

        // Control: failover runs an idempotent call that fails on both providers twice.
        let failover = ModesClient::new(client.clone());
        for _ in 0..calls {
            let error = failover.flaky().await.unwrap_err();
            assert!(matches!(error, Error::HandlerPanicked(_)), "{error:?}");
        }
        assert_eq!(runs(&providers), 2 * calls, "failover tries both providers");

        let failfast = ModesClient::new(client).with_cluster(ClusterMode::Failfast);
        for _ in 0..calls {
            let error = failfast.flaky().await.unwrap_err();
            assert!(matches!(error, Error::HandlerPanicked(_)), "{error:?}");
        }
        assert_eq!(
            runs(&providers),
            3 * calls,
            "failfast ran a call on a second provider"
        );
        for server in servers {
            server.shutdown().await.unwrap();
        }
    })
    .await;
}

/// Forking with a funded budget: each call goes to both providers, the fast one answers,
/// and the slow copy is cancelled instead of awaited. (With an empty budget no copy is
/// sent: `balancing.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forking_sends_to_two_providers_and_the_first_answer_wins() {
    bounded(TEST_LIMIT, async {
        let slow_delay = Duration::from_secs(3);
        let providers = [ModesImpl::new("fast"), ModesImpl::slow("slow", slow_delay)];
        let servers = [start(&providers[0]).await, start(&providers[1]).await];
        let client = client_of(&servers).build().unwrap();
        let modes = ModesClient::new(client).with_cluster(ClusterMode::Forking(2));
        let calls = 5;
        for call in 0..calls {
            let started = std::time::Instant::now();
            assert_eq!(modes.lookup().await.unwrap(), "fast", "call {call}");
            assert!(
                started.elapsed() < slow_delay / 2,
                "call {call} took {:?}: forking waited for the slow copy",
                started.elapsed()
            );
        }
        let both_ran = eventually(Duration::from_secs(5), || {
            providers[1].runs.load(Ordering::SeqCst) == calls
        })
        .await;
        assert!(
            both_ran,
            "the slow provider got {} of {calls} copies",
            providers[1].runs.load(Ordering::SeqCst)
        );
        assert_eq!(providers[0].runs.load(Ordering::SeqCst), calls);
        // The losing copies were cancelled on the provider, not left to run.
        let cancelled = eventually(Duration::from_secs(5), || {
            providers[1].stopped.load(Ordering::SeqCst) == calls
        })
        .await;
        assert!(
            cancelled,
            "{} of {calls} losing copies were cancelled",
            providers[1].stopped.load(Ordering::SeqCst)
        );
        assert_eq!(providers[1].finished.load(Ordering::SeqCst), 0);
        for server in servers {
            server.shutdown().await.unwrap();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spent_retry_budget_stops_retries_and_the_error_surfaces() {
    bounded(TEST_LIMIT, async {
        let providers = [ModesImpl::new("a"), ModesImpl::new("b")];
        let servers = [start(&providers[0]).await, start(&providers[1]).await];
        // One retry in the bank, no deposits, a new token every 10 s: one retry in all.
        let budget = RetryBudgetPolicy {
            ratio: 0.0,
            min_per_second: 0.1,
        };
        let modes = ModesClient::new(
            client_of(&servers)
                .retries(2)
                .retry_budget(budget)
                .build()
                .unwrap(),
        );
        let calls = 8;
        for _ in 0..calls {
            let error = modes.flaky().await.unwrap_err();
            assert!(matches!(error, Error::HandlerPanicked(_)), "{error:?}");
        }
        assert_eq!(
            runs(&providers),
            calls + 1,
            "the budget held one retry; every other call must have run once"
        );
        for server in servers {
            server.shutdown().await.unwrap();
        }
    })
    .await;
}

/// Panic mode sends calls to an ejected provider when every provider is ejected, so
/// `CircuitOpen` is left for one case: a call that picked a provider while its breaker
/// admitted calls, and found it ejected when it came to send (here it waited for the
/// provider's only in-flight slot while the call holding it failed and tripped the
/// breaker). The next call goes through in panic mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn circuit_open_surfaces_when_the_breaker_trips_between_pick_and_send() {
    bounded(TEST_LIMIT, async {
        let provider = ModesImpl::new("a");
        let server = start(&provider).await;
        let breaker = BreakerPolicy {
            consecutive_failures: 1,
            base_ejection: Duration::from_secs(60),
            max_ejection: Duration::from_secs(60),
            ..BreakerPolicy::default()
        };
        let modes = ModesClient::new(
            Client::builder()
                .direct([server.local_addr().to_string()])
                .timeout(Duration::from_secs(10))
                .max_in_flight_per_provider(1)
                .breaker(breaker)
                .build()
                .unwrap(),
        );
        assert_eq!(modes.find(false).await.unwrap().as_deref(), Some("a"));

        let doomed = tokio::spawn({
            let modes = modes.clone();
            async move { modes.doom().await }
        });
        assert!(
            eventually(Duration::from_secs(5), || provider
                .runs
                .load(Ordering::SeqCst)
                == 2)
            .await
        );
        let waiting = tokio::spawn({
            let modes = modes.clone();
            async move { modes.count(false).await }
        });
        // No condition shows that the second call is waiting for the slot (it never
        // reaches the provider): give it ample time to pick and queue.
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(
            !waiting.is_finished(),
            "the second call did not wait for the slot"
        );
        provider.gate.notify_one();

        let error = doomed.await.unwrap().unwrap_err();
        assert!(matches!(error, Error::HandlerPanicked(_)), "{error:?}");
        let error = waiting.await.unwrap().unwrap_err();
        assert!(matches!(error, Error::CircuitOpen { .. }), "{error:?}");
        assert_eq!(
            provider.runs.load(Ordering::SeqCst),
            2,
            "the refused call ran"
        );

        // Ejected, but the only provider: panic mode calls it anyway.
        assert_eq!(modes.count(false).await.unwrap(), 7);
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hash_key_argument_sticks_each_key_to_one_provider_of_three() {
    bounded(TEST_LIMIT, async {
        let providers = [
            ModesImpl::new("a"),
            ModesImpl::new("b"),
            ModesImpl::new("c"),
        ];
        let mut servers = Vec::new();
        for provider in &providers {
            servers.push(start(provider).await);
        }
        let modes = ModesClient::new(
            client_of(&servers)
                .balancer(ConsistentHash::new())
                .build()
                .unwrap(),
        );
        let mut owners = BTreeMap::new();
        for round in 0..3 {
            for user in 0..60u64 {
                let owner = modes.owner(user).await.unwrap();
                let first = owners.entry(user).or_insert_with(|| owner.clone());
                assert_eq!(*first, owner, "round {round}: user {user} moved");
            }
        }
        let used: BTreeSet<&String> = owners.values().collect();
        assert_eq!(
            used.len(),
            3,
            "60 keys should spread over 3 providers: {owners:?}"
        );
        for server in servers {
            server.shutdown().await.unwrap();
        }
    })
    .await;
}
