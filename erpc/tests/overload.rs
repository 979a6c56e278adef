//! The provider's concurrency limit: calls beyond it are refused with `Overloaded` at
//! once (not left to time out), while the admitted ones complete normally.

mod support;

use std::time::{Duration, Instant};

use erpc::Error;
use support::{bounded, direct, server, spawn, LabClient, LabImpl, LabServer, TEST_LIMIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_the_limit_are_refused_immediately() {
    bounded(TEST_LIMIT, async {
        let server = spawn(
            server()
                .add_service(LabServer::new(LabImpl::new("lab")))
                .max_concurrency(2),
        )
        .await;
        let client = direct(server.local_addr()).retries(0).build().unwrap();
        let lab = LabClient::new(client).with_timeout(Duration::from_secs(10));
        let calls = (0..5).map(|_| {
            let lab = lab.clone();
            async move {
                let started = Instant::now();
                (lab.hold(1_000).await, started.elapsed())
            }
        });
        let outcomes = futures::future::join_all(calls).await;

        let mut overloaded = 0;
        let mut served = 0;
        for (result, elapsed) in outcomes {
            match result {
                Err(Error::Overloaded(message)) => {
                    overloaded += 1;
                    assert!(message.contains('2'), "names the limit: {message}");
                    assert!(
                        elapsed < Duration::from_millis(500),
                        "refused after {elapsed:?}"
                    );
                }
                Ok(ms) => {
                    served += 1;
                    assert_eq!(ms, 1_000);
                    assert!(elapsed >= Duration::from_millis(1_000));
                }
                Err(e) => panic!("unexpected outcome: {e:?}"),
            }
        }
        assert_eq!((served, overloaded), (2, 3));

        // Permits come back: the limit admits new calls once those finished.
        assert_eq!(lab.hold(1).await.unwrap(), 1);
        server.shutdown().await.unwrap();
    })
    .await;
}
