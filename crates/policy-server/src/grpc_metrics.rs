//! gRPC requests counted by method and status, for the metrics endpoint: a
//! tower layer around the whole server. A unary call that fails carries
//! its status in the response headers (trailers-only); one that succeeds
//! has none there, and is counted OK.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

/// Most (method, status) pairs kept; beyond, new methods count as "other"
/// (method names come from the network).
const MAX_SERIES: usize = 512;

/// Counts of gRPC requests by (method path, status name).
#[derive(Debug, Clone, Default)]
pub struct GrpcMetrics(Arc<Mutex<BTreeMap<(String, &'static str), u64>>>);

impl GrpcMetrics {
    fn count(&self, path: &str, status: &'static str) {
        let Ok(mut m) = self.0.lock() else { return };
        let known = path.starts_with("/confab.") || path.starts_with("/grpc.");
        let key = (path.to_owned(), status);
        let key = if known && (m.len() < MAX_SERIES || m.contains_key(&key)) {
            key
        } else {
            ("other".to_owned(), status)
        };
        *m.entry(key).or_default() += 1;
    }

    /// Every (method, status, count), in order.
    pub fn snapshot(&self) -> Vec<(String, &'static str, u64)> {
        self.0
            .lock()
            .map(|m| m.iter().map(|((p, s), n)| (p.clone(), *s, *n)).collect())
            .unwrap_or_default()
    }
}

/// The status name of a response's `grpc-status` header (OK when absent).
fn status_of(headers: &http::HeaderMap) -> &'static str {
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from)
        .unwrap_or(tonic::Code::Ok);
    match code {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "CANCELLED",
        tonic::Code::Unknown => "UNKNOWN",
        tonic::Code::InvalidArgument => "INVALID_ARGUMENT",
        tonic::Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        tonic::Code::NotFound => "NOT_FOUND",
        tonic::Code::AlreadyExists => "ALREADY_EXISTS",
        tonic::Code::PermissionDenied => "PERMISSION_DENIED",
        tonic::Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        tonic::Code::FailedPrecondition => "FAILED_PRECONDITION",
        tonic::Code::Aborted => "ABORTED",
        tonic::Code::OutOfRange => "OUT_OF_RANGE",
        tonic::Code::Unimplemented => "UNIMPLEMENTED",
        tonic::Code::Internal => "INTERNAL",
        tonic::Code::Unavailable => "UNAVAILABLE",
        tonic::Code::DataLoss => "DATA_LOSS",
        tonic::Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

impl<S> tower::Layer<S> for GrpcMetrics {
    type Service = Counted<S>;
    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            metrics: self.clone(),
        }
    }
}

/// A service whose requests are counted.
#[derive(Debug, Clone)]
pub struct Counted<S> {
    inner: S,
    metrics: GrpcMetrics,
}

impl<S, B, R> tower::Service<http::Request<B>> for Counted<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let path = req.uri().path().to_owned();
        let metrics = self.metrics.clone();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            match &res {
                Ok(r) => metrics.count(&path, status_of(r.headers())),
                Err(_) => metrics.count(&path, "UNAVAILABLE"),
            }
            res
        })
    }
}
