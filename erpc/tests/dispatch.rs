//! Where handlers run: by default a call's first poll runs on its connection's reader
//! (no task per call) once its method's first polls are known to be short; a new
//! method's first call, and a method whose first polls run long, are spawned instead;
//! `Dispatch::Spawn` makes every call its own task.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use erpc::filter::{ServerCall, ServerFilter, ServerNext};
use erpc::{async_trait, Dispatch, Error, Reply, ServerBuilder};
use support::{bounded, direct, server, spawn, TEST_LIMIT};

/// A service whose handlers say which task ran them, or hold their thread.
#[erpc::service]
pub trait Work {
    /// The id of the tokio task the handler runs on.
    async fn task_id(&self) -> String;
    /// Blocks its thread for `ms` (CPU-heavy work before any wait), then returns it.
    async fn burn(&self, ms: u64) -> u64;
    /// Blocks its thread for `ms`, or until the test releases it when `ms` is 0 (a minute
    /// at most), then returns `ms`.
    async fn hold(&self, ms: u64) -> u64;
    /// Returns at once.
    async fn quick(&self) -> u32;
}

#[derive(Clone)]
struct WorkImpl {
    burning: Arc<tokio::sync::watch::Sender<bool>>,
    burns_done: Arc<AtomicUsize>,
    released: Arc<AtomicBool>,
}

impl Default for WorkImpl {
    fn default() -> Self {
        Self {
            burning: Arc::new(tokio::sync::watch::Sender::new(false)),
            burns_done: Arc::default(),
            released: Arc::default(),
        }
    }
}

impl Work for WorkImpl {
    async fn task_id(&self) -> String {
        tokio::task::try_id().map_or_else(|| "none".into(), |id| id.to_string())
    }

    async fn burn(&self, ms: u64) -> u64 {
        self.burning.send_replace(true);
        std::thread::sleep(Duration::from_millis(ms));
        self.burning.send_replace(false);
        self.burns_done.fetch_add(1, Ordering::SeqCst);
        ms
    }

    async fn hold(&self, ms: u64) -> u64 {
        if ms > 0 {
            std::thread::sleep(Duration::from_millis(ms));
            return ms;
        }
        self.burning.send_replace(true);
        let give_up = Instant::now() + Duration::from_secs(60);
        while !self.released.load(Ordering::SeqCst) && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(1));
        }
        self.burning.send_replace(false);
        ms
    }

    async fn quick(&self) -> u32 {
        7
    }
}

/// The task ids of `calls` calls made one after another on one connection.
async fn task_ids(builder: ServerBuilder, calls: usize) -> Vec<String> {
    let server = spawn(builder.add_service(WorkServer::new(WorkImpl::default()))).await;
    let work = WorkClient::new(direct(server.local_addr()).build().unwrap());
    let mut ids = Vec::new();
    for _ in 0..calls {
        ids.push(work.task_id().await.unwrap());
    }
    server.shutdown().await.unwrap();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_quick_calls_run_on_the_connection_reader_and_spawn_gives_each_its_task() {
    bounded(TEST_LIMIT, async {
        let adaptive = task_ids(server(), 5).await;
        // The method's first call is its own task: its first poll is timed there.
        assert_ne!(adaptive[0], adaptive[1], "{adaptive:?}");
        assert!(
            adaptive[1..].iter().all(|id| *id == adaptive[1]),
            "one task (the reader) ran every later call: {adaptive:?}"
        );

        let spawned = task_ids(server().dispatch(Dispatch::Spawn), 5).await;
        let distinct: std::collections::HashSet<_> = spawned.iter().collect();
        assert_eq!(distinct.len(), 5, "a task per call: {spawned:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_method_whose_first_poll_ran_long_no_longer_holds_up_its_connection() {
    bounded(TEST_LIMIT, async {
        let service = WorkImpl::default();
        let server = spawn(server().add_service(WorkServer::new(service.clone()))).await;
        let work = WorkClient::new(direct(server.local_addr()).build().unwrap())
            .with_timeout(Duration::from_secs(20));

        // Its first call (its own task) takes 200 ms: far over the limit.
        assert_eq!(work.burn(200).await.unwrap(), 200);

        // The next one is its own task: while it burns, the connection still serves.
        let long = tokio::spawn({
            let work = work.clone();
            async move { work.burn(3_000).await }
        });
        let mut burning = service.burning.subscribe();
        burning.wait_for(|on| *on).await.unwrap();
        assert_eq!(work.quick().await.unwrap(), 7);
        assert_eq!(
            service.burns_done.load(Ordering::SeqCst),
            1,
            "the quick call was answered while the long one still ran"
        );
        assert_eq!(long.await.unwrap().unwrap(), 3_000);
        server.shutdown().await.unwrap();
    })
    .await;
}

/// Starts a `hold(0)` call and, while it holds its thread, makes a quick call on the
/// same connection: it must be answered before the held call is released.
async fn quick_is_served_while_held(service: &WorkImpl, work: &WorkClient) {
    service.released.store(false, Ordering::SeqCst);
    service.burning.send_replace(false);
    let held = tokio::spawn({
        let work = work.clone();
        async move { work.hold(0).await }
    });
    service
        .burning
        .subscribe()
        .wait_for(|on| *on)
        .await
        .unwrap();
    let quick = tokio::time::timeout(Duration::from_secs(10), work.quick()).await;
    service.released.store(true, Ordering::SeqCst);
    assert!(
        matches!(quick, Ok(Ok(7))),
        "the quick call was answered while `hold` held its thread: {quick:?}"
    );
    assert_eq!(held.await.unwrap().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn a_cpu_heavy_method_holds_up_its_connection_neither_on_its_first_call_nor_later() {
    bounded(Duration::from_secs(60), async {
        let service = WorkImpl::default();
        let server = spawn(server().add_service(WorkServer::new(service.clone()))).await;
        let work = WorkClient::new(direct(server.local_addr()).build().unwrap())
            .with_timeout(Duration::from_secs(30));
        assert_eq!(work.quick().await.unwrap(), 7);

        // The method's very first call: nothing is known of it yet.
        quick_is_served_while_held(&service, &work).await;
        // 256 more long calls (1 ms each): the reader once tried a long method again
        // after that many, so the next call held the connection.
        for _ in 0..256 {
            assert_eq!(work.hold(1).await.unwrap(), 1);
        }
        quick_is_served_while_held(&service, &work).await;
        server.shutdown().await.unwrap();
    })
    .await;
}

/// Panics in the filter chain (not in the handler, whose panics are caught there): on
/// the reader's poll (`panic: now`) or in the call's own task (`panic: later`).
struct PanicWhenAsked;

#[async_trait]
impl ServerFilter for PanicWhenAsked {
    async fn call(&self, call: &mut ServerCall, next: ServerNext<'_>) -> Result<Reply, Error> {
        match call.metadata().get("panic") {
            Some("now") => panic!("filter bug"),
            Some(_) => {
                // Pending first: the call goes on as its own task, where it panics.
                tokio::task::yield_now().await;
                panic!("filter bug, later");
            }
            None => next.run(call).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filter_that_panics_gets_its_caller_an_answer_and_the_connection_serves_on() {
    bounded(TEST_LIMIT, async {
        let server = spawn(
            server()
                .filter(PanicWhenAsked)
                .add_service(WorkServer::new(WorkImpl::default())),
        )
        .await;
        let client = direct(server.local_addr()).retries(0).build().unwrap();
        let work = WorkClient::new(client);
        // A first call that does not panic: the method is known to be short, so the
        // next calls' first polls run on the reader.
        assert_eq!(work.quick().await.unwrap(), 7);

        for when in ["now", "later"] {
            let panicking = work
                .clone()
                .with_metadata("panic", when)
                .with_timeout(Duration::from_secs(20));
            match panicking.quick().await {
                Err(Error::HandlerPanicked(message)) => {
                    assert!(message.contains("filter bug"), "{message}")
                }
                other => panic!("panic {when}: expected HandlerPanicked, got {other:?}"),
            }
        }
        // Same connection, still served.
        assert_eq!(work.quick().await.unwrap(), 7);
        server.shutdown().await.unwrap();
    })
    .await;
}
