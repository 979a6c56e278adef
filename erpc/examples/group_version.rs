//! One interface, several implementations told apart by group and version (Dubbo's
//! triple): the consumer picks with `with_group` / `with_version`.
//!
//! ```sh
//! cargo run -p erpc --example group_version
//! ```

use std::time::Duration;

/// Prices an order.
#[erpc::service(group = "retail", version = "1.0")]
pub trait Pricing {
    /// The price in cents of `items` items.
    async fn price(&self, items: u32) -> u64;
}

/// Full price, 100 cents an item.
struct Retail;

impl Pricing for Retail {
    async fn price(&self, items: u32) -> u64 {
        u64::from(items) * 100
    }
}

/// Wholesale: 20% off, served under group "wholesale".
struct Wholesale;

impl Pricing for Wholesale {
    async fn price(&self, items: u32) -> u64 {
        u64::from(items) * 80
    }
}

/// Version 2.0 of retail pricing: 10% off from ten items.
struct RetailV2;

impl Pricing for RetailV2 {
    async fn price(&self, items: u32) -> u64 {
        let full = u64::from(items) * 100;
        if items >= 10 {
            full * 9 / 10
        } else {
            full
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), erpc::Error> {
    let handle = erpc::Server::builder()
        .bind("127.0.0.1:0")
        .add_service(PricingServer::new(Retail))
        .add_service(PricingServer::new(Wholesale).with_group("wholesale"))
        .add_service(PricingServer::new(RetailV2).with_version("2.0"))
        .build()
        .await?
        .spawn();
    let client = erpc::Client::builder()
        .direct([handle.local_addr().to_string()])
        .build()?;
    let retail = PricingClient::new(client).with_timeout(Duration::from_secs(2));
    let wholesale = retail.clone().with_group("wholesale");
    let retail_v2 = retail.clone().with_version("2.0");

    let (a, b, c) = (
        retail.price(10).await?,
        wholesale.price(10).await?,
        retail_v2.price(10).await?,
    );
    println!("10 items: retail/1.0 {a}, wholesale/1.0 {b}, retail/2.0 {c}");
    assert_eq!((a, b, c), (1000, 800, 900));
    // A triple nobody serves is a typed error, not a hang.
    let missing = retail
        .clone()
        .with_version("9.9")
        .price(1)
        .await
        .unwrap_err();
    println!("retail/9.9: {missing}");
    assert!(matches!(missing, erpc::Error::ServiceNotFound { .. }));
    handle.shutdown().await
}
