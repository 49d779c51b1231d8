//! Shared helpers for the end-to-end tests: start the real `confab` binary
//! on free loopback ports, and a minimal SIP test client over UDP and TCP.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod api;
pub mod binary;
pub mod kamailio;
pub mod peers;
pub mod sipp;

// Each test binary uses some of these.
#[allow(unused_imports)]
pub use test_support::{auth, free_port, free_span, peer_tool};

/// A running `confab` process, killed on drop.
pub struct Server {
    child: Child,
    pub sip: SocketAddr,
    /// The gRPC control API.
    pub grpc: SocketAddr,
    /// Its data directory (database, admin.token).
    pub data_dir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Each start makes a fresh directory: leave none behind.
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

impl Server {
    /// Starts the binary with extra flags and waits until it answers OPTIONS.
    pub fn start(extra: &[&str]) -> Self {
        // A port picked free can be taken before confab binds it (another
        // test's server binds its RTP ports ahead of calls): try again.
        for _ in 0..4 {
            if let Some(s) = Self::try_start(extra) {
                return s;
            }
        }
        Self::try_start(extra).expect("confab did not start")
    }

    fn try_start(extra: &[&str]) -> Option<Self> {
        let port = free_port();
        let sip: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let grpc: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let data_dir =
            std::env::temp_dir().join(format!("confab-test-data-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&data_dir);
        let child = Command::new(env!("CARGO_BIN_EXE_confab"))
            .arg("--sip-listen")
            .arg(sip.to_string())
            .arg("--grpc-listen")
            .arg(grpc.to_string())
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--rtp-ports")
            .arg(format!(
                "{}-{}",
                20000 + (port % 200) * 100,
                20000 + (port % 200) * 100 + 98
            ))
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start confab");
        let mut server = Self {
            child,
            sip,
            grpc,
            data_dir,
        };
        let client = UdpClient::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            client.send(&options(&client, sip, "probe"), sip);
            if client.recv_timeout(Duration::from_millis(200)).is_some() {
                break;
            }
            if server.child.try_wait().ok().flatten().is_some() {
                // It exited: most likely a port was taken meanwhile.
                return None;
            }
            assert!(Instant::now() < deadline, "confab did not start");
        }
        Some(server)
    }
}

/// A UDP SIP client.
pub struct UdpClient {
    pub sock: UdpSocket,
}

impl UdpClient {
    pub fn new() -> Self {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        Self { sock }
    }
    pub fn addr(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }
    pub fn send(&self, msg: &[u8], to: SocketAddr) {
        self.sock.send_to(msg, to).unwrap();
    }
    /// The next SIP message within `t`; anything else on the socket is skipped.
    pub fn recv_timeout(&self, t: Duration) -> Option<String> {
        let deadline = Instant::now() + t;
        let mut buf = vec![0u8; 70000];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            self.sock
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            let (n, _) = self.sock.recv_from(&mut buf).ok()?;
            if let Some(m) = sip_text(&buf[..n]) {
                return Some(m);
            }
        }
    }
    /// Receives until a response with a final status arrives; returns all.
    pub fn responses_until_final(&self, t: Duration) -> Vec<String> {
        let mut out = Vec::new();
        let deadline = Instant::now() + t;
        while Instant::now() < deadline {
            if let Some(m) = self.recv_timeout(Duration::from_millis(100)) {
                let fin = status(&m) >= 200;
                out.push(m);
                if fin {
                    break;
                }
            }
        }
        out
    }
}

/// The datagram as text when it is a SIP message, None for anything else.
///
/// Test phones bind ephemeral ports, and a server from another test may
/// still be sending RTP to a port the OS has since handed out again: like a
/// real phone, a test phone ignores what is not SIP on its SIP socket.
pub fn sip_text(datagram: &[u8]) -> Option<String> {
    let line_end = datagram.windows(2).position(|w| w == b"\r\n")?;
    let first = std::str::from_utf8(&datagram[..line_end]).ok()?;
    let is_response = first.starts_with("SIP/2.0 ");
    let is_request =
        first.ends_with(" SIP/2.0") && first.bytes().next().is_some_and(|b| b.is_ascii_uppercase());
    (is_response || is_request).then(|| String::from_utf8_lossy(datagram).into_owned())
}

/// A request from `client`'s address, with a unique branch and Call-ID.
pub fn request(method: &str, from: SocketAddr, to: SocketAddr, id: &str, extra: &str) -> Vec<u8> {
    format!(
        "{method} sip:room@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bK-{id};rport\r\n\
         From: <sip:tester@{from}>;tag=t-{id}\r\nTo: <sip:room@{to}>\r\nCall-ID: {id}@test\r\n\
         CSeq: 1 {method}\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
    )
    .into_bytes()
}

pub fn options(client: &UdpClient, to: SocketAddr, id: &str) -> Vec<u8> {
    request("OPTIONS", client.addr(), to, id, "")
}

/// The status code of a response ("SIP/2.0 200 OK").
pub fn status(msg: &str) -> u16 {
    msg.strip_prefix("SIP/2.0 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A header's value (first line, case-insensitive name).
pub fn header<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.split("\r\n").find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// A TCP connection to the server.
pub struct TcpClient {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl TcpClient {
    pub fn connect(to: SocketAddr) -> Self {
        let stream = TcpStream::connect(to).unwrap();
        Self {
            stream,
            buf: Vec::new(),
        }
    }
    pub fn addr(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }
    pub fn send(&mut self, data: &[u8]) {
        self.stream.write_all(data).unwrap();
    }
    /// Reads one whole message (framed by Content-Length), or None on close/timeout.
    pub fn recv(&mut self, t: Duration) -> Option<String> {
        self.stream.set_read_timeout(Some(t)).unwrap();
        loop {
            if let Some(end) = find(&self.buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let cl: usize = header(&head, "Content-Length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + cl {
                    let msg: Vec<u8> = self.buf.drain(..end + 4 + cl).collect();
                    return Some(String::from_utf8_lossy(&msg).into_owned());
                }
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
    /// True once the server has closed the connection.
    pub fn closed_within(&mut self, t: Duration) -> bool {
        self.stream.set_read_timeout(Some(t)).unwrap();
        let mut chunk = [0u8; 64];
        matches!(self.stream.read(&mut chunk), Ok(0))
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
pub mod ua;

/// Starts the server in-process on a free loopback port, with its own RTP
/// range starting near `rtp_base`, after `tweak` adjusts the config.
pub async fn in_process(
    rtp_base: u16,
    tweak: impl FnOnce(&mut confab::ServerConfig),
) -> confab::Server {
    let mut c = confab::ServerConfig {
        tcp: false,
        ..confab::ServerConfig::default()
    };
    tweak(&mut c);
    // A port picked free can be taken before the server binds it (another
    // test's server binds its RTP ports ahead of calls): try again.
    let mut tries = 0;
    loop {
        let port = free_port();
        let mut c = confab::ServerConfig {
            sip_listen: format!("127.0.0.1:{port}").parse().unwrap(),
            ..c.clone()
        }
        .media_ip_from_sip();
        c.media.port_min = rtp_base + (port % 50) * 200;
        c.media.port_max = c.media.port_min + 198;
        match confab::Server::start(c).await {
            Ok(s) => return s,
            Err(e) if tries < 4 && addr_in_use(&e) => tries += 1,
            Err(e) => panic!("server did not start: {e:#}"),
        }
    }
}

fn addr_in_use(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::AddrInUse)
    })
}

/// Runs blocking test-UA code off the async runtime.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// A child process killed when dropped, also when a test fails.
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
