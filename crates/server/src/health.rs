//! `poison-pill health`: is the server on this host alive? A container's
//! HEALTHCHECK runs it, since the image has no shell and no curl: one plain
//! HTTP/1.1 GET of `/health` over loopback, with std's blocking socket (no
//! runtime, no client crate for one request to ourselves).

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, bail};

/// The address to reach a server listening on `bind`: the same port on
/// loopback when it listens on every interface.
#[must_use]
pub fn target(bind: SocketAddr) -> SocketAddr {
    let ip = match bind.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bind.port())
}

/// `Ok` when the server listening on `bind` answers `GET /health` with 200
/// within `limit` (each of connecting, writing and reading).
///
/// # Errors
/// When it cannot be reached in time or answers anything else.
pub fn check(bind: SocketAddr, limit: Duration) -> anyhow::Result<()> {
    let addr = target(bind);
    let mut stream = TcpStream::connect_timeout(&addr, limit)
        .with_context(|| format!("cannot reach the server at {addr}"))?;
    stream.set_read_timeout(Some(limit))?;
    stream.set_write_timeout(Some(limit))?;
    stream
        .write_all(
            format!("GET /health HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .context("cannot send the request")?;
    // The status line is all that matters, and it comes first.
    let mut head = [0_u8; 64];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]).context("no answer")? {
            0 => break,
            n => read += n,
        }
        if head[..read].contains(&b'\n') {
            break;
        }
    }
    let status_line = String::from_utf8_lossy(&head[..read]);
    let status_line = status_line.lines().next().unwrap_or_default();
    match status_line.split(' ').nth(1) {
        Some("200") => Ok(()),
        _ => bail!("the server at {addr} answered {status_line:?}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail loudly

    use std::net::TcpListener;
    use std::thread;

    use super::*;

    /// A one-shot server answering `reply` to whatever it is sent.
    fn answering(reply: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0_u8; 256];
            let n = stream.read(&mut request).unwrap();
            assert!(String::from_utf8_lossy(&request[..n]).starts_with("GET /health HTTP/1.1\r\n"));
            stream.write_all(reply.as_bytes()).unwrap();
        });
        addr
    }

    #[test]
    fn a_200_is_healthy_anything_else_is_not() {
        let limit = Duration::from_secs(2);
        let ok = answering("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}");
        assert!(check(ok, limit).is_ok());
        let busy = answering("HTTP/1.1 503 Service Unavailable\r\n\r\n");
        let err = check(busy, limit).unwrap_err().to_string();
        assert!(err.contains("503"), "{err}");
        let silent = answering("");
        assert!(check(silent, limit).is_err());
    }

    #[test]
    fn nobody_listening_is_unhealthy() {
        let free = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = check(free, Duration::from_secs(1)).unwrap_err().to_string();
        assert!(err.contains("cannot reach"), "{err}");
    }

    #[test]
    fn every_interface_is_reached_over_loopback() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(target(any), "127.0.0.1:8080".parse().unwrap());
        let any6: SocketAddr = "[::]:8080".parse().unwrap();
        assert_eq!(target(any6), "[::1]:8080".parse().unwrap());
        let one: SocketAddr = "10.1.2.3:80".parse().unwrap();
        assert_eq!(target(one), one);
    }
}
