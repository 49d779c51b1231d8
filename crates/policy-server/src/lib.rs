//! # policy-server: who may do what in which room
//!
//! The conference policy server of RFC 4353's model, with a CCMP-style
//! (RFC 6503) control API over gRPC (`proto/confab/v1/policy.proto`). This
//! first part holds rooms, their policy and API tokens in a durable SQLite
//! store ([`store::Store`]) and serves them with bearer-token
//! authorization, gRPC health and server reflection, and request-size and
//! concurrency limits. The focus consulting it, participants, floor control
//! and the live event stream come next.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod live;
pub mod service;
pub mod store;

/// Generated protobuf and gRPC code.
#[allow(missing_docs, clippy::all)]
pub mod pb {
    tonic::include_proto!("confab.v1");
    /// The encoded descriptor set, for server reflection.
    pub const DESCRIPTOR: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/confab_descriptor.bin"));
}

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::TcpListener;

/// Where and how the policy server runs.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// gRPC address (127.0.0.1:50051 by default).
    pub listen: SocketAddr,
    /// Directory of the database and the first admin token.
    pub data_dir: PathBuf,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 50051).into(),
            data_dir: PathBuf::from("confab-data"),
        }
    }
}

/// A running policy server.
pub struct PolicyServer {
    /// Where gRPC listens.
    pub addr: SocketAddr,
    /// The first admin token, when this start created it.
    pub admin_token: Option<String>,
    task: tokio::task::JoinHandle<()>,
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
        let store = store::Store::open(&config.data_dir.join("policy.sqlite")).await?;
        let token_file = config.data_dir.join("admin.token");
        let admin_token = store.bootstrap_admin(&token_file).await?;
        if admin_token.is_some() {
            tracing::warn!(file = %token_file.display(), "first start: an admin token was written (mode 0600)");
        }
        if let Some(tx) = &changes {
            let mut after = String::new();
            loop {
                let page = store.rooms(&after, 500).await?;
                let Some(last) = page.last() else { break };
                after = last.name.clone();
                for r in page {
                    let _ = tx.send(service::PolicyChange::Upsert(r));
                }
            }
        }
        let listener = TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let (health_reporter, health) = tonic_health::server::health_reporter();
        health_reporter.set_serving::<pb::conference_control_server::ConferenceControlServer<service::ConferenceService>>().await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(pb::DESCRIPTOR)
            .build_v1()?;
        let svc = pb::conference_control_server::ConferenceControlServer::new(
            service::ConferenceService::new(store, changes, live),
        )
        .max_decoding_message_size(64 * 1024);
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let task = tokio::spawn(async move {
            let r = tonic::transport::Server::builder()
                .concurrency_limit_per_connection(64)
                .add_service(health)
                .add_service(reflection)
                .add_service(svc)
                .serve_with_incoming(incoming)
                .await;
            if let Err(e) = r {
                tracing::error!(error = %e, "gRPC server stopped");
            }
        });
        tracing::info!(%addr, "policy server listening for gRPC");
        Ok(Self {
            addr,
            admin_token,
            task,
        })
    }

    /// Stops serving.
    pub fn stop(self) {
        self.task.abort();
    }
}
