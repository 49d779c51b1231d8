//! Prometheus metrics at `GET /metrics` on `--metrics-listen`. Nothing is
//! counted here: each scrape reads what the parts already count (the
//! focus answers a snapshot over its command channel; the media server,
//! the transports and the gRPC layer keep atomics or a small map) and
//! encodes it with prometheus-client. The mixer threads only bump atomics.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use tokio::net::TcpListener;

/// What a scrape reads.
pub(crate) struct Sources {
    pub(crate) media: Arc<media_server::MediaServer>,
    pub(crate) transports: sip_transport::Transports,
    pub(crate) commands: Option<tokio::sync::mpsc::UnboundedSender<focus::FocusCommand>>,
    pub(crate) grpc: Option<policy_server::grpc_metrics::GrpcMetrics>,
}

/// One mixer thread's counters, read at the scrape.
#[derive(Debug)]
struct Mixer {
    ticks: u64,
    overruns: u64,
    buckets: Vec<u64>,
    sum_us: u64,
    participants: u64,
}

/// Everything a scrape shows, read at once.
#[derive(Debug)]
struct Snapshot {
    focus: Option<focus::FocusMetrics>,
    media: media_server::io::MediaTotals,
    jitter: (f64, u64),
    mixers: Vec<Mixer>,
    transport: [(&'static str, &'static str, u64); 10],
    grpc: Vec<(String, &'static str, u64)>,
}

impl Sources {
    async fn snapshot(&self) -> Snapshot {
        let focus = match &self.commands {
            Some(tx) => {
                let (reply, answer) = tokio::sync::oneshot::channel();
                match tx.send(focus::FocusCommand::Metrics(reply)) {
                    Ok(()) => answer.await.ok(),
                    Err(_) => None,
                }
            }
            None => None,
        };
        let mixers = self
            .media
            .mixer_stats()
            .iter()
            .map(|m| Mixer {
                ticks: m.ticks.load(Ordering::Relaxed),
                overruns: m.overruns.load(Ordering::Relaxed),
                buckets: m
                    .tick_buckets
                    .iter()
                    .map(|b| b.load(Ordering::Relaxed))
                    .collect(),
                sum_us: m.tick_us_sum.load(Ordering::Relaxed),
                participants: m.participants.load(Ordering::Relaxed),
            })
            .collect();
        let t = self.transports.stats();
        let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let transport = [
            (
                "confab_sip_messages_received",
                "Datagrams and stream frames received",
                get(&t.received),
            ),
            (
                "confab_sip_malformed",
                "Messages that did not parse",
                get(&t.malformed),
            ),
            (
                "confab_sip_rate_limited",
                "Messages dropped by the per-source rate limit (flood)",
                get(&t.rate_limited),
            ),
            (
                "confab_sip_queue_full",
                "Messages dropped because the focus's queue was full",
                get(&t.queue_full),
            ),
            (
                "confab_sip_tcp_refused",
                "TCP connections refused by the connection limits",
                get(&t.tcp_refused),
            ),
            (
                "confab_sip_tcp_idle_closed",
                "TCP connections closed for idleness",
                get(&t.tcp_idle_closed),
            ),
            (
                "confab_sip_tcp_frame_errors",
                "TCP connections closed for a framing error",
                get(&t.tcp_frame_errors),
            ),
            (
                "confab_sip_send_dropped",
                "Outgoing messages dropped (queue full, no connection)",
                get(&t.send_dropped),
            ),
            (
                "confab_sip_connect_failed",
                "Outgoing TCP or TLS connections that failed",
                get(&t.tcp_connect_failed),
            ),
            (
                "confab_sip_tls_handshake_failed",
                "Accepted TLS handshakes that failed or stalled",
                get(&t.tls_handshake_failed),
            ),
        ];
        Snapshot {
            focus,
            media: self.media.totals(),
            jitter: self.media.jitter_delay_ms(),
            mixers,
            transport,
            grpc: self.grpc.as_ref().map(|g| g.snapshot()).unwrap_or_default(),
        }
    }
}

/// One metric: its descriptor, then each sample.
fn metric<'a>(
    enc: &'a mut DescriptorEncoder<'_>,
    name: &'a str,
    help: &str,
    kind: MetricType,
) -> Result<prometheus_client::encoding::MetricEncoder<'a>, std::fmt::Error> {
    enc.encode_descriptor(name, help, None, kind)
}

fn counter(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: u64) -> std::fmt::Result {
    metric(enc, name, help, MetricType::Counter)?.encode_counter::<NoLabelSet, _, u64>(&v, None)
}

fn gauge(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: u64) -> std::fmt::Result {
    metric(enc, name, help, MetricType::Gauge)?.encode_gauge(&(v as i64))
}

/// A counter with one sample per label set.
fn counters<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    samples: impl IntoIterator<Item = (L, u64)>,
) -> std::fmt::Result {
    let mut m = metric(enc, name, help, MetricType::Counter)?;
    for (labels, v) in samples {
        m.encode_family(&labels)?
            .encode_counter::<NoLabelSet, _, u64>(&v, None)?;
    }
    Ok(())
}

impl Collector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let e = &mut enc;
        if let Some(f) = &self.focus {
            gauge(e, "confab_calls_active", "Calls open", f.calls_active)?;
            gauge(
                e,
                "confab_rooms_active",
                "Rooms with calls or subscriptions",
                f.rooms_active,
            )?;
            let mut m = metric(
                e,
                "confab_participants",
                "Calls open, by codec",
                MetricType::Gauge,
            )?;
            for (codec, n) in &f.participants_by_codec {
                m.encode_family(&[("codec", *codec)])?
                    .encode_gauge(&(*n as i64))?;
            }
            counter(
                e,
                "confab_calls_started",
                "Calls connected (dial-in and dial-out)",
                f.calls_started,
            )?;
            counters(
                e,
                "confab_calls_ended",
                "Calls ended, by cause",
                f.calls_ended.iter().map(|(c, n)| ([("cause", *c)], *n)),
            )?;
            counters(
                e,
                "confab_sip_requests_received",
                "SIP requests received, by method",
                f.requests_received
                    .iter()
                    .map(|(m, n)| ([("method", *m)], *n)),
            )?;
            counters(
                e,
                "confab_sip_requests_sent",
                "SIP requests sent (new transactions), by method",
                f.requests_sent.iter().map(|(m, n)| ([("method", *m)], *n)),
            )?;
            counters(
                e,
                "confab_sip_responses_sent",
                "SIP responses sent, by status code",
                f.responses_sent
                    .iter()
                    .map(|(c, n)| ([("code", c.to_string())], *n)),
            )?;
            counters(
                e,
                "confab_sip_responses_received",
                "SIP responses received, by status code",
                f.responses_received
                    .iter()
                    .map(|(c, n)| ([("code", c.to_string())], *n)),
            )?;
            let t = &f.transactions;
            counter(
                e,
                "confab_sip_retransmissions_sent",
                "Requests and responses sent again on a timer",
                t.retransmissions_sent,
            )?;
            counter(
                e,
                "confab_sip_retransmissions_absorbed",
                "Retransmissions received and absorbed by a transaction",
                t.retransmissions_absorbed + t.response_retransmissions_absorbed,
            )?;
            counter(
                e,
                "confab_sip_transaction_timeouts",
                "Transactions that timed out",
                t.timeouts,
            )?;
            gauge(
                e,
                "confab_sip_transactions",
                "Transactions alive",
                t.live as u64,
            )?;
            gauge(
                e,
                "confab_subscriptions_active",
                "Conference subscriptions alive",
                f.subscriptions,
            )?;
            counter(e, "confab_notifies_sent", "NOTIFYs sent", f.notifies_sent)?;
            counter(
                e,
                "confab_notifies_failed",
                "NOTIFYs refused or timed out",
                f.notifies_failed,
            )?;
            counters(
                e,
                "confab_auth",
                "Digest authentication, by outcome",
                [
                    ("passed", f.auth.passed),
                    ("challenged", f.auth.challenged),
                    ("refused", f.auth.refused),
                    ("stale", f.auth.stale),
                ]
                .map(|(o, n)| ([("outcome", o)], n)),
            )?;
            counter(
                e,
                "confab_auth_lockouts",
                "Addresses locked out after failing to authenticate",
                f.auth.lockouts,
            )?;
            counter(
                e,
                "confab_auth_ignored",
                "Messages ignored from locked-out addresses (flood)",
                f.auth.ignored,
            )?;
            counter(
                e,
                "confab_sip_malformed_answered",
                "Malformed requests answered with an error",
                f.focus.malformed_answered,
            )?;
            counter(
                e,
                "confab_sip_stray",
                "ACKs and responses that matched nothing",
                f.focus.stray_acks + f.focus.stray_responses,
            )?;
            gauge(
                e,
                "confab_registered_aors",
                "Addresses of record with a registered contact",
                f.registered,
            )?;
        }
        let mut m = metric(
            e,
            "confab_mixer_tick_seconds",
            "Time each mixer tick took (the period is 20 ms)",
            MetricType::Histogram,
        )?;
        for (i, x) in self.mixers.iter().enumerate() {
            let bounds = media_server::io::TICK_BUCKETS_US
                .iter()
                .map(|us| *us as f64 / 1e6)
                .chain([f64::MAX]); // prometheus-client writes it as +Inf
            let buckets: Vec<(f64, u64)> = bounds.zip(x.buckets.iter().copied()).collect();
            m.encode_family(&[("mixer", i.to_string())])?
                .encode_histogram::<NoLabelSet>(x.sum_us as f64 / 1e6, x.ticks, &buckets, None)?;
        }
        counters(
            e,
            "confab_mixer_overruns",
            "Mixer ticks that took longer than the period",
            self.mixers
                .iter()
                .enumerate()
                .map(|(i, x)| ([("mixer", i.to_string())], x.overruns)),
        )?;
        gauge(
            e,
            "confab_mixer_participants",
            "Participants held by the mixers",
            self.mixers.iter().map(|x| x.participants).sum(),
        )?;
        let md = &self.media;
        counter(
            e,
            "confab_rtp_packets_received",
            "RTP packets taken in by the mixers",
            md.packets_in,
        )?;
        counter(
            e,
            "confab_rtp_packets_sent",
            "RTP packets sent",
            md.packets_out,
        )?;
        counter(
            e,
            "confab_rtp_packets_lost",
            "RTP packets the jitter buffers found missing",
            md.lost,
        )?;
        counter(
            e,
            "confab_rtp_packets_late",
            "RTP packets that came after their turn",
            md.late,
        )?;
        counter(
            e,
            "confab_rtp_decode_errors",
            "RTP payloads that failed to decode",
            md.decode_errors,
        )?;
        counter(
            e,
            "confab_rtp_stray_packets",
            "Packets from a source other than the latched one",
            md.stray_packets,
        )?;
        counter(
            e,
            "confab_rtp_foreign_payload",
            "Packets of a payload type not negotiated",
            md.foreign_payload,
        )?;
        counter(
            e,
            "confab_rtp_malformed",
            "Datagrams on media ports that were not RTP or RTCP",
            md.malformed,
        )?;
        counter(
            e,
            "confab_rtp_ring_full",
            "Packets dropped because a mixer's input ring was full",
            md.ring_full,
        )?;
        counter(
            e,
            "confab_rtp_sent_by_receive_threads",
            "RTP packets the receive threads sent for a mixer with many participants",
            md.sent_by_receive_threads,
        )?;
        counter(
            e,
            "confab_rtp_send_errors",
            "RTP sends that failed",
            md.send_errors,
        )?;
        counter(
            e,
            "confab_srtp_dropped",
            "SRTP packets dropped (bad tag, replay, too short)",
            md.srtp_dropped,
        )?;
        metric(
            e,
            "confab_jitter_buffer_delay_seconds",
            "Mean delay of the participants' jitter buffers",
            MetricType::Gauge,
        )?
        .encode_gauge(&(self.jitter.0 / 1e3))?;
        metric(
            e,
            "confab_jitter_buffer_delay_max_seconds",
            "Longest delay of a participant's jitter buffer",
            MetricType::Gauge,
        )?
        .encode_gauge(&(self.jitter.1 as f64 / 1e3))?;
        for (name, help, v) in &self.transport {
            counter(e, name, help, *v)?;
        }
        let mut m = metric(
            e,
            "confab_grpc_requests",
            "gRPC requests, by method and status",
            MetricType::Counter,
        )?;
        for (method, status, n) in &self.grpc {
            m.encode_family(&[("method", method.as_str()), ("status", *status)])?
                .encode_counter::<NoLabelSet, _, u64>(n, None)?;
        }
        Ok(())
    }
}

/// The text of a scrape.
async fn render(sources: &Sources) -> String {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(sources.snapshot().await));
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &registry) {
        tracing::warn!(error = %e, "metrics not encoded");
    }
    text
}

async fn answer(
    req: hyper::Request<hyper::body::Incoming>,
    sources: Arc<Sources>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let response = |status, ctype, body: String| {
        hyper::Response::builder()
            .status(status)
            .header("content-type", ctype)
            .body(Full::new(Bytes::from(body)))
            .unwrap_or_default()
    };
    Ok(match (req.method(), req.uri().path()) {
        (&hyper::Method::GET, "/metrics") => response(
            200,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            render(&sources).await,
        ),
        _ => response(404, "text/plain", "GET /metrics\n".into()),
    })
}

/// Connections served at once; more wait in the listen backlog. A scraper
/// needs one; the rest bound what a stuck or hostile client can hold.
const MAX_CONNECTIONS: usize = 16;

/// A client has this long to send its request head.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Serves `/metrics` on `listener` until the task is dropped.
pub(crate) async fn serve(listener: TcpListener, sources: Arc<Sources>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let sources = sources.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| answer(req, sources.clone()));
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(16 * 1024)
                .serve_connection(io, svc)
                .await;
            drop(slot);
        });
    }
}
