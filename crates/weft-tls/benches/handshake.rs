//! Handshake cost over an in-memory pipe: weft's diagnosed endpoints against plain
//! tokio-rustls with prebuilt configs, for server-authenticated, mutual and pinned P-384 TLS.
//!
//! `cargo bench -p weft-tls --bench handshake`. The interesting figure is the ratio
//! weft/rustls per mode: what per-connection configs, recording verifiers and the TLS 1.3
//! client-certificate confirmation cost on top of the handshake itself.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that cannot set up should stop

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::ServerName;
use tokio::runtime::Runtime;
use weft_crypto::{
    CertificateAuthority, KeyAlgorithm, LeafProfile, LeafRequest, Subject, Validity,
};
use weft_tls::{
    ClientAuth, ClientIdentity, Endpoint, Identity, PinSet, Profile, TlsClient, TlsServer, Trust,
};

struct Mode {
    name: &'static str,
    weft_server: TlsServer,
    weft_client: TlsClient,
    endpoint: Endpoint,
    raw_server: Arc<ServerConfig>,
    raw_client: Arc<ClientConfig>,
}

fn mode(name: &'static str, alg: KeyAlgorithm, mutual: bool, pinned: bool) -> Mode {
    let profile = if alg == KeyAlgorithm::EcdsaP384 {
        Profile::Tls13P384
    } else {
        Profile::Fabric
    };
    let ca = CertificateAuthority::new_root(&Subject::cn("bench-ca"), Validity::ten_years(), alg)
        .unwrap();
    let issue = |cn: &str, p| {
        ca.issue(
            &LeafRequest::new(Subject::cn(cn), p)
                .sans([cn])
                .algorithm(alg),
        )
        .unwrap()
    };
    let srv = issue("server.bench", LeafProfile::TlsServer);
    let cli = issue("client.bench", LeafProfile::TlsServer);
    let (srv_der, srv_key) = (srv.der.clone(), srv.key.to_rustls());
    let (cli_der, cli_key) = (cli.der.clone(), cli.key.to_rustls());
    let provider = profile.provider();

    let mut roots = RootCertStore::empty();
    roots.add(ca.certificate().clone()).unwrap();
    let roots = Arc::new(roots);
    let raw_server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(profile.versions())
        .unwrap();
    let raw_server = if mutual {
        let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.clone(),
            provider.clone(),
        )
        .build()
        .unwrap();
        raw_server.with_client_cert_verifier(v)
    } else {
        raw_server.with_no_client_auth()
    };
    let mut raw_server = raw_server
        .with_single_cert(vec![srv_der.clone()], srv_key)
        .unwrap();
    raw_server.alpn_protocols = vec![b"h2".to_vec()];
    let raw_client = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(profile.versions())
        .unwrap()
        .with_root_certificates(roots);
    let mut raw_client = if mutual {
        raw_client
            .with_client_auth_cert(vec![cli_der.clone()], cli_key)
            .unwrap()
    } else {
        raw_client.with_no_client_auth()
    };
    raw_client.alpn_protocols = vec![b"h2".to_vec()];
    // Full handshakes only, on both sides of the comparison.
    raw_client.resumption = rustls::client::Resumption::disabled();

    let srv_id = Identity::new(vec![srv_der.clone()], srv.key, "server").unwrap();
    let cli_id = Identity::new(vec![cli_der.clone()], cli.key, "client").unwrap();
    let (server_trust, client_trust) = if pinned {
        let pins = PinSet::new()
            .with("server", srv_der)
            .with("client", cli_der);
        (Trust::Pinned(pins.clone()), Trust::Pinned(pins))
    } else {
        let r = Trust::Roots(vec![ca.certificate().clone()]);
        (r.clone(), r)
    };
    let auth = if mutual {
        ClientAuth::Require(server_trust)
    } else {
        ClientAuth::None
    };
    let identity = if mutual {
        ClientIdentity::Certificate(cli_id)
    } else {
        ClientIdentity::Anonymous
    };
    let mut endpoint = Endpoint::parse("server.bench:7051").unwrap();
    if pinned {
        endpoint = endpoint.with_node("server");
    }
    Mode {
        name,
        weft_server: TlsServer::new(&srv_id, auth, profile).unwrap(),
        weft_client: TlsClient::new(client_trust, identity, profile)
            .unwrap()
            .with_resumption(false),
        endpoint,
        raw_server: Arc::new(raw_server),
        raw_client: Arc::new(raw_client),
    }
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let modes = [
        mode("server-auth", KeyAlgorithm::EcdsaP256, false, false),
        mode("mutual", KeyAlgorithm::EcdsaP256, true, false),
        mode("pinned-mutual-p384", KeyAlgorithm::EcdsaP384, true, true),
    ];
    let mut group = c.benchmark_group("tls::handshake");
    group.sample_size(30);
    for m in &modes {
        group.bench_function(format!("impl=weft,mode={}", m.name), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let (a, z) = tokio::io::duplex(64 * 1024);
                    let (s, c) = tokio::join!(
                        m.weft_server.accept(a, None),
                        m.weft_client.connect(z, &m.endpoint)
                    );
                    s.unwrap();
                    c.unwrap();
                })
            })
        });
        group.bench_function(format!("impl=rustls,mode={}", m.name), |b| {
            let name = ServerName::try_from("server.bench").unwrap();
            b.iter(|| {
                rt.block_on(async {
                    let (a, z) = tokio::io::duplex(64 * 1024);
                    let acceptor = tokio_rustls::TlsAcceptor::from(m.raw_server.clone());
                    let connector = tokio_rustls::TlsConnector::from(m.raw_client.clone());
                    let (s, c) =
                        tokio::join!(acceptor.accept(a), connector.connect(name.clone(), z));
                    s.unwrap();
                    c.unwrap();
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
