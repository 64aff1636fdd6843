//! The configured keys: each bound to one `kid` and one algorithm, checked
//! once at start-up, and published (public parts only) as a JWK Set.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::rsa::{PublicKey as RsaPublicKey, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED,
    ECDSA_P384_SHA384_FIXED_SIGNING, ED25519, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _,
    ParsedPublicKey, RsaKeyPair,
};
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::{Value, json};

use super::parse::b64_encode;
use super::{Algorithm, KeyError};

/// Smallest RSA modulus accepted (RFC 7518 §3.3).
const MIN_RSA_BITS: usize = 2048;

/// Key material, already resolved from `env:`/`file:` by the caller.
///
/// `Debug` never prints the bytes.
#[derive(Clone)]
pub enum KeyMaterial {
    /// A raw HMAC secret (HS256/384/512 only).
    Secret(Vec<u8>),
    /// A PEM private key: PKCS#8 `PRIVATE KEY` (any algorithm) or PKCS#1
    /// `RSA PRIVATE KEY`. Signs, verifies, and is published in the JWKS.
    PrivatePem(Vec<u8>),
    /// A PEM public key (`PUBLIC KEY`, or `RSA PUBLIC KEY`): verify only,
    /// e.g. another issuer's key.
    PublicPem(Vec<u8>),
}

/// One configured key: its id, the one algorithm it is used with, and its
/// material.
#[derive(Clone, Debug)]
pub struct KeySpec {
    /// The `kid` matched exactly against token headers.
    pub kid: String,
    /// The only algorithm this key accepts or produces (RFC 8725 §3.1).
    pub algorithm: Algorithm,
    /// The key itself.
    pub material: KeyMaterial,
}

/// A validated, immutable set of keys. Cheap to clone: one `Arc`.
///
/// Built once at start-up by [`KeySet::new`], which refuses weak or
/// mismatched keys and exercises every key once, so that a missing crypto
/// backend or a broken key fails the start, not the first request.
#[derive(Clone)]
pub struct KeySet {
    inner: Arc<KeySetInner>,
}

struct KeySetInner {
    // A handful of keys: a linear scan beats hashing and keeps order for JWKS.
    keys: Vec<KeyEntry>,
    signing: Option<usize>,
}

/// One ready-to-use key.
pub(crate) struct KeyEntry {
    pub(crate) kid: Arc<str>,
    pub(crate) algorithm: Algorithm,
    pub(crate) decoding: DecodingKey,
    pub(crate) encoding: Option<EncodingKey>,
    public: Option<PublicJwk>,
}

/// The public part of an asymmetric key, for the JWKS.
enum PublicJwk {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    Ec {
        crv: &'static str,
        x: Vec<u8>,
        y: Vec<u8>,
    },
    Okp {
        x: Vec<u8>,
    },
}

// === impl KeyMaterial ===

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            KeyMaterial::Secret(_) => "Secret",
            KeyMaterial::PrivatePem(_) => "PrivatePem",
            KeyMaterial::PublicPem(_) => "PublicPem",
        };
        f.debug_tuple(kind).field(&"[redacted]").finish()
    }
}

// === impl KeySet ===

impl KeySet {
    /// Validates `specs` and builds the set. `signing_kid` names the key that
    /// signs issued tokens; it must hold a private key or secret.
    ///
    /// Refuses: an empty or repeated `kid`; an HMAC secret shorter than the
    /// hash output; a PEM for HMAC or a secret for an asymmetric algorithm; an
    /// RSA key under 2048 bits; a PEM that is not a key for the declared
    /// algorithm (e.g. a P-384 key declared ES256); and any key whose
    /// sign/verify self test fails.
    pub fn new(specs: Vec<KeySpec>, signing_kid: Option<&str>) -> Result<KeySet, KeyError> {
        let mut keys: Vec<KeyEntry> = Vec::with_capacity(specs.len());
        for spec in specs {
            if spec.kid.is_empty() {
                return Err(KeyError::EmptyKid);
            }
            if spec.kid.chars().any(char::is_control) {
                return Err(KeyError::InvalidKid(spec.kid));
            }
            if keys.iter().any(|k| *k.kid == *spec.kid) {
                return Err(KeyError::DuplicateKid(spec.kid));
            }
            let entry = KeyEntry::build(spec)?;
            entry.self_test()?;
            keys.push(entry);
        }
        let signing = match signing_kid {
            None => None,
            Some(kid) => {
                let idx = keys
                    .iter()
                    .position(|k| &*k.kid == kid)
                    .ok_or_else(|| KeyError::UnknownSigningKid(kid.to_owned()))?;
                if keys.get(idx).is_none_or(|k| k.encoding.is_none()) {
                    return Err(KeyError::SigningKeyIsPublic(kid.to_owned()));
                }
                Some(idx)
            }
        };
        Ok(KeySet {
            inner: Arc::new(KeySetInner { keys, signing }),
        })
    }

    /// The `kid` of every key, in configuration order.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.inner.keys.iter().map(|k| &*k.kid)
    }

    /// True if a key has exactly this `kid`.
    pub fn contains(&self, kid: &str) -> bool {
        self.find(kid).is_some()
    }

    /// The `kid` of the signing key, if one was chosen.
    pub fn signing_kid(&self) -> Option<&str> {
        self.signing_entry().map(|k| &*k.kid)
    }

    /// The algorithm bound to `kid`.
    pub fn algorithm(&self, kid: &str) -> Option<Algorithm> {
        self.find(kid).map(|k| k.algorithm)
    }

    /// Number of keys (every key can verify).
    pub fn len(&self) -> usize {
        self.inner.keys.len()
    }

    /// True when the set holds no key at all.
    pub fn is_empty(&self) -> bool {
        self.inner.keys.is_empty()
    }

    /// The RFC 7517 JWK Set of the public part of every asymmetric key, for
    /// `/.well-known/jwks.json`. HMAC secrets are never included.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .inner
            .keys
            .iter()
            .filter_map(|k| {
                let public = k.public.as_ref()?;
                let mut jwk = match public {
                    PublicJwk::Rsa { n, e } => {
                        json!({"kty": "RSA", "n": b64_encode(n), "e": b64_encode(e)})
                    }
                    PublicJwk::Ec { crv, x, y } => {
                        json!({"kty": "EC", "crv": crv, "x": b64_encode(x), "y": b64_encode(y)})
                    }
                    PublicJwk::Okp { x } => {
                        json!({"kty": "OKP", "crv": "Ed25519", "x": b64_encode(x)})
                    }
                };
                if let Value::Object(map) = &mut jwk {
                    map.insert("kid".into(), Value::String(k.kid.to_string()));
                    map.insert("alg".into(), Value::String(k.algorithm.as_str().into()));
                    map.insert("use".into(), Value::String("sig".into()));
                }
                Some(jwk)
            })
            .collect();
        json!({ "keys": keys })
    }

    pub(crate) fn find(&self, kid: &str) -> Option<&KeyEntry> {
        self.inner.keys.iter().find(|k| &*k.kid == kid)
    }

    /// The key to use for a token without `kid`: only when there is exactly
    /// one, so that a missing `kid` never means "try them all".
    pub(crate) fn only_key(&self) -> Option<&KeyEntry> {
        match self.inner.keys.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    pub(crate) fn signing_entry(&self) -> Option<&KeyEntry> {
        self.inner.signing.and_then(|i| self.inner.keys.get(i))
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for k in &self.inner.keys {
            list.entry(&format_args!(
                "{}:{}{}",
                k.kid,
                k.algorithm,
                if k.encoding.is_some() {
                    ""
                } else {
                    " (verify only)"
                }
            ));
        }
        list.finish()
    }
}

// === impl KeyEntry ===

impl KeyEntry {
    fn build(spec: KeySpec) -> Result<KeyEntry, KeyError> {
        let KeySpec {
            kid,
            algorithm,
            material,
        } = spec;
        let invalid = |reason: &'static str| KeyError::InvalidPem {
            kid: kid.clone(),
            algorithm,
            reason,
        };

        let (decoding, encoding, public) = if algorithm.is_hmac() {
            let KeyMaterial::Secret(secret) = &material else {
                return Err(KeyError::HmacNeedsSecret { kid });
            };
            if secret.starts_with(b"-----BEGIN") {
                return Err(KeyError::HmacNeedsSecret { kid });
            }
            let min_bytes = algorithm.min_hmac_secret_len();
            if secret.len() < min_bytes {
                return Err(KeyError::HmacSecretTooShort {
                    kid,
                    algorithm,
                    min_bytes,
                });
            }
            (
                DecodingKey::from_secret(secret),
                Some(EncodingKey::from_secret(secret)),
                None,
            )
        } else {
            let (pem_bytes, private) = match &material {
                KeyMaterial::Secret(_) => {
                    return Err(KeyError::AsymmetricNeedsPem { kid, algorithm });
                }
                KeyMaterial::PrivatePem(p) => (p, true),
                KeyMaterial::PublicPem(p) => (p, false),
            };
            let pem = pem::parse(pem_bytes).map_err(|_| invalid("not a PEM document"))?;
            let der = pem.contents();
            match (algorithm, private) {
                (a, true) if a.is_rsa() => {
                    let pair = match pem.tag() {
                        "PRIVATE KEY" => RsaKeyPair::from_pkcs8(der),
                        "RSA PRIVATE KEY" => RsaKeyPair::from_der(der),
                        _ => return Err(invalid("expected a PRIVATE KEY or RSA PRIVATE KEY PEM")),
                    }
                    .map_err(|_| invalid("not an RSA private key"))?;
                    let comps = PublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                    check_rsa_bits(&kid, &comps.n)?;
                    let enc = EncodingKey::from_rsa_pem(pem_bytes)
                        .map_err(|_| invalid("not an RSA private key"))?;
                    let dec = DecodingKey::from_rsa_raw_components(&comps.n, &comps.e);
                    let jwk = PublicJwk::Rsa {
                        n: comps.n,
                        e: comps.e,
                    };
                    (dec, Some(enc), Some(jwk))
                }
                (a, false) if a.is_rsa() => {
                    if !matches!(pem.tag(), "PUBLIC KEY" | "RSA PUBLIC KEY") {
                        return Err(invalid("expected a PUBLIC KEY or RSA PUBLIC KEY PEM"));
                    }
                    let pk = RsaPublicKey::from_der(der)
                        .map_err(|_| invalid("not an RSA public key"))?;
                    let comps = PublicKeyComponents::<Vec<u8>>::from(&pk);
                    check_rsa_bits(&kid, &comps.n)?;
                    let dec = DecodingKey::from_rsa_raw_components(&comps.n, &comps.e);
                    let jwk = PublicJwk::Rsa {
                        n: comps.n,
                        e: comps.e,
                    };
                    (dec, None, Some(jwk))
                }
                (Algorithm::ES256 | Algorithm::ES384, true) => {
                    let (signing_alg, crv) = if algorithm == Algorithm::ES256 {
                        (&ECDSA_P256_SHA256_FIXED_SIGNING, "P-256")
                    } else {
                        (&ECDSA_P384_SHA384_FIXED_SIGNING, "P-384")
                    };
                    if pem.tag() != "PRIVATE KEY" {
                        return Err(invalid(
                            "expected a PKCS#8 PRIVATE KEY PEM (convert with `openssl pkcs8 -topk8 -nocrypt`)",
                        ));
                    }
                    let pair = EcdsaKeyPair::from_pkcs8(signing_alg, der)
                        .map_err(|_| invalid("not an EC private key on the algorithm's curve"))?;
                    let point = pair.public_key().as_ref().to_vec();
                    let (x, y) = split_point(&point, crv)
                        .ok_or_else(|| invalid("unexpected public point encoding"))?;
                    let enc = EncodingKey::from_ec_pem(pem_bytes)
                        .map_err(|_| invalid("not an EC private key"))?;
                    let dec = DecodingKey::from_ec_der(&point);
                    (dec, Some(enc), Some(PublicJwk::Ec { crv, x, y }))
                }
                (Algorithm::ES256 | Algorithm::ES384, false) => {
                    let (verify_alg, crv) = if algorithm == Algorithm::ES256 {
                        (&ECDSA_P256_SHA256_FIXED, "P-256")
                    } else {
                        (&ECDSA_P384_SHA384_FIXED, "P-384")
                    };
                    if pem.tag() != "PUBLIC KEY" {
                        return Err(invalid("expected a PUBLIC KEY PEM"));
                    }
                    // Checks the curve and that the point is on it.
                    ParsedPublicKey::new(verify_alg, der)
                        .map_err(|_| invalid("not an EC public key on the algorithm's curve"))?;
                    let raw = DecodingKey::from_ec_pem(pem_bytes)
                        .map_err(|_| invalid("not an EC public key"))?;
                    let point = raw.as_bytes().to_vec();
                    let (x, y) = split_point(&point, crv)
                        .ok_or_else(|| invalid("only uncompressed EC points are supported"))?;
                    (raw, None, Some(PublicJwk::Ec { crv, x, y }))
                }
                (Algorithm::EdDSA, true) => {
                    if pem.tag() != "PRIVATE KEY" {
                        return Err(invalid("expected a PKCS#8 PRIVATE KEY PEM"));
                    }
                    let pair = Ed25519KeyPair::from_pkcs8(der)
                        .map_err(|_| invalid("not an Ed25519 private key"))?;
                    let x = pair.public_key().as_ref().to_vec();
                    let enc = EncodingKey::from_ed_pem(pem_bytes)
                        .map_err(|_| invalid("not an Ed25519 private key"))?;
                    let dec = DecodingKey::from_ed_der(&x);
                    (dec, Some(enc), Some(PublicJwk::Okp { x }))
                }
                (Algorithm::EdDSA, false) => {
                    if pem.tag() != "PUBLIC KEY" {
                        return Err(invalid("expected a PUBLIC KEY PEM"));
                    }
                    ParsedPublicKey::new(&ED25519, der)
                        .map_err(|_| invalid("not an Ed25519 public key"))?;
                    let raw = DecodingKey::from_ed_pem(pem_bytes)
                        .map_err(|_| invalid("not an Ed25519 public key"))?;
                    let x = raw.as_bytes().to_vec();
                    if x.len() != 32 {
                        return Err(invalid("not an Ed25519 public key"));
                    }
                    (raw, None, Some(PublicJwk::Okp { x }))
                }
                // HMAC was handled above; RSA by the guards.
                _ => return Err(invalid("unsupported key type")),
            }
        };

        Ok(KeyEntry {
            kid: Arc::from(kid),
            algorithm,
            decoding,
            encoding,
            public,
        })
    }

    /// Signs and verifies once (or, for a public key, runs one verification
    /// that must fail cleanly): jsonwebtoken only discovers a missing or
    /// conflicting backend at first use, and we want that at start-up.
    fn self_test(&self) -> Result<(), KeyError> {
        const MSG: &[u8] = b"portcullis key self test";
        let failed = || KeyError::SelfTestFailed {
            kid: self.kid.to_string(),
            algorithm: self.algorithm,
        };
        let alg = self.algorithm.to_jsonwebtoken();
        match &self.encoding {
            Some(enc) => {
                let sig = jsonwebtoken::crypto::sign(MSG, enc, alg).map_err(|_| failed())?;
                match jsonwebtoken::crypto::verify(&sig, MSG, &self.decoding, alg) {
                    Ok(true) => Ok(()),
                    _ => Err(failed()),
                }
            }
            None => {
                // A well-formed but wrong signature: must be a clean `false`.
                let bogus = b64_encode([1u8; 64]);
                match jsonwebtoken::crypto::verify(&bogus, MSG, &self.decoding, alg) {
                    Ok(false) => Ok(()),
                    _ => Err(failed()),
                }
            }
        }
    }
}

/// Bit length of a big-endian modulus, ignoring leading zero bytes.
fn rsa_bits(n: &[u8]) -> usize {
    let mut n = n;
    while let [0, rest @ ..] = n {
        n = rest;
    }
    match n.first() {
        None => 0,
        Some(&top) => (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    }
}

fn check_rsa_bits(kid: &str, n: &[u8]) -> Result<(), KeyError> {
    let bits = rsa_bits(n);
    if bits < MIN_RSA_BITS {
        return Err(KeyError::RsaKeyTooSmall {
            kid: kid.to_owned(),
            bits,
        });
    }
    Ok(())
}

/// Splits an uncompressed SEC1 point `04 || x || y` for the curve.
fn split_point(point: &[u8], crv: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let coord = if crv == "P-256" { 32 } else { 48 };
    match point {
        [4, rest @ ..] if rest.len() == 2 * coord => {
            let (x, y) = rest.split_at(coord);
            Some((x.to_vec(), y.to_vec()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::generate_key;
    use super::super::test_support::*;
    use super::*;

    fn secret(kid: &str, alg: Algorithm, len: usize) -> KeySpec {
        KeySpec {
            kid: kid.into(),
            algorithm: alg,
            material: KeyMaterial::Secret(vec![7u8; len]),
        }
    }

    #[test]
    fn hmac_secret_shorter_than_hash_output_is_refused() {
        for (alg, min) in [
            (Algorithm::HS256, 32),
            (Algorithm::HS384, 48),
            (Algorithm::HS512, 64),
        ] {
            let err = KeySet::new(vec![secret("k", alg, min - 1)], None).unwrap_err();
            assert!(
                matches!(err, KeyError::HmacSecretTooShort { min_bytes, .. } if min_bytes == min)
            );
            KeySet::new(vec![secret("k", alg, min)], None).unwrap();
        }
    }

    #[test]
    fn error_messages_never_contain_the_secret() {
        let spec = KeySpec {
            kid: "k".into(),
            algorithm: Algorithm::HS256,
            material: KeyMaterial::Secret(b"hunter2-password".to_vec()),
        };
        let err = KeySet::new(vec![spec.clone()], None).unwrap_err();
        assert!(!err.to_string().contains("hunter2"));
        assert!(!format!("{spec:?}").contains("hunter2"));
    }

    #[test]
    fn hmac_given_pem_and_asymmetric_given_secret_are_refused() {
        let pem = generate_key(Algorithm::ES256).unwrap();
        for material in [
            KeyMaterial::PrivatePem(pem.private_pem.clone().into_bytes()),
            KeyMaterial::PublicPem(pem.public_pem.clone().into_bytes()),
            KeyMaterial::Secret(pem.public_pem.clone().into_bytes()),
        ] {
            let spec = KeySpec {
                kid: "k".into(),
                algorithm: Algorithm::HS256,
                material,
            };
            assert!(matches!(
                KeySet::new(vec![spec], None),
                Err(KeyError::HmacNeedsSecret { .. })
            ));
        }
        let spec = secret("k", Algorithm::ES256, 64);
        assert!(matches!(
            KeySet::new(vec![spec], None),
            Err(KeyError::AsymmetricNeedsPem { .. })
        ));
    }

    #[test]
    fn rsa_key_under_2048_bits_is_refused() {
        let der = rsa_public_der(&[0xC5; 128], &[1, 0, 1]); // 1024-bit modulus
        let spec = KeySpec {
            kid: "small".into(),
            algorithm: Algorithm::RS256,
            material: KeyMaterial::PublicPem(pem_encode_for_test("PUBLIC KEY", &der)),
        };
        assert!(matches!(
            KeySet::new(vec![spec], None),
            Err(KeyError::RsaKeyTooSmall { bits: 1024, .. })
        ));
    }

    #[test]
    fn pem_for_another_curve_or_family_is_refused() {
        let p384 = generate_key(Algorithm::ES384).unwrap();
        let ed = generate_key(Algorithm::EdDSA).unwrap();
        let p256 = generate_key(Algorithm::ES256).unwrap();
        let cases = [
            (
                Algorithm::ES256,
                KeyMaterial::PrivatePem(p384.private_pem.clone().into()),
            ),
            (
                Algorithm::ES256,
                KeyMaterial::PublicPem(p384.public_pem.clone().into()),
            ),
            (
                Algorithm::ES384,
                KeyMaterial::PrivatePem(p256.private_pem.clone().into()),
            ),
            (
                Algorithm::EdDSA,
                KeyMaterial::PrivatePem(p256.private_pem.clone().into()),
            ),
            (
                Algorithm::EdDSA,
                KeyMaterial::PublicPem(p256.public_pem.clone().into()),
            ),
            (
                Algorithm::RS256,
                KeyMaterial::PrivatePem(ed.private_pem.clone().into()),
            ),
            (
                Algorithm::RS256,
                KeyMaterial::PublicPem(ed.public_pem.clone().into()),
            ),
            (
                Algorithm::ES256,
                KeyMaterial::PrivatePem(b"not a pem".to_vec()),
            ),
            // A private key where a public one is declared, and vice versa.
            (
                Algorithm::ES256,
                KeyMaterial::PublicPem(p256.private_pem.clone().into()),
            ),
            (
                Algorithm::ES256,
                KeyMaterial::PrivatePem(p256.public_pem.clone().into()),
            ),
        ];
        for (algorithm, material) in cases {
            let spec = KeySpec {
                kid: "k".into(),
                algorithm,
                material,
            };
            let err = KeySet::new(vec![spec.clone()], None);
            assert!(
                matches!(err, Err(KeyError::InvalidPem { .. })),
                "{algorithm}: {err:?} for {spec:?}"
            );
        }
    }

    #[test]
    fn duplicate_and_empty_kids_are_refused() {
        let dup = KeySet::new(
            vec![
                secret("a", Algorithm::HS256, 32),
                secret("a", Algorithm::HS512, 64),
            ],
            None,
        );
        assert_eq!(dup.unwrap_err(), KeyError::DuplicateKid("a".into()));
        let empty = KeySet::new(vec![secret("", Algorithm::HS256, 32)], None);
        assert_eq!(empty.unwrap_err(), KeyError::EmptyKid);
        let ctl = KeySet::new(vec![secret("a\nb", Algorithm::HS256, 32)], None);
        assert!(matches!(ctl, Err(KeyError::InvalidKid(_))));
    }

    #[test]
    fn signing_kid_must_name_a_private_key() {
        let es = generate_key(Algorithm::ES256).unwrap();
        let specs = vec![
            secret("hs", Algorithm::HS256, 32),
            KeySpec {
                kid: "pub".into(),
                algorithm: Algorithm::ES256,
                material: KeyMaterial::PublicPem(es.public_pem.into()),
            },
        ];
        assert_eq!(
            KeySet::new(specs.clone(), Some("nope")).unwrap_err(),
            KeyError::UnknownSigningKid("nope".into())
        );
        assert_eq!(
            KeySet::new(specs.clone(), Some("pub")).unwrap_err(),
            KeyError::SigningKeyIsPublic("pub".into())
        );
        let set = KeySet::new(specs, Some("hs")).unwrap();
        assert_eq!(set.signing_kid(), Some("hs"));
        assert_eq!(set.kids().collect::<Vec<_>>(), ["hs", "pub"]);
        assert!(set.contains("pub") && !set.contains("PUB"));
    }

    #[test]
    fn every_algorithm_builds_from_generated_or_secret_material() {
        let set = all_algorithms_keyset();
        assert_eq!(set.len(), 10);
        for alg in Algorithm::ALL {
            assert_eq!(set.algorithm(alg.as_str()), Some(alg));
        }
    }

    #[test]
    fn rfc_public_keys_are_accepted() {
        let set = rfc_keyset();
        assert!(set.contains("a2") && set.contains("a3") && set.contains("ed"));
    }

    #[test]
    fn jwks_lists_public_parts_and_never_secrets() {
        let set = all_algorithms_keyset();
        let jwks = set.jwks();
        let text = jwks.to_string();
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 7, "{text}");
        assert!(!text.contains("\"oct\"") && !text.contains("\"k\"") && !text.contains("\"d\""));
        for k in keys {
            assert_eq!(k["use"], "sig");
            let alg: Algorithm = k["alg"].as_str().unwrap().parse().unwrap();
            assert!(!alg.is_hmac());
            match k["kty"].as_str().unwrap() {
                "RSA" => assert!(k["n"].is_string() && k["e"] == "AQAB"),
                "EC" => assert!(k["x"].is_string() && k["y"].is_string()),
                "OKP" => assert_eq!(k["crv"], "Ed25519"),
                other => panic!("unexpected kty {other}"),
            }
        }
    }

    #[test]
    fn jwks_of_rfc_keys_reproduces_the_rfc_values() {
        let jwks = rfc_keyset().jwks();
        let find = |kid: &str| {
            jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .find(|k| k["kid"] == kid)
                .unwrap()
                .clone()
        };
        assert_eq!(find("a2")["n"], RFC7515_A2_N);
        assert_eq!(find("a3")["x"], RFC7515_A3_X);
        assert_eq!(find("a3")["y"], RFC7515_A3_Y);
        assert_eq!(find("ed")["x"], RFC8037_X);
    }

    #[test]
    fn rsa_bits_counts_the_top_byte() {
        assert_eq!(rsa_bits(&[0, 0x80, 0]), 16);
        assert_eq!(rsa_bits(&[0x7f; 256]), 2047);
        assert_eq!(rsa_bits(&[]), 0);
    }
}
