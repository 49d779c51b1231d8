//! # test-support: what confab's test trees share
//!
//! Finding a third-party peer (a tool from Debian, a Python module from
//! PyPI) or saying SKIPPED, with `CONFAB_INTEROP=1` (set by `.ci/run`)
//! turning a missing one into a failure; free loopback ports; a gRPC
//! request with a bearer token; a throwaway PostgreSQL server. A dev-dependency only.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod postgres;

use std::net::UdpSocket;
use std::process::Command;

/// Without the peer: a failure under `CONFAB_INTEROP=1`, else SKIPPED.
fn missing(what: &str, install: &str) {
    if std::env::var("CONFAB_INTEROP").as_deref() == Ok("1") {
        panic!("{what} is required (CONFAB_INTEROP=1) but not installed");
    }
    eprintln!("SKIPPED: {what} is not installed ({install}); CI runs this test");
}

/// True when the third-party tool `name` (Debian package `package`) is
/// installed. Without it a test says SKIPPED and passes, unless
/// `CONFAB_INTEROP=1`, which makes it a failure.
pub fn peer_tool(name: &str, package: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        missing(name, &format!("apt-get install {package}"));
    }
    found
}

/// True when `python3` can import `module` (installed with `pip install
/// {packages}`); SKIPPED or a failure like [`peer_tool`] otherwise.
pub fn python_module(module: &str, packages: &str) -> bool {
    let found = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        missing(module, &format!("pip install {packages}"));
    }
    found
}

/// A port free for both UDP and TCP on 127.0.0.1.
pub fn free_port() -> u16 {
    loop {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = udp.local_addr().expect("a bound address").port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A base port `p` such that `p..p+len` and `p+1000..p+1000+len` are free
/// for UDP and TCP on 127.0.0.1, for peers that open several ports around
/// the one they are given (baresip: SIP, its TLS beside it, RTP ranges,
/// its console 1000 above). Taken below the ephemeral range, so that
/// sockets other processes open meanwhile do not land in it; each call in
/// a process starts past the block the last one returned, so that tests
/// running at once in it never get the same block.
pub fn free_span(len: u16) -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let free = |port: u16| {
        UdpSocket::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
    };
    let step = len.div_ceil(100).max(1) * 100;
    // Test binaries running at once start in different places.
    let _ = NEXT.compare_exchange(
        0,
        11000 + (std::process::id() % 60) as u16 * 100,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    loop {
        let base = NEXT.fetch_add(step, Ordering::SeqCst);
        if base + len > 17900 {
            NEXT.store(11000, Ordering::SeqCst);
            continue;
        }
        if (base..base + len)
            .chain(base + 1000..base + 1000 + len)
            .all(free)
        {
            return base;
        }
    }
}

/// A gRPC request carrying `authorization: Bearer <token>`.
pub fn auth<T>(msg: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        tonic::metadata::MetadataValue::try_from(format!("Bearer {token}"))
            .expect("a token is header text"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_handed_out_in_one_process_do_not_overlap() {
        let (a, b) = (free_span(40), free_span(40));
        assert!(a.abs_diff(b) >= 40, "{a} and {b}");
    }

    #[test]
    fn the_token_goes_in_the_authorization_header() {
        let r = auth((), "abc");
        assert_eq!(r.metadata().get("authorization").unwrap(), "Bearer abc");
    }
}
