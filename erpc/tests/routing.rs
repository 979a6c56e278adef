//! Group and version routing: several implementations of one trait on one server, each
//! reached only by clients asking for its group or version; anything else is
//! `ServiceNotFound`, answered at once.

mod support;

use std::time::{Duration, Instant};

use erpc::Error;
use support::{bounded, lab_client, server, spawn, LabImpl, LabServer, TEST_LIMIT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_group_and_version_reaches_its_own_implementation() {
    bounded(TEST_LIMIT, async {
        let server = spawn(
            server()
                .add_service(LabServer::new(LabImpl::new("default")))
                .add_service(LabServer::new(LabImpl::new("blue")).with_group("blue"))
                .add_service(LabServer::new(LabImpl::new("green")).with_group("green"))
                .add_service(LabServer::new(LabImpl::new("v2")).with_version("2.0"))
                .add_service(
                    LabServer::new(LabImpl::new("blue v2"))
                        .with_group("blue")
                        .with_version("2.0"),
                ),
        )
        .await;
        let lab = lab_client(server.local_addr());
        assert_eq!(lab.whoami().await.unwrap(), "default");
        let cases = [
            ("blue", "1.0", "blue"),
            ("green", "1.0", "green"),
            ("", "2.0", "v2"),
            ("blue", "2.0", "blue v2"),
        ];
        for (group, version, expected) in cases {
            let routed = lab.clone().with_group(group).with_version(version);
            assert_eq!(
                routed.whoami().await.unwrap(),
                expected,
                "{group}/{version}"
            );
        }

        for (group, version) in [("red", "1.0"), ("green", "2.0"), ("", "3.0")] {
            let started = Instant::now();
            let error = lab
                .clone()
                .with_group(group)
                .with_version(version)
                .whoami()
                .await
                .unwrap_err();
            assert!(
                matches!(&error, Error::ServiceNotFound { service } if service.contains(version)),
                "{group}/{version}: {error:?}"
            );
            assert!(started.elapsed() < Duration::from_secs(1));
        }
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_service_key_twice_is_a_configuration_error() {
    let built = server()
        .add_service(LabServer::new(LabImpl::new("a")).with_group("g"))
        .add_service(LabServer::new(LabImpl::new("b")).with_group("g"))
        .build()
        .await;
    assert!(matches!(built, Err(Error::Config(_))), "{built:?}");
}
