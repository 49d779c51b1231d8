//! confab's conference control API (`proto/confab/v1/policy.proto`): the
//! messages and the gRPC client and server code generated from it, and the
//! encoded descriptor set for server reflection. The policy server serves
//! it; confabctl and other clients need only this crate.
#![forbid(unsafe_code)]
#![allow(missing_docs, clippy::all)]

tonic::include_proto!("confab.v1");

/// The encoded descriptor set, for server reflection.
pub const DESCRIPTOR: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/confab_descriptor.bin"));
