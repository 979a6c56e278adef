//! Filters on both sides over real servers: the order they run in, metadata they set
//! reaching the handler, filters passed over for the calls they do not wrap,
//! short-circuits that stop a call before the handler (server) or before anything is
//! sent (client), and the shared-token auth filter, whose refusal is typed and never
//! retried on another provider.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use erpc::filter::{
    ClientCall, ClientFilter, ClientNext, ServerCall, ServerFilter, ServerNext, TokenAuth,
};
use erpc::{async_trait, context, Error, Reply, ServerHandle};
use support::{bounded, direct, server, spawn, TEST_LIMIT};

type Log = Arc<Mutex<Vec<String>>>;

/// A service that records in a log that its handler ran, and the metadata it saw.
#[erpc::service]
pub trait Note {
    /// Logs `handler` and returns the value of metadata `key`.
    async fn read(&self, key: String) -> Option<String>;
}

struct NoteImpl {
    log: Log,
    runs: Arc<AtomicUsize>,
}

impl Note for NoteImpl {
    async fn read(&self, key: String) -> Option<String> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        self.log.lock().unwrap().push("handler".into());
        let ctx = context::current()?;
        ctx.metadata().get(&key).map(str::to_string)
    }
}

/// Logs `name:in` and `name:out` around the rest of the chain, and sets metadata
/// `name` = `set`.
struct Tag {
    name: &'static str,
    log: Log,
}

#[async_trait]
impl ServerFilter for Tag {
    async fn call(&self, call: &mut ServerCall, next: ServerNext<'_>) -> Result<Reply, Error> {
        self.log.lock().unwrap().push(format!("{}:in", self.name));
        call.metadata_mut().insert(self.name, "set");
        let result = next.run(call).await;
        let seen = call.context().is_some();
        self.log
            .lock()
            .unwrap()
            .push(format!("{}:out:{seen}", self.name));
        result
    }
}

#[async_trait]
impl ClientFilter for Tag {
    async fn call(&self, call: &mut ClientCall<'_>, next: ClientNext<'_>) -> Result<(), Error> {
        self.log.lock().unwrap().push(format!("{}:in", self.name));
        call.metadata_mut().insert(self.name, "set");
        let result = next.run(call).await;
        self.log.lock().unwrap().push(format!("{}:out", self.name));
        result
    }
}

/// A filter that wraps no call: asked, it notes that in the log (server) or sets
/// metadata `prepared` = `yes` (client), and answers no. Its `call` must never run.
struct PassOver {
    log: Log,
}

#[async_trait]
impl ServerFilter for PassOver {
    fn wraps(&self, _: &mut ServerCall) -> bool {
        self.log.lock().unwrap().push("pass-over:asked".into());
        false
    }

    async fn call(&self, _: &mut ServerCall, _: ServerNext<'_>) -> Result<Reply, Error> {
        panic!("a server filter that wraps no call ran")
    }
}

#[async_trait]
impl ClientFilter for PassOver {
    fn wraps(&self, call: &mut ClientCall<'_>) -> bool {
        call.metadata_mut().insert("prepared", "yes");
        false
    }

    async fn call(&self, _: &mut ClientCall<'_>, _: ClientNext<'_>) -> Result<(), Error> {
        panic!("a client filter that wraps no call ran")
    }
}

/// Refuses every call without calling the rest of the chain.
struct Refuse;

#[async_trait]
impl ServerFilter for Refuse {
    async fn call(&self, _: &mut ServerCall, _: ServerNext<'_>) -> Result<Reply, Error> {
        Err(Error::Unauthenticated("refused by filter".into()))
    }
}

#[async_trait]
impl ClientFilter for Refuse {
    async fn call(&self, _: &mut ClientCall<'_>, _: ClientNext<'_>) -> Result<(), Error> {
        Err(Error::Overloaded("refused by client filter".into()))
    }
}

/// Counts the calls that reached the server (before any other filter).
struct Count(Arc<AtomicUsize>);

#[async_trait]
impl ServerFilter for Count {
    async fn call(&self, call: &mut ServerCall, next: ServerNext<'_>) -> Result<Reply, Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        next.run(call).await
    }
}

struct Provider {
    handle: ServerHandle,
    log: Log,
    runs: Arc<AtomicUsize>,
}

async fn provider(add: impl FnOnce(erpc::ServerBuilder, &Log) -> erpc::ServerBuilder) -> Provider {
    let log = Log::default();
    let runs = Arc::new(AtomicUsize::new(0));
    let note = NoteImpl {
        log: log.clone(),
        runs: runs.clone(),
    };
    let builder = add(server().add_service(NoteServer::new(note)), &log);
    Provider {
        handle: spawn(builder).await,
        log,
        runs,
    }
}

fn entries(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_run_in_order_on_both_sides_and_their_metadata_reaches_the_handler() {
    bounded(TEST_LIMIT, async {
        let provider = provider(|b, log| {
            b.filter(Tag {
                name: "s1",
                log: log.clone(),
            })
            .filter(Tag {
                name: "s2",
                log: log.clone(),
            })
        })
        .await;
        let log = provider.log.clone();
        let client = direct(provider.handle.local_addr())
            .filter(Tag {
                name: "c1",
                log: log.clone(),
            })
            .filter(Tag {
                name: "c2",
                log: log.clone(),
            })
            .build()
            .unwrap();
        let note = NoteClient::new(client);
        // c2 set by a client filter, s2 by a server filter, both seen by the handler.
        assert_eq!(
            note.read("c2".into()).await.unwrap().as_deref(),
            Some("set")
        );
        assert_eq!(
            entries(&log),
            [
                "c1:in",
                "c2:in",
                "s1:in",
                "s2:in",
                "handler",
                "s2:out:true",
                "s1:out:true",
                "c2:out",
                "c1:out"
            ]
        );
        assert_eq!(
            note.read("s2".into()).await.unwrap().as_deref(),
            Some("set")
        );
        provider.handle.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_that_wraps_no_call_is_passed_over_and_what_it_prepared_is_sent() {
    bounded(TEST_LIMIT, async {
        let provider = provider(|b, log| {
            b.filter(Tag {
                name: "s1",
                log: log.clone(),
            })
            .filter(PassOver { log: log.clone() })
            .filter(Tag {
                name: "s2",
                log: log.clone(),
            })
        })
        .await;
        let log = provider.log.clone();
        let addr = provider.handle.local_addr();

        // The only client filter wraps nothing: the call goes out as without filters,
        // with the metadata that filter set when asked.
        let alone = NoteClient::new(
            direct(addr)
                .filter(PassOver { log: log.clone() })
                .build()
                .unwrap(),
        );
        assert_eq!(
            alone.read("prepared".into()).await.unwrap().as_deref(),
            Some("yes")
        );
        assert_eq!(
            entries(&log),
            [
                "s1:in",
                "pass-over:asked",
                "s2:in",
                "handler",
                "s2:out:true",
                "s1:out:true"
            ]
        );

        // Between two filters that wrap, it is passed over in the chain.
        log.lock().unwrap().clear();
        let between = NoteClient::new(
            direct(addr)
                .filter(Tag {
                    name: "c1",
                    log: log.clone(),
                })
                .filter(PassOver { log: log.clone() })
                .filter(Tag {
                    name: "c2",
                    log: log.clone(),
                })
                .build()
                .unwrap(),
        );
        assert_eq!(
            between.read("prepared".into()).await.unwrap().as_deref(),
            Some("yes")
        );
        assert_eq!(
            between.read("c2".into()).await.unwrap().as_deref(),
            Some("set")
        );
        assert_eq!(entries(&log)[..3], ["c1:in", "c2:in", "s1:in"]);
        assert_eq!(provider.runs.load(Ordering::SeqCst), 3);
        provider.handle.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_filter_refusal_keeps_the_handler_from_running() {
    bounded(TEST_LIMIT, async {
        let provider = provider(|b, log| {
            b.filter(Tag {
                name: "s1",
                log: log.clone(),
            })
            .filter(Refuse)
        })
        .await;
        let note = NoteClient::new(direct(provider.handle.local_addr()).build().unwrap());
        let error = note.read("k".into()).await.unwrap_err();
        assert!(
            matches!(&error, Error::Unauthenticated(m) if m == "refused by filter"),
            "{error:?}"
        );
        assert_eq!(provider.runs.load(Ordering::SeqCst), 0);
        // The outer filter saw the refusal come back; the handler never got a context.
        assert_eq!(entries(&provider.log), ["s1:in", "s1:out:false"]);
        provider.handle.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_filter_refusal_sends_nothing() {
    bounded(TEST_LIMIT, async {
        let arrived = Arc::new(AtomicUsize::new(0));
        let counter = arrived.clone();
        let provider = provider(move |b, _| b.filter(Count(counter))).await;
        let log = Log::default();
        let client = direct(provider.handle.local_addr())
            .filter(Tag {
                name: "c1",
                log: log.clone(),
            })
            .filter(Refuse)
            .build()
            .unwrap();
        let error = NoteClient::new(client).read("k".into()).await.unwrap_err();
        assert!(matches!(&error, Error::Overloaded(m) if m == "refused by client filter"));
        assert_eq!(
            arrived.load(Ordering::SeqCst),
            0,
            "the call reached the server"
        );
        assert_eq!(entries(&log), ["c1:in", "c1:out"]);
        provider.handle.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_auth_filter_admits_the_right_token_and_refuses_others_without_retry() {
    bounded(TEST_LIMIT, async {
        let arrived = Arc::new(AtomicUsize::new(0));
        let mut providers = Vec::new();
        for _ in 0..3 {
            let counter = arrived.clone();
            providers.push(
                provider(move |b, _| b.filter(Count(counter)).filter(TokenAuth::new("s3cret")))
                    .await,
            );
        }
        let addrs: Vec<String> = providers
            .iter()
            .map(|p| p.handle.local_addr().to_string())
            .collect();
        let with = |token: Option<&str>| {
            let mut builder = erpc::Client::builder().direct(addrs.clone()).retries(2);
            if let Some(token) = token {
                builder = builder.filter(TokenAuth::new(token));
            }
            // Idempotent: a retryable failure would go to the other providers.
            NoteClient::new(builder.build().unwrap()).with_idempotent(true)
        };

        let good = with(Some("s3cret"));
        assert_eq!(good.read("x".into()).await.unwrap(), None);
        assert_eq!(
            good.read("authorization".into()).await.unwrap(),
            None,
            "the server filter hands the handler no token"
        );
        let before = arrived.load(Ordering::SeqCst);
        for (why, client) in [
            ("wrong token", with(Some("guess"))),
            ("no token", with(None)),
        ] {
            for _ in 0..10 {
                let error = client.read("x".into()).await.unwrap_err();
                assert!(
                    matches!(&error, Error::Unauthenticated(m) if m.starts_with(why)),
                    "{why}: {error:?}"
                );
            }
        }
        assert_eq!(
            arrived.load(Ordering::SeqCst) - before,
            20,
            "an unauthenticated call was retried on another provider"
        );
        let runs: usize = providers
            .iter()
            .map(|p| p.runs.load(Ordering::SeqCst))
            .sum();
        assert_eq!(runs, 2, "only the authenticated calls ran");
        for p in providers {
            p.handle.shutdown().await.unwrap();
        }
    })
    .await;
}

/// Copies the attached `tenant` into `tenant-seen`, upper-cased.
struct Tenant;

#[async_trait]
impl ClientFilter for Tenant {
    async fn call(&self, call: &mut ClientCall<'_>, next: ClientNext<'_>) -> Result<(), Error> {
        if let Some(tenant) = call.metadata().get("tenant") {
            let seen = tenant.to_uppercase();
            call.metadata_mut().insert("tenant-seen", seen);
        }
        next.run(call).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_filter_reads_and_sets_per_call_metadata() {
    bounded(TEST_LIMIT, async {
        let provider = provider(|b, _| b).await;
        let client = direct(provider.handle.local_addr())
            .filter(Tenant)
            .build()
            .unwrap();
        let note = NoteClient::new(client);
        let mut metadata = erpc::Metadata::new();
        metadata.insert("tenant", "blue");
        let seen = context::attach(metadata, note.read("tenant-seen".into()))
            .await
            .unwrap();
        assert_eq!(seen.as_deref(), Some("BLUE"));
        // The same handle without `attach`: nothing attached, nothing derived.
        assert_eq!(note.read("tenant-seen".into()).await.unwrap(), None);
        provider.handle.shutdown().await.unwrap();
    })
    .await;
}
