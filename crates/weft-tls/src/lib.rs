//! TLS for every weft link: rustls configurations built from explicit choices, and handshake
//! failures explained in one sentence that says what to change.
//!
//! - Trust is chosen explicitly: CA roots ([`Trust::Roots`], Fabric's model) or exact pinned
//!   certificates per node id ([`Trust::Pinned`], the replica network's model).
//! - Servers choose client authentication explicitly ([`ClientAuth`]): none, request, require;
//!   the trusted client CAs of a running server can be replaced ([`TlsServer::set_client_trust`]).
//! - Clients choose their identity explicitly ([`ClientIdentity`]).
//! - Protocol profiles ([`Profile`]): Fabric-compatible TLS 1.2+1.3, or TLS 1.3 only on
//!   secp384r1. ALPN `h2` always, as gRPC clients require.
//! - Every failed handshake becomes a [`HandshakeError`] with a [`Diagnosis`]; servers log it
//!   with the client's address.
//!
//! All cryptography is rustls with the aws-lc-rs provider.

// `HandshakeError` carries the diagnosis and the presented chain; it is built only when a
// handshake fails, next to which its size is noise.
#![allow(clippy::result_large_err)]

mod client;
pub mod coalesce;
mod diagnose;
mod error;
pub mod grpc;
mod identity;
mod info;
pub mod plaintext;
pub mod probe;
mod profile;
mod server;
mod settings;
pub mod sniff;
mod trust;
mod verify;

pub use client::{ClientConnected, ClientIdentity, Endpoint, TlsClient};
pub use diagnose::{Diagnosis, HandshakeError, Side};
pub use error::ConfigError;
pub use identity::Identity;
pub use info::HandshakeInfo;
pub use profile::Profile;
pub use server::{ClientAuth, HandshakeObserver, ServerAccepted, TlsServer};
pub use settings::Settings;
pub use trust::{PinSet, Trust};
pub use verify::PinMismatch;

/// The ALPN protocol id of HTTP/2, which gRPC requires.
pub const ALPN_H2: &[u8] = b"h2";
