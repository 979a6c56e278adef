//! One condition, one error: a request or response over a frame limit is
//! `Error::FrameTooLarge { size, limit, direction }`, wherever it was refused.

mod support;

use erpc::{Error, FrameDirection};
use support::{
    bounded, direct, server, spawn, LabClient, LabImpl, LabServer, Payload, Probe, TEST_LIMIT,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_and_responses_are_one_typed_error() {
    bounded(TEST_LIMIT, async {
        let lab = LabImpl::new("lab");
        let probe = lab.probe();
        let provider = spawn(
            server()
                .add_service(LabServer::new(lab))
                .max_frame_bytes(64 * 1024),
        )
        .await;
        let addr = provider.local_addr();

        // Over the provider's limit, within the client's: refused by the provider unread.
        let client = LabClient::new(direct(addr).build().unwrap());
        let err = client
            .echo(Payload::with_data(100 * 1024))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::FrameTooLarge { size, limit: 65_536, direction: FrameDirection::Request }
                    if size > 100 * 1024
            ),
            "{err:?}"
        );

        // Over the client's own limit: refused before a byte is sent.
        let small = LabClient::new(direct(addr).max_frame_bytes(16 * 1024).build().unwrap());
        let err = small.echo(Payload::with_data(32 * 1024)).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::FrameTooLarge {
                    limit: 16_384,
                    direction: FrameDirection::Request,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(Probe::get(&probe.echoes), 0, "no oversized request ran");

        // A response over the client's limit: the request runs, the answer is refused.
        let reply_limited = LabClient::new(
            direct(addr)
                .max_frame_bytes(48 * 1024)
                .compression(erpc::CompressionPolicy {
                    algorithm: erpc::Compression::Zstd,
                    threshold: 0,
                })
                .build()
                .unwrap(),
        );
        let err = reply_limited
            .echo(Payload::with_data(40 * 1024))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::FrameTooLarge {
                    limit: 49_152,
                    direction: FrameDirection::Response,
                    ..
                }
            ),
            "{err:?}"
        );
        assert_eq!(Probe::get(&probe.echoes), 1);
        assert_eq!(client.whoami().await.unwrap(), "lab");
        provider.shutdown().await.unwrap();
    })
    .await;
}
