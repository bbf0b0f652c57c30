//! ECDSA signing and verification as weft does it for Fabric: signing includes low-S
//! normalization, verification includes strict DER decoding and the low-S check, with the key
//! parsed once (`PublicKey`) and the signing key cached inside `PrivateKey`.
//!
//! `cargo bench -p weft-crypto --bench sign`. Message: 1 KiB, about a proposal header's size.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark that cannot set up should stop

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use weft_crypto::sign::verify;
use weft_crypto::{KeyAlgorithm, PrivateKey};

fn bench(c: &mut Criterion) {
    let msg: Vec<u8> = (0..1024u32).map(|i| (i * 31 + 7) as u8).collect();
    for (name, alg) in [
        ("p256", KeyAlgorithm::EcdsaP256),
        ("p384", KeyAlgorithm::EcdsaP384),
    ] {
        let key = PrivateKey::generate(alg).unwrap();
        let public = key.public_key().unwrap();
        let sig = key.sign(&msg).unwrap();
        c.bench_function(&format!("crypto::sign/curve={name}"), |b| {
            b.iter(|| key.sign(black_box(&msg)).unwrap())
        });
        c.bench_function(&format!("crypto::verify/curve={name}"), |b| {
            b.iter(|| verify(&public, black_box(&msg), black_box(&sig)).unwrap())
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
