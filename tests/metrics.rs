//! Prometheus metrics: SIP requests and responses, gRPC requests by method
//! and status, and the mixer's tick histogram, read from `/metrics`, then
//! scraped by a real Prometheus (Debian's `prometheus`, started here) and
//! one value queried through its HTTP API. Without prometheus the second
//! half says SKIPPED, unless `CONFAB_INTEROP=1`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::api::{tempdir, Client};
use common::{auth, free_port, options, peer_tool, Killed, UdpClient};
use policy_server::pb;

/// The body of an HTTP/1.0 GET.
fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or(text)
}

/// A sample's value, by its name with labels as written.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_sip_and_grpc_and_prometheus_scrapes_them() {
    let dir = tempdir("metrics");
    let s = common::in_process(52000, |c| {
        c.metrics_listen = Some(([127, 0, 0, 1], 0).into());
        c.policy = Some(policy_server::PolicyConfig {
            listen: ([127, 0, 0, 1], 0).into(),
            data_dir: dir.join("data"),
            ..Default::default()
        });
    })
    .await;
    let metrics = s.metrics.expect("a metrics endpoint");
    // Three OPTIONS, and a message that is not SIP.
    let phone = UdpClient::new();
    for i in 0..3 {
        phone.send(&options(&phone, s.sip_udp, &format!("m{i}")), s.sip_udp);
        assert!(phone.recv_timeout(Duration::from_secs(2)).is_some());
    }
    phone.send(b"INVITE nonsense\r\n\r\n", s.sip_udp);
    // gRPC: one OK, one NOT_FOUND.
    let admin = std::fs::read_to_string(dir.join("data/admin.token")).unwrap();
    let admin = admin.trim();
    let mut g = Client::connect(format!("http://{}", s.policy.as_ref().unwrap().addr))
        .await
        .unwrap();
    g.list_conferences(auth(pb::ListConferencesRequest::default(), admin))
        .await
        .unwrap();
    g.get_conference(auth(
        pb::GetConferenceRequest {
            name: "nope".into(),
        },
        admin,
    ))
    .await
    .unwrap_err();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let text = tokio::task::spawn_blocking(move || get(metrics, "/metrics"))
        .await
        .unwrap();
    let has = |series: &str| sample(&text, series).unwrap_or(-1.0);
    assert_eq!(
        has("confab_sip_requests_received_total{method=\"OPTIONS\"}"),
        3.0,
        "{text}"
    );
    assert!(
        has("confab_sip_responses_sent_total{code=\"200\"}") >= 3.0,
        "{text}"
    );
    assert!(has("confab_sip_malformed_total") >= 1.0, "{text}");
    assert_eq!(
        has("confab_grpc_requests_total{method=\"/confab.v1.ConferenceControl/GetConference\",status=\"NOT_FOUND\"}"),
        1.0,
        "{text}"
    );
    assert_eq!(
        has("confab_grpc_requests_total{method=\"/confab.v1.ConferenceControl/ListConferences\",status=\"OK\"}"),
        1.0,
        "{text}"
    );
    assert!(
        has("confab_mixer_tick_seconds_count{mixer=\"0\"}") > 0.0,
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");

    // Bad input: another path, garbage, a client that never sends its
    // request (dropped after 5 s), while scrapes go on.
    let raw = move |bytes: &'static [u8]| {
        let mut s = TcpStream::connect(metrics).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(bytes).unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text
    };
    let (other, garbage, stalled, scraped) = tokio::task::spawn_blocking(move || {
        let stall = std::thread::spawn(move || {
            let started = Instant::now();
            let closed = raw(b"");
            (started.elapsed(), closed)
        });
        let other = raw(b"GET /admin HTTP/1.0\r\n\r\n");
        let garbage = raw(b"\x16\x03\x01 not http at all\r\n\r\n");
        let scraped = get(metrics, "/metrics");
        (other, garbage, stall.join().unwrap(), scraped)
    })
    .await
    .unwrap();
    assert!(other.starts_with("HTTP/1.0 404"), "{other}");
    assert!(
        garbage.starts_with("HTTP/1.1 400") || garbage.is_empty(),
        "{garbage}"
    );
    assert!(
        stalled.0 < Duration::from_secs(8),
        "a silent client is dropped: {stalled:?}"
    );
    assert!(scraped.contains("confab_calls_active"), "{scraped}");

    if peer_tool("prometheus", "prometheus") {
        let port = free_port();
        let pdir = dir.join("prometheus");
        std::fs::create_dir_all(&pdir).unwrap();
        let config = pdir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: confab\n    static_configs:\n      - targets: ['{metrics}']\n"
            ),
        )
        .unwrap();
        let mut prom = Killed(
            Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    pdir.join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start prometheus"),
        );
        let api: SocketAddr = ([127, 0, 0, 1], port).into();
        let query =
            "/api/v1/query?query=confab_sip_requests_received_total%7Bmethod%3D%22OPTIONS%22%7D";
        let deadline = Instant::now() + Duration::from_secs(30);
        let answer = tokio::task::spawn_blocking(move || loop {
            std::thread::sleep(Duration::from_millis(500));
            let body = TcpStream::connect(api)
                .map(|_| get(api, query))
                .unwrap_or_default();
            if body.contains("\"value\"") || Instant::now() > deadline {
                return body;
            }
        })
        .await
        .unwrap();
        // {"status":"success","data":{"resultType":"vector","result":[{"metric":{...},"value":[t,"3"]}]}}
        assert!(answer.contains("\"status\":\"success\""), "{answer}");
        assert!(answer.contains("\"job\":\"confab\""), "{answer}");
        assert!(
            answer.ends_with(",\"3\"]}]}}"),
            "Prometheus read 3 OPTIONS: {answer}"
        );
        eprintln!("prometheus answered: {answer}");
        prom.0.kill().ok();
    }
    s.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
