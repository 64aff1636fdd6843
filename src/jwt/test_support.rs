//! Test-only helpers: PEM keys built from RFC JWKs, and key sets covering
//! every algorithm.

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub(crate) use super::test_vectors::*;
use super::{Algorithm, GeneratedKey, KeyMaterial, KeySet, KeySpec, generate_key};

pub(crate) fn b64d(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).unwrap()
}

pub(crate) fn pem_encode_for_test(tag: &str, der: &[u8]) -> Vec<u8> {
    super::generate::pem_encode(tag, der).into_bytes()
}

fn der_len(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

fn der_tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    der_len(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

fn der_uint(bytes: &[u8]) -> Vec<u8> {
    let mut body = bytes.to_vec();
    if body.first().is_some_and(|b| b & 0x80 != 0) {
        body.insert(0, 0);
    }
    der_tlv(0x02, &body)
}

/// SubjectPublicKeyInfo DER of an RSA public key, built by hand so that even
/// keys the crypto library would refuse (1024-bit) can be fed in.
pub(crate) fn rsa_public_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    let rsa_pub = der_tlv(0x30, &[der_uint(n), der_uint(e)].concat());
    let alg_id = hex("300d06092a864886f70d0101010500");
    let mut bits = vec![0u8];
    bits.extend(rsa_pub);
    der_tlv(0x30, &[alg_id, der_tlv(0x03, &bits)].concat())
}

pub(crate) fn ec_p256_public_der(x: &[u8], y: &[u8]) -> Vec<u8> {
    let mut der = hex("3059301306072a8648ce3d020106082a8648ce3d030107034200");
    der.push(4);
    der.extend_from_slice(x);
    der.extend_from_slice(y);
    der
}

pub(crate) fn ed25519_public_der(x: &[u8]) -> Vec<u8> {
    let mut der = hex("302a300506032b6570032100");
    der.extend_from_slice(x);
    der
}

pub(crate) fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

pub(crate) fn public_spec(kid: &str, algorithm: Algorithm, der: &[u8]) -> KeySpec {
    KeySpec {
        kid: kid.into(),
        algorithm,
        material: KeyMaterial::PublicPem(pem_encode_for_test("PUBLIC KEY", der)),
    }
}

pub(crate) fn a1_spec(kid: &str) -> KeySpec {
    KeySpec {
        kid: kid.into(),
        algorithm: Algorithm::HS256,
        material: KeyMaterial::Secret(b64d(RFC7515_A1_K)),
    }
}

pub(crate) fn a2_spec(kid: &str) -> KeySpec {
    public_spec(
        kid,
        Algorithm::RS256,
        &rsa_public_der(&b64d(RFC7515_A2_N), &[1, 0, 1]),
    )
}

pub(crate) fn a3_spec(kid: &str) -> KeySpec {
    public_spec(
        kid,
        Algorithm::ES256,
        &ec_p256_public_der(&b64d(RFC7515_A3_X), &b64d(RFC7515_A3_Y)),
    )
}

pub(crate) fn ed_spec(kid: &str) -> KeySpec {
    public_spec(kid, Algorithm::EdDSA, &ed25519_public_der(&b64d(RFC8037_X)))
}

/// One key set with the four RFC keys (a1, a2, a3, ed).
pub(crate) fn rfc_keyset() -> KeySet {
    KeySet::new(
        vec![a1_spec("a1"), a2_spec("a2"), a3_spec("a3"), ed_spec("ed")],
        None,
    )
    .unwrap()
}

/// Generated PEMs, once per test binary (RSA generation is slow).
fn generated(alg: Algorithm) -> &'static GeneratedKey {
    static RSA: OnceLock<GeneratedKey> = OnceLock::new();
    static P256: OnceLock<GeneratedKey> = OnceLock::new();
    static P384: OnceLock<GeneratedKey> = OnceLock::new();
    static ED: OnceLock<GeneratedKey> = OnceLock::new();
    let (cell, gen_alg) = match alg {
        Algorithm::ES256 => (&P256, Algorithm::ES256),
        Algorithm::ES384 => (&P384, Algorithm::ES384),
        Algorithm::EdDSA => (&ED, Algorithm::EdDSA),
        _ => (&RSA, Algorithm::RS256),
    };
    cell.get_or_init(|| generate_key(gen_alg).unwrap())
}

/// A signing-capable spec for `alg`, with `kid` = the algorithm name.
pub(crate) fn private_spec(alg: Algorithm) -> KeySpec {
    let material = if alg.is_hmac() {
        KeyMaterial::Secret((0..alg.min_hmac_secret_len() as u8).collect())
    } else {
        KeyMaterial::PrivatePem(generated(alg).private_pem.clone().into_bytes())
    };
    KeySpec {
        kid: alg.as_str().into(),
        algorithm: alg,
        material,
    }
}

/// The public PEM matching [`private_spec`] (asymmetric algorithms only).
pub(crate) fn public_pem(alg: Algorithm) -> String {
    generated(alg).public_pem.clone()
}

/// Ten keys, one per algorithm, `kid` = algorithm name, no signing key.
pub(crate) fn all_algorithms_keyset() -> KeySet {
    KeySet::new(Algorithm::ALL.into_iter().map(private_spec).collect(), None).unwrap()
}
