//! `#[erpc::service]` on every supported shape: the descriptor it records, the trait it
//! rewrites, and the server and client APIs it generates.

use std::future::Future;
use std::time::Duration;

use erpc::{Service, ServiceDescriptor};
use serde::{Deserialize, Serialize};

/// A struct argument.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    /// Greeting text.
    pub message: String,
}

/// An application error, returned as a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CalcError {
    /// The sum did not fit.
    Overflow,
}

/// The service, in a module so its interface name shows the module path.
pub mod api {
    use super::{CalcError, Hello};

    /// Greets and calculates.
    #[erpc::service(group = "test1", version = "2.0")]
    pub trait HelloService {
        /// Says hello back.
        ///
        /// Second paragraph of the docs.
        async fn hello(&self, hello: Hello) -> String;
        /// Adds three numbers; overflow is an application error.
        async fn add3(&self, a: i64, b: i64, c: i64) -> Result<i64, CalcError>;
        /// Liveness check, safe to retry.
        #[erpc(idempotent)]
        async fn ping(&self);
        /// A default body, with a `mut` argument.
        #[erpc(idempotent)]
        async fn echo(&self, mut text: String) -> String {
            text.push('!');
            text
        }
    }
}

/// Interface name overridden, raw identifiers, no defaults.
#[erpc::service(name = "com.example.Renamed")]
pub trait Renamed {
    /// A raw method name and a raw argument name.
    async fn r#type(&self, r#in: u8) -> u8;
}

/// No methods at all.
#[erpc::service(version = "0.1", group = "")]
pub trait Empty {}

use api::{
    HelloService, HelloServiceBlockingClient, HelloServiceClient, HelloServiceServer,
    HELLO_SERVICE_DESCRIPTOR,
};

struct Greeter;

impl HelloService for Greeter {
    async fn hello(&self, hello: Hello) -> String {
        format!("hello {}", hello.message)
    }

    async fn add3(&self, a: i64, b: i64, c: i64) -> Result<i64, CalcError> {
        a.checked_add(b)
            .and_then(|ab| ab.checked_add(c))
            .ok_or(CalcError::Overflow)
    }

    async fn ping(&self) {}
}

struct Typist;

impl Renamed for Typist {
    async fn r#type(&self, r#in: u8) -> u8 {
        r#in + 1
    }
}

struct Nothing;

impl Empty for Nothing {}

#[test]
fn descriptor_lists_interface_defaults_and_methods() {
    let d: &ServiceDescriptor = &HELLO_SERVICE_DESCRIPTOR;
    assert_eq!(d.interface, "macro_expand::api::HelloService");
    assert_eq!(d.default_group, "test1");
    assert_eq!(d.default_version, "2.0");
    let methods: Vec<_> = d
        .methods
        .iter()
        .map(|m| (m.name, m.args, m.idempotent))
        .collect();
    assert_eq!(
        methods,
        [
            ("hello", &["hello"][..], false),
            ("add3", &["a", "b", "c"][..], false),
            ("ping", &[][..], true),
            ("echo", &["text"][..], true),
        ]
    );
    assert_eq!(d.method_index("add3"), Some(1));
}

#[test]
fn name_override_and_raw_identifiers() {
    assert_eq!(RENAMED_DESCRIPTOR.interface, "com.example.Renamed");
    assert_eq!(RENAMED_DESCRIPTOR.default_group, "");
    assert_eq!(RENAMED_DESCRIPTOR.default_version, "1.0");
    assert_eq!(RENAMED_DESCRIPTOR.methods[0].name, "type");
    assert_eq!(RENAMED_DESCRIPTOR.methods[0].args, ["in"]);
}

#[test]
fn empty_service() {
    assert_eq!(EMPTY_DESCRIPTOR.interface, "macro_expand::Empty");
    assert_eq!(EMPTY_DESCRIPTOR.default_group, "");
    assert_eq!(EMPTY_DESCRIPTOR.default_version, "0.1");
    assert!(EMPTY_DESCRIPTOR.methods.is_empty());
    let server = EmptyServer::new(Nothing);
    assert_eq!(server.key().to_string(), "macro_expand::Empty:0.1");
}

#[test]
fn clients_share_the_static_descriptor() {
    assert!(std::ptr::eq(
        HelloServiceClient::descriptor(),
        &HELLO_SERVICE_DESCRIPTOR
    ));
    assert!(std::ptr::eq(
        HelloServiceBlockingClient::descriptor(),
        &HELLO_SERVICE_DESCRIPTOR
    ));
    assert!(std::ptr::eq(
        RenamedClient::descriptor(),
        &RENAMED_DESCRIPTOR
    ));
}

#[test]
fn server_serves_under_defaults_or_overrides() {
    let server = HelloServiceServer::new(Greeter);
    assert!(std::ptr::eq(server.descriptor(), &HELLO_SERVICE_DESCRIPTOR));
    assert_eq!((server.group(), server.version()), ("test1", "2.0"));
    assert_eq!(
        server.key().to_string(),
        "test1/macro_expand::api::HelloService:2.0"
    );

    let server = HelloServiceServer::from_arc(std::sync::Arc::new(Greeter))
        .with_group("blue")
        .with_version("3.1");
    assert_eq!((server.group(), server.version()), ("blue", "3.1"));
    let debug = format!("{:?}", server.clone());
    assert!(
        debug.contains("blue") && debug.contains("HelloService"),
        "{debug}"
    );
}

#[test]
fn implementations_use_plain_async_fn_and_default_bodies() {
    let greeter = Greeter;
    assert_send(greeter.hello(Hello {
        message: "x".into(),
    }));
    use futures::executor::block_on as run;
    assert_eq!(
        run(greeter.hello(Hello {
            message: "erpc".into()
        })),
        "hello erpc"
    );
    assert_eq!(run(greeter.add3(1, 2, 3)), Ok(6));
    assert_eq!(run(greeter.add3(i64::MAX, 1, 0)), Err(CalcError::Overflow));
    assert_eq!(run(greeter.echo("hi".into())), "hi!");
    assert_eq!(run(Typist.r#type(1)), 2);
}

#[test]
fn client_futures_are_send() {
    // Never run: checks the generated signatures and that every call future is `Send`.
    fn check<F, Fut>(_: F)
    where
        F: FnOnce(HelloServiceClient) -> Fut,
        Fut: Future<Output = Result<(), erpc::Error>> + Send,
    {
    }
    check(|client| async move {
        let client = client
            .with_group("g")
            .with_version("v")
            .with_timeout(Duration::from_secs(1))
            .with_metadata("trace", "1");
        let greeting: String = client
            .hello(Hello {
                message: "m".into(),
            })
            .await?;
        let sum: Result<i64, CalcError> = client.add3(1, 2, 3).await?;
        let (): () = client.ping().await?;
        let echoed: String = client.echo(greeting).await?;
        let _ = (sum, echoed);
        Ok(())
    });
}

#[test]
fn blocking_client_methods_mirror_the_async_ones() {
    fn calls(client: HelloServiceBlockingClient) -> Result<(), erpc::Error> {
        let client = client
            .with_group("g")
            .with_version("v")
            .with_timeout(Duration::from_secs(1))
            .with_metadata("trace", "1");
        let _: String = client.hello(Hello {
            message: "m".into(),
        })?;
        let _: Result<i64, CalcError> = client.add3(1, 2, 3)?;
        client.ping()?;
        Ok(())
    }
    fn raw(client: &RenamedBlockingClient) -> Result<u8, erpc::Error> {
        client.r#type(1)
    }
    let _: fn(&RenamedBlockingClient) -> Result<u8, erpc::Error> = raw;
    let _: fn(HelloServiceBlockingClient) -> Result<(), erpc::Error> = calls;
    let _: fn(erpc::BlockingClient) -> EmptyBlockingClient = EmptyBlockingClient::new;
    let _: fn(erpc::Client) -> EmptyClient = EmptyClient::new;
}

fn assert_send<T: Send>(_: T) {}
