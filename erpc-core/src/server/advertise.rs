//! The address consumers should use to reach this server.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// `bound` itself when it names a concrete IP; for a wildcard bind (`0.0.0.0`), the
/// first non-loopback address this host's name resolves to (what peers on a container
/// network reach), else loopback.
pub(crate) async fn advertised_addr(bound: SocketAddr) -> String {
    if !bound.ip().is_unspecified() {
        return bound.to_string();
    }
    let port = bound.port();
    let ip = host_ip(port)
        .await
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    SocketAddr::new(ip, port).to_string()
}

async fn host_ip(port: u16) -> Option<IpAddr> {
    let name = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())?;
    let name = name.trim().to_string();
    if name.is_empty() {
        return None;
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
        .await
        .ok()?
        .collect();
    addrs
        .into_iter()
        .map(|a| a.ip())
        .find(|ip| ip.is_ipv4() && !ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concrete_bind_is_advertised_as_is() {
        let bound: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        assert_eq!(advertised_addr(bound).await, "127.0.0.1:9000");
        let wildcard: SocketAddr = "0.0.0.0:9001".parse().unwrap();
        assert!(advertised_addr(wildcard).await.ends_with(":9001"));
    }
}
