//! # policy-server: who may do what in which room
//!
//! The conference policy server of RFC 4353's model, with a CCMP-style
//! (RFC 6503) control API over gRPC (`proto/confab/v1/policy.proto`). This
//! holds rooms, blueprints, their policy and API tokens in a durable
//! SQLite store ([`store::Store`]) and serves them with bearer-token
//! authorization, gRPC health and server reflection, TLS when configured,
//! and request-size, concurrency and per-token rate limits. Live calls
//! (participants, floor, dial-out, the event stream) are reached through
//! the [`live::Live`] trait that the binary implements over the focus.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod convert;
pub mod grpc_metrics;
pub mod live;
pub mod principal_cache;
pub mod rate_limit;
pub mod service;
pub mod store;

/// The generated protobuf and gRPC code (the `confab-proto` crate).
pub use confab_proto as pb;

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::TcpListener;

/// Where and how the policy server runs.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// gRPC address (127.0.0.1:50051 by default).
    pub listen: SocketAddr,
    /// Directory of the first admin token, and of the SQLite database
    /// when there is no `database_url`.
    pub data_dir: PathBuf,
    /// `postgres://…` (or `sqlite://…`): the store to use instead of the
    /// data directory's SQLite file. Nodes given one PostgreSQL database
    /// share rooms, PINs, users and tokens.
    pub database_url: Option<String>,
    /// PEM certificate chain and key: serve gRPC over TLS.
    pub tls: Option<TlsFiles>,
    /// Requests per second each token may make, sustained (twice that at once).
    pub rate_per_token: f64,
}

/// Where the TLS certificate and key are.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 50051).into(),
            data_dir: PathBuf::from("confab-data"),
            database_url: None,
            tls: None,
            rate_per_token: 1000.0,
        }
    }
}

/// A running policy server.
pub struct PolicyServer {
    /// Where gRPC listens.
    pub addr: SocketAddr,
    /// The first admin token, when this start created it.
    pub admin_token: Option<String>,
    /// What happens in rooms, as `WatchConference` streams it; whoever runs
    /// the focus sends its room events here.
    pub events: tokio::sync::broadcast::Sender<pb::ConferenceEvent>,
    /// The store, for what the focus keeps durably besides policy (the
    /// registrar's bindings).
    pub store: store::Store,
    changes: Option<tokio::sync::mpsc::UnboundedSender<service::PolicyChange>>,
    limiter: std::sync::Arc<rate_limit::RateLimiter>,
    /// gRPC requests by method and status.
    pub grpc_metrics: grpc_metrics::GrpcMetrics,
    drain: std::sync::Arc<tokio::sync::Notify>,
    health: tonic_health::server::HealthReporter,
    task: tokio::task::JoinHandle<()>,
    /// Brings the focus up to date with other nodes' changes (PostgreSQL).
    follower: Option<tokio::task::JoinHandle<()>>,
}

type Changes = tokio::sync::mpsc::UnboundedSender<service::PolicyChange>;

/// Tells the focus every room and SIP user in the store.
async fn send_everything(store: &store::Store, tx: &Changes) -> Result<(), store::StoreError> {
    let mut after = String::new();
    loop {
        let page = store.rooms(&after, 500).await?;
        let Some(last) = page.last() else { break };
        after = last.name.clone();
        for r in page {
            let _ = tx.send(service::PolicyChange::Upsert(r));
        }
    }
    for u in store.users().await? {
        send_user(tx, u);
    }
    Ok(())
}

fn send_user(tx: &Changes, u: store::UserRow) {
    if u.realm == service::SIP_REALM {
        let _ = tx.send(service::PolicyChange::User(u.name, u.credentials));
    } else {
        tracing::warn!(user = %u.name, realm = %u.realm, "user's credentials are for another realm: set the password again");
    }
}

/// Applies what other nodes sharing the store change: a room or user is
/// read again and sent to the focus (or its deletion is), a revoked token
/// leaves the cache. After a lost connection everything is sent again, as
/// announcements may have been missed (a room deleted meanwhile stays
/// until the next start).
async fn follow_other_nodes(
    mut announcements: store::ChangeListener,
    store: store::Store,
    changes: Option<Changes>,
    principals: std::sync::Arc<principal_cache::PrincipalCache>,
) {
    use store::{Changed, Heard, StoreError};
    loop {
        let heard = match announcements.next().await {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(error = %e, "lost the store's change announcements; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Heard::Changed(Changed::Token(id)) = &heard {
            principals.forget(id);
            continue;
        }
        let Some(tx) = &changes else { continue };
        let r = match heard {
            Heard::Missed => {
                tracing::warn!("reconnected to the store: reloading rooms and users");
                send_everything(&store, tx).await
            }
            Heard::Changed(Changed::Token(_)) => Ok(()),
            Heard::Changed(Changed::Room(name)) => match store.room(&name).await {
                Ok(room) => {
                    let _ = tx.send(service::PolicyChange::Upsert(room));
                    Ok(())
                }
                Err(StoreError::NotFound) => {
                    let _ = tx.send(service::PolicyChange::Delete(name));
                    Ok(())
                }
                Err(e) => Err(e),
            },
            Heard::Changed(Changed::User(name)) => match store.user(&name).await {
                Ok(u) => {
                    send_user(tx, u);
                    Ok(())
                }
                Err(StoreError::NotFound) => {
                    let _ = tx.send(service::PolicyChange::UserRemoved(name));
                    Ok(())
                }
                Err(e) => Err(e),
            },
        };
        if let Err(e) = r {
            tracing::warn!(error = %e, "could not read another node's change");
        }
    }
}

impl PolicyServer {
    /// Opens the store, makes the first admin token if there is none, and
    /// serves. `changes` hears every room at start, then every change.
    pub async fn start(
        config: PolicyConfig,
        changes: Option<tokio::sync::mpsc::UnboundedSender<service::PolicyChange>>,
        live: Option<std::sync::Arc<dyn live::Live>>,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        std::fs::create_dir_all(&config.data_dir)?;
        let store = match &config.database_url {
            Some(url) => store::Store::connect(url).await?,
            None => store::Store::open(&config.data_dir.join("policy.sqlite")).await?,
        };
        let token_file = config.data_dir.join("admin.token");
        let admin_token = store.bootstrap_admin(&token_file).await?;
        if admin_token.is_some() {
            tracing::warn!(file = %token_file.display(), "first start: an admin token was written (mode 0600)");
        }
        let principals = std::sync::Arc::new(principal_cache::PrincipalCache::default());
        // Listening starts before the first load, so that no change made
        // by another node in between is missed.
        let announcements = store.listen().await?;
        if let Some(tx) = &changes {
            send_everything(&store, tx).await?;
        }
        let follower = announcements.map(|l| {
            tokio::spawn(follow_other_nodes(
                l,
                store.clone(),
                changes.clone(),
                principals.clone(),
            ))
        });
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let (health_reporter, health) = tonic_health::server::health_reporter();
        health_reporter.set_serving::<pb::conference_control_server::ConferenceControlServer<service::ConferenceService>>().await;
        // Reflection describes our API and the health service, in both
        // versions: grpcurl's newer releases ask v1; older grpcurl, grpcui,
        // Postman and evans ask only v1alpha.
        let reflection_builder = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(pb::DESCRIPTOR)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(
                    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
                )
                .include_reflection_service(false)
        };
        let reflection = reflection_builder().build_v1()?;
        let reflection_v1alpha = reflection_builder().build_v1alpha()?;
        let (events, _) = tokio::sync::broadcast::channel(service::WATCH_BACKLOG);
        let drain = std::sync::Arc::new(tokio::sync::Notify::new());
        let limiter = std::sync::Arc::new(rate_limit::RateLimiter::new(
            config.rate_per_token,
            config.rate_per_token * 2.0,
        ));
        let svc = pb::conference_control_server::ConferenceControlServer::new(
            service::ConferenceService::new(
                store.clone(),
                changes.clone(),
                live,
                events.clone(),
                limiter.clone(),
                drain.clone(),
                principals,
            ),
        )
        .max_decoding_message_size(64 * 1024);
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = &config.tls {
            let cert = std::fs::read(&tls.cert)
                .map_err(|e| format!("TLS certificate {}: {e}", tls.cert.display()))?;
            let key = std::fs::read(&tls.key)
                .map_err(|e| format!("TLS key {}: {e}", tls.key.display()))?;
            builder = builder.tls_config(
                tonic::transport::ServerTlsConfig::new()
                    .identity(tonic::transport::Identity::from_pem(cert, key)),
            )?;
        }
        let grpc_metrics = grpc_metrics::GrpcMetrics::default();
        let counted = grpc_metrics.clone();
        let task = tokio::spawn(async move {
            let r = builder
                .concurrency_limit_per_connection(64)
                .layer(counted)
                .add_service(health)
                .add_service(reflection)
                .add_service(reflection_v1alpha)
                .add_service(svc)
                .serve_with_incoming(incoming)
                .await;
            if let Err(e) = r {
                tracing::error!(error = %e, "gRPC server stopped");
            }
        });
        tracing::info!(%addr, tls = config.tls.is_some(), "policy server listening for gRPC");
        Ok(Self {
            addr,
            admin_token,
            events,
            store,
            changes,
            limiter,
            grpc_metrics,
            drain,
            health: health_reporter,
            task,
            follower,
        })
    }

    /// Resolves when a `Drain` call came through the API.
    pub async fn drain_requested(&self) {
        self.drain.notified().await
    }

    /// gRPC health says NOT_SERVING from now on (the server is draining),
    /// for the whole server and for the conference service.
    pub async fn set_not_serving(&self) {
        self.health
            .set_not_serving::<pb::conference_control_server::ConferenceControlServer<service::ConferenceService>>()
            .await;
        self.health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
    }

    /// A new request rate per API token (burst twice that), from now on.
    pub fn set_rate_per_token(&self, per_sec: f64) {
        self.limiter.set_rate(per_sec, per_sec * 2.0);
    }

    /// Creates the room `name` or changes it, as `apply` says, and tells
    /// the focus: rooms declared in the server's settings file.
    pub async fn upsert_room(
        &self,
        name: &str,
        apply: impl FnOnce(&mut store::Room),
    ) -> Result<store::Room, store::StoreError> {
        let existing = match self.store.room(name).await {
            Ok(r) => Some(r),
            Err(store::StoreError::NotFound) => None,
            Err(e) => return Err(e),
        };
        let mut room = existing.clone().unwrap_or_else(|| store::Room {
            name: name.to_owned(),
            ..Default::default()
        });
        apply(&mut room);
        let room = match existing {
            Some(old) if old == room => return Ok(room),
            Some(_) => {
                self.store.update_room(&room).await?;
                room
            }
            None => self.store.create_room(&room).await?,
        };
        if let Some(tx) = &self.changes {
            let _ = tx.send(service::PolicyChange::Upsert(room.clone()));
        }
        Ok(room)
    }

    /// Deletes a room and tells the focus (its calls end).
    pub async fn delete_room(&self, name: &str) -> Result<(), store::StoreError> {
        self.store.delete_room(name).await?;
        if let Some(tx) = &self.changes {
            let _ = tx.send(service::PolicyChange::Delete(name.to_owned()));
        }
        Ok(())
    }

    /// Stops serving.
    pub fn stop(self) {
        self.task.abort();
        if let Some(f) = self.follower {
            f.abort();
        }
    }
}
