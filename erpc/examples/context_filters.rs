//! The call context and filters: a provider that is itself a consumer, a shared-token
//! auth filter on both sides, and per-call metadata with `context::attach`.
//!
//! ```sh
//! cargo run -p erpc --example context_filters
//! ```

use std::time::Duration;

use erpc::context::{self, TraceParent, TRACEPARENT};
use erpc::filter::TokenAuth;
use erpc::{Client, Error, Metadata, Server};

/// Says hello, in a language looked up from another service.
#[erpc::service]
pub trait Greeter {
    /// Greets `name`.
    async fn greet(&self, name: String) -> String;
}

/// Knows greetings.
#[erpc::service]
pub trait Words {
    /// The word for hello.
    async fn hello(&self) -> String;
}

struct Dictionary;

impl Words for Dictionary {
    async fn hello(&self) -> String {
        let ctx = context::current().expect("inside a handler");
        let trace = ctx.trace().map(|t| format!("{:032x}", t.trace_id()));
        let left = ctx.remaining().unwrap_or_default();
        println!(
            "words: trace {} with at most {}s left",
            trace.as_deref().unwrap_or("none"),
            left.as_secs_f32().ceil()
        );
        match ctx.metadata().get("lang") {
            Some("fr") => "Bonjour".into(),
            _ => "Hello".into(),
        }
    }
}

struct Front {
    words: WordsClient,
}

impl Greeter for Front {
    async fn greet(&self, name: String) -> String {
        // Inherits this call's deadline and trace; passes the caller's language on.
        let ctx = context::current().expect("inside a handler");
        let mut metadata = Metadata::new();
        if let Some(lang) = ctx.metadata().get("lang") {
            metadata.insert("lang", lang);
        }
        let word = context::attach(metadata, self.words.hello()).await;
        format!("{}, {name}!", word.unwrap_or_else(|e| e.to_string()))
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let token = "example-token";
    let words = Server::builder()
        .bind("127.0.0.1:0")
        .filter(TokenAuth::new(token))
        .add_service(WordsServer::new(Dictionary))
        .build()
        .await?
        .spawn();
    let to_words = Client::builder()
        .direct([words.local_addr().to_string()])
        .filter(TokenAuth::new(token))
        .build()?;
    let front = Server::builder()
        .bind("127.0.0.1:0")
        .add_service(GreeterServer::new(Front {
            words: WordsClient::new(to_words).with_timeout(Duration::from_secs(30)),
        }))
        .build()
        .await?
        .spawn();

    let greeter = GreeterClient::new(
        Client::builder()
            .direct([front.local_addr().to_string()])
            .build()?,
    )
    .with_timeout(Duration::from_secs(5));
    let trace = TraceParent::random();
    println!("caller: trace {:032x}", trace.trace_id());
    let mut metadata = Metadata::new();
    metadata.insert(TRACEPARENT, trace.to_string());
    metadata.insert("lang", "fr");
    println!(
        "{}",
        context::attach(metadata, greeter.greet("erpc".into())).await?
    );

    // Without the token the words service refuses, and the client does not retry.
    let intruder = WordsClient::new(
        Client::builder()
            .direct([words.local_addr().to_string()])
            .build()?,
    );
    match intruder.hello().await {
        Err(Error::Unauthenticated(why)) => println!("intruder refused: {why}"),
        other => println!("intruder got {other:?}"),
    }
    front.shutdown().await?;
    words.shutdown().await?;
    Ok(())
}
