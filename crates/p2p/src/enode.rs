//! enode URLs: `enode://<128 hex node id>@<host>:<tcp port>[?discport=<udp port>]`.
//!
//! Spec: <https://github.com/ethereum/devp2p/blob/master/enr.md> (the enode scheme it
//! replaces is documented with go-ethereum's `ParseV4`).

use crate::P2pError;
use std::{
    fmt,
    net::{IpAddr, SocketAddr, ToSocketAddrs},
    str::FromStr,
};
use tern_ecies::{id2pk, PeerId};

/// A node's identity and address, as an enode URL names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Enode {
    /// The node id (public key without the `0x04` prefix).
    pub id: PeerId,
    /// IP address (host names are resolved when parsing).
    pub address: IpAddr,
    /// RLPx TCP port.
    pub tcp_port: u16,
    /// Discovery UDP port (equal to `tcp_port` unless `?discport=` says otherwise).
    pub udp_port: u16,
}

impl Enode {
    /// An enode for `id` at `addr`, discovery on the same port.
    pub fn new(id: PeerId, addr: SocketAddr) -> Self {
        Self { id, address: addr.ip(), tcp_port: addr.port(), udp_port: addr.port() }
    }

    /// The TCP address to dial.
    pub fn tcp_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.tcp_port)
    }
}

impl fmt::Display for Enode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "enode://{}@{}", hex::encode(self.id), self.tcp_addr())?;
        if self.udp_port != self.tcp_port {
            write!(f, "?discport={}", self.udp_port)?;
        }
        Ok(())
    }
}

impl FromStr for Enode {
    type Err = P2pError;

    fn from_str(url: &str) -> Result<Self, P2pError> {
        let err = |reason: &str| P2pError::InvalidEnode { url: url.into(), reason: reason.into() };
        let rest = url.strip_prefix("enode://").ok_or_else(|| err("must start with enode://"))?;
        let (id_hex, rest) = rest.split_once('@').ok_or_else(|| err("missing @host:port"))?;
        if id_hex.len() != 128 {
            return Err(err("node id must be 128 hex digits"));
        }
        let id_bytes = hex::decode(id_hex).map_err(|_| err("node id is not hex"))?;
        let id = PeerId::from_slice(&id_bytes);
        id2pk(&id).map_err(|_| err("node id is not a secp256k1 public key"))?;

        let (hostport, query) = match rest.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (rest, None),
        };
        let (host, port) = hostport.rsplit_once(':').ok_or_else(|| err("missing :port"))?;
        let tcp_port: u16 = port.parse().map_err(|_| err("port is not a number 0-65535"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let address = match host.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) if !host.is_empty() => (host, tcp_port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut addrs| addrs.next())
                .map(|a| a.ip())
                .ok_or_else(|| err("host is neither an IP address nor a resolvable name"))?,
            Err(_) => return Err(err("missing host")),
        };
        let udp_port = match query {
            None => tcp_port,
            Some(q) => q
                .strip_prefix("discport=")
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| err("only ?discport=<port> is allowed after the address"))?,
        };
        Ok(Self { id, address, tcp_port, udp_port })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From go-ethereum's `urlv4_test.go` (listed in shared/testvectors/rlpx-eip8.txt).
    const URL: &str = "enode://1dd9d65c4552b5eb43d5ad55a2ee3f56c6cbc1c64a5c8d659f51fcd51bace24351232b8d7821617d2b29b54b81cdefb9b3e9c37d7fd5f63270bcc9e1a6f6a439@127.0.0.1:52150?discport=22334";

    #[test]
    fn parses_and_prints() {
        let e: Enode = URL.parse().unwrap();
        assert_eq!(e.address, IpAddr::from([127, 0, 0, 1]));
        assert_eq!((e.tcp_port, e.udp_port), (52150, 22334));
        assert_eq!(e.to_string(), URL);
        let plain = URL.split('?').next().unwrap();
        let e: Enode = plain.parse().unwrap();
        assert_eq!(e.udp_port, 52150);
        assert_eq!(e.to_string(), plain);
        let v6 = plain.replace("127.0.0.1", "[::1]");
        assert_eq!(v6.parse::<Enode>().unwrap().to_string(), v6);
        let named = plain.replace("127.0.0.1", "localhost");
        assert!(named.parse::<Enode>().unwrap().address.is_loopback());
    }

    #[test]
    fn rejects_bad_urls_with_a_reason() {
        let id = &URL[8..136];
        let cases = [
            ("enode://abc@127.0.0.1:1", "128 hex"),
            (&format!("{id}@127.0.0.1:1") as &str, "enode://"),
            (&format!("enode://{id}") as &str, "@host"),
            (&format!("enode://{id}@127.0.0.1") as &str, ":port"),
            (&format!("enode://{id}@127.0.0.1:99999") as &str, "port"),
            (&format!("enode://{id}@127.0.0.1:1?foo=2") as &str, "discport"),
            (&format!("enode://{}@127.0.0.1:1", "11".repeat(64)) as &str, "public key"),
            (&format!("enode://{}@127.0.0.1:1", "zz".repeat(64)) as &str, "hex"),
        ];
        for (url, reason) in cases {
            let err = url.parse::<Enode>().unwrap_err().to_string();
            assert!(err.contains(reason), "{url}: {err}");
        }
    }
}
