//! TLS and mutual TLS (feature `tls`): calls over TLS with certificates generated per
//! test, client-certificate checks, server-name checks, plaintext/TLS mismatches in both
//! directions failing fast with a message naming the cause, the handshake kept off the
//! accept loop, and consumers picking TLS from registry metadata.
#![cfg(feature = "tls")]

mod support;

use std::time::{Duration, Instant};

use erpc::registry::{MemoryRegistry, Registry, TLS_PREFIX, TRANSPORT_KEY};
use erpc::{Client, ClientBuilder, Error, ServerHandle, TlsClientConfig, TlsServerConfig};
use futures::StreamExt;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use support::{
    bounded, direct, lab_key, server, spawn, LabClient, LabImpl, LabServer, Payload, RawPeer, Read,
    TEST_LIMIT,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A mismatch must be reported well within this, although calls may wait 10 s.
const FAST: Duration = Duration::from_secs(2);

/// A certificate authority made for one test, issuing server and client certificates.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate chain and its key, as PEM text.
struct Issued {
    cert: String,
    key: String,
}

impl Pki {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("CA key");
        Self {
            ca: CertifiedIssuer::self_signed(params, key).expect("CA certificate"),
        }
    }

    fn ca_pem(&self) -> String {
        self.ca.as_ref().pem()
    }

    fn issue(&self, names: &[&str], purpose: ExtendedKeyUsagePurpose) -> Issued {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).expect("leaf params");
        params.extended_key_usages = vec![purpose];
        let key = KeyPair::generate().expect("leaf key");
        let cert = params.signed_by(&key, &self.ca).expect("leaf certificate");
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1.
    fn server_config(&self) -> TlsServerConfig {
        let issued = self.issue(
            &["localhost", "127.0.0.1"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        TlsServerConfig::from_pem(issued.cert, issued.key).expect("server TLS config")
    }

    /// A client trusting this CA, without a certificate of its own.
    fn client_config(&self) -> TlsClientConfig {
        TlsClientConfig::from_ca_pem(self.ca_pem()).expect("client TLS config")
    }

    /// A client certificate issued by this CA.
    fn client_identity(&self) -> Issued {
        self.issue(&["client.test"], ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// A TLS server hosting `Lab` on a free port.
async fn tls_server(config: TlsServerConfig) -> ServerHandle {
    spawn(
        server()
            .add_service(LabServer::new(LabImpl::new("tls")))
            .tls(config),
    )
    .await
}

fn lab(builder: ClientBuilder) -> LabClient {
    LabClient::new(builder.build().expect("client builds")).with_timeout(Duration::from_secs(10))
}

/// Runs one call that must fail, and returns its error and how long it took.
async fn failing_call(lab: &LabClient) -> (Error, Duration) {
    let started = Instant::now();
    let error = lab
        .whoami()
        .await
        .expect_err("the call must fail, not succeed");
    (error, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_over_tls_succeed_and_the_wire_is_encrypted() {
    bounded(TEST_LIMIT, async {
        let pki = Pki::new("erpc test CA");
        let server = tls_server(pki.server_config()).await;
        let relay = support::Relay::start(server.local_addr()).await;
        // Through the relay the address is 127.0.0.1:<relay port>: the certificate's IP
        // name still matches.
        let lab = lab(direct(relay.addr()).tls(pki.client_config()));
        assert_eq!(lab.whoami().await.unwrap(), "tls");
        let sent = Payload::with_data(64 * 1024);
        let got = lab.echo(sent.clone()).await.unwrap();
        assert_eq!(got.id, sent.id + 1);
        assert_eq!(got.data.len(), sent.data.len());
        let calls = (0..200).map(|i| lab.divide(i * 6, 3));
        let answers = futures::future::join_all(calls).await;
        for (i, answer) in (0..200).zip(answers) {
            assert_eq!(answer.unwrap(), Ok(i * 2));
        }
        assert_eq!(
            relay.connections(),
            1,
            "every call shares one TLS connection"
        );
        // The payload's pattern would be visible in plaintext; TLS records hide it, so
        // what crossed is at least the payload (no compression configured) and the
        // server could not have read it as plaintext frames (the calls succeeded).
        assert!(relay.upstream() >= 64 * 1024, "{}", relay.upstream());
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_admits_only_clients_with_a_certificate_from_the_trusted_ca() {
    bounded(TEST_LIMIT, async {
        let pki = Pki::new("erpc test CA");
        let stranger = Pki::new("another CA");
        let config = pki
            .server_config()
            .client_ca_pem(pki.ca_pem())
            .expect("mTLS config");
        assert!(config.requires_client_certificate());
        let server = tls_server(config).await;
        let addr = server.local_addr();

        let id = pki.client_identity();
        let trusted = pki
            .client_config()
            .client_cert_pem(id.cert, id.key)
            .unwrap();
        assert_eq!(
            lab(direct(addr).tls(trusted)).whoami().await.unwrap(),
            "tls"
        );

        let (error, took) = failing_call(&lab(direct(addr).tls(pki.client_config()))).await;
        assert!(took < FAST, "took {took:?}: {error}");
        let text = error.to_string();
        assert!(text.contains("CertificateRequired"), "{text}");

        let other = stranger.client_identity();
        let untrusted = pki
            .client_config()
            .client_cert_pem(other.cert, other.key)
            .unwrap();
        let (error, took) = failing_call(&lab(direct(addr).tls(untrusted))).await;
        assert!(took < FAST, "took {took:?}: {error}");
        let text = error.to_string();
        assert!(
            text.contains("UnknownCA") || text.contains("BadCertificate"),
            "{text}"
        );
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_or_from_an_untrusted_ca_is_refused() {
    bounded(TEST_LIMIT, async {
        let pki = Pki::new("erpc test CA");
        let server = tls_server(pki.server_config()).await;
        let addr = server.local_addr();

        // The certificate names localhost: connecting as "localhost" works...
        let by_name = pki.client_config().server_name("localhost").unwrap();
        assert_eq!(
            lab(direct(addr).tls(by_name)).whoami().await.unwrap(),
            "tls"
        );
        // ...as another name it does not.
        let wrong = pki.client_config().server_name("billing.internal").unwrap();
        let (error, took) = failing_call(&lab(direct(addr).tls(wrong))).await;
        assert!(took < FAST, "took {took:?}: {error}");
        assert!(matches!(error, Error::Connect { .. }), "{error:?}");
        assert!(error.to_string().contains("not valid for name"), "{error}");

        let stranger = Pki::new("another CA").client_config();
        let (error, took) = failing_call(&lab(direct(addr).tls(stranger))).await;
        assert!(took < FAST, "took {took:?}: {error}");
        assert!(matches!(error, Error::Connect { .. }), "{error:?}");
        assert!(error.to_string().contains("UnknownIssuer"), "{error}");
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plaintext_client_on_a_tls_port_is_told_to_configure_tls() {
    bounded(TEST_LIMIT, async {
        let pki = Pki::new("erpc test CA");
        let server = tls_server(pki.server_config()).await;
        let (error, took) = failing_call(&lab(direct(server.local_addr()))).await;
        assert!(took < FAST, "took {took:?}: {error}");
        assert!(
            error.to_string().contains("only accepts TLS")
                && error.to_string().contains("ClientBuilder::tls"),
            "{error}"
        );
        // The refusal did not stop the server: TLS clients still get through.
        let lab = lab(direct(server.local_addr()).tls(pki.client_config()));
        assert_eq!(lab.whoami().await.unwrap(), "tls");
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_client_on_a_plaintext_port_is_told_the_provider_does_not_speak_tls() {
    bounded(TEST_LIMIT, async {
        let pki = Pki::new("erpc test CA");
        let server = spawn(server().add_service(LabServer::new(LabImpl::new("plain")))).await;
        let (error, took) =
            failing_call(&lab(direct(server.local_addr()).tls(pki.client_config()))).await;
        assert!(took < FAST, "took {took:?}: {error}");
        assert!(matches!(error, Error::Connect { .. }), "{error:?}");
        assert!(error.to_string().contains("not speak TLS"), "{error}");
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_stalled_handshakes_neither_block_accepting_nor_stay_open() {
    bounded(TEST_LIMIT, async {
        let pki = Pki::new("erpc test CA");
        let config = pki
            .server_config()
            .handshake_timeout(Duration::from_millis(500));
        let server = tls_server(config).await;
        let addr = server.local_addr();
        // One connection says nothing; another starts a TLS record and stops.
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut stalled = TcpStream::connect(addr).await.unwrap();
        stalled.write_all(&[0x16, 0x03, 0x01]).await.unwrap();

        let lab = lab(direct(addr).tls(pki.client_config()));
        let started = Instant::now();
        assert_eq!(lab.whoami().await.unwrap(), "tls");
        assert!(started.elapsed() < FAST, "{:?}", started.elapsed());

        // Both are closed once the handshake timeout passes.
        for socket in [&mut silent, &mut stalled] {
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut byte))
                .await
                .expect("the server closes a connection whose handshake stalls");
            assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        }
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_erpc_ping_on_a_tls_port_is_closed_without_an_answer() {
    bounded(TEST_LIMIT, async {
        let pki = Pki::new("erpc test CA");
        let server = tls_server(pki.server_config()).await;
        let mut peer = RawPeer::connect(server.local_addr()).await;
        let ping = erpc::protocol::encode_frame(
            erpc::protocol::FrameHeader::new(erpc::protocol::MessageType::Ping, 0),
            &[],
            &[],
        );
        peer.send(&ping).await;
        assert!(matches!(peer.read().await, Read::Closed));
        server.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_pick_tls_from_the_registry() {
    bounded(TEST_LIMIT, async {
        let pki = Pki::new("erpc test CA");
        let registry = MemoryRegistry::new();
        let server = spawn(
            server()
                .add_service(LabServer::new(LabImpl::new("tls")))
                .registry(registry.clone())
                .tls(pki.server_config()),
        )
        .await;
        let expected = format!("{TLS_PREFIX}{}", server.local_addr());
        let mut changes = registry.subscribe(&lab_key()).await.unwrap();
        let provider = loop {
            let change = changes.next().await.expect("registry stream");
            if let Some(provider) = change.all.into_iter().next() {
                break provider;
            }
        };
        assert_eq!(provider.addr, expected);
        assert_eq!(
            provider.metadata.get(TRANSPORT_KEY).map(String::as_str),
            Some("tls")
        );

        // A consumer with TLS configured connects to it with TLS...
        let with_tls = Client::builder()
            .registry(registry.clone())
            .tls(pki.client_config());
        assert_eq!(lab(with_tls).whoami().await.unwrap(), "tls");

        // ...one without refuses it before sending anything, saying what to configure.
        let without = Client::builder().registry(registry.clone());
        let (error, took) = failing_call(&lab(without)).await;
        assert!(took < FAST, "took {took:?}: {error}");
        assert!(matches!(error, Error::Connect { .. }), "{error:?}");
        assert!(error.to_string().contains("ClientBuilder::tls"), "{error}");
        server.shutdown().await.unwrap();
    })
    .await;
}
