//! What the token cache buys: a cache hit against a full verification, per algorithm.
//!
//! `cargo bench --bench jwt`. A hit is a moka lookup keyed by the whole token plus an
//! `exp`/`nbf` re-check; a miss parses, checks the signature and the claims.

#![expect(clippy::panic, reason = "a benchmark that cannot set up should stop")]
#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::jwt::{
    Algorithm, Authenticator, Issuer, KeyMaterial, KeySet, KeySpec, MemoryRevocationStore,
    TokenCache, TokenRequest, Validation, Verifier, generate_key,
};

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn setup(algorithm: Algorithm) -> (String, Verifier, Authenticator) {
    let material = match algorithm {
        Algorithm::HS256 => {
            KeyMaterial::Secret(b"a-benchmark-secret-of-at-least-32-bytes".to_vec())
        }
        _ => match generate_key(algorithm) {
            Ok(key) => KeyMaterial::PrivatePem(key.private_pem.into_bytes()),
            Err(e) => panic!("cannot generate a {} key: {e}", algorithm.as_str()),
        },
    };
    let spec = KeySpec {
        kid: "k".into(),
        algorithm,
        material,
    };
    let keys = KeySet::new(vec![spec], Some("k")).unwrap_or_else(|e| panic!("{e}"));
    let issuer = Issuer::new(keys.clone(), "portcullis".into(), "api".into())
        .unwrap_or_else(|e| panic!("{e}"));
    let request = TokenRequest {
        subject: "alice".into(),
        ttl: Duration::from_secs(3600),
        scope: Some("read write".into()),
        ..TokenRequest::default()
    };
    let token = issuer
        .issue(request, now())
        .unwrap_or_else(|e| panic!("{e}"))
        .token;
    let verifier = Verifier::new(keys, Validation::new("portcullis", "api"));
    let authenticator = Authenticator::new(
        verifier.clone(),
        TokenCache::new(100_000, Duration::from_secs(3600)),
        Arc::new(MemoryRevocationStore::new(1000)),
    );
    (token, verifier, authenticator)
}

fn verify(c: &mut Criterion) {
    for algorithm in [
        Algorithm::HS256,
        Algorithm::ES256,
        Algorithm::RS256,
        Algorithm::EdDSA,
    ] {
        let (token, verifier, authenticator) = setup(algorithm);
        let now = now();
        let mut group = c.benchmark_group(algorithm.as_str());
        group.bench_function("cache hit", |b| {
            let _ = authenticator.verify(&token, now);
            b.iter(|| authenticator.verify(std::hint::black_box(&token), now))
        });
        group.bench_function("full verify", |b| {
            b.iter(|| verifier.verify(std::hint::black_box(&token), now))
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = verify
}
criterion_main!(benches);
