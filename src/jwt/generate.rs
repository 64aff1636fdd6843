//! Key generation for the `keys generate` command: PEM pairs that
//! [`KeySet::new`](super::KeySet::new) accepts back.

use std::fmt;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair as _, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::{Algorithm, KeyError};

/// A freshly generated key pair as PEM text: PKCS#8 `PRIVATE KEY` and
/// SubjectPublicKeyInfo `PUBLIC KEY`. `Debug` hides the private half.
#[derive(Clone)]
pub struct GeneratedKey {
    /// The private key (PKCS#8 v1), for `private_key = "file:..."`.
    pub private_pem: String,
    /// The public key, for another gateway's `public_key = "file:..."`.
    pub public_pem: String,
}

/// RSA modulus sizes offered by [`generate_rsa_key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaKeySize {
    /// 2048 bits: the minimum, and the faster signer.
    Bits2048,
    /// 3072 bits: the NIST recommendation beyond 2030.
    Bits3072,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("private_pem", &"[redacted]")
            .field("public_pem", &self.public_pem)
            .finish()
    }
}

/// Generates a key pair for an asymmetric algorithm (RSA keys get 2048 bits;
/// see [`generate_rsa_key`]). HMAC secrets are not PEM keys: generate 32+
/// random bytes instead, which this refuses with
/// [`KeyError::UnsupportedAlgorithm`].
pub fn generate_key(alg: Algorithm) -> Result<GeneratedKey, KeyError> {
    match alg {
        Algorithm::ES256 => generate_ec(&ECDSA_P256_SHA256_FIXED_SIGNING),
        Algorithm::ES384 => generate_ec(&ECDSA_P384_SHA384_FIXED_SIGNING),
        Algorithm::EdDSA => {
            let pair = Ed25519KeyPair::generate().map_err(|_| KeyError::Generation)?;
            let private: Pkcs8V1Der<'_> = pair.as_der().map_err(|_| KeyError::Generation)?;
            let public: PublicKeyX509Der<'_> = pair
                .public_key()
                .as_der()
                .map_err(|_| KeyError::Generation)?;
            Ok(GeneratedKey {
                private_pem: pem_encode("PRIVATE KEY", private.as_ref()),
                public_pem: pem_encode("PUBLIC KEY", public.as_ref()),
            })
        }
        a if a.is_rsa() => generate_rsa_key(RsaKeySize::Bits2048),
        other => Err(KeyError::UnsupportedAlgorithm(other)),
    }
}

/// Generates an RSA key pair (usable with RS256/384/512 and PS256). Takes
/// from tens of milliseconds to a few seconds.
pub fn generate_rsa_key(size: RsaKeySize) -> Result<GeneratedKey, KeyError> {
    let size = match size {
        RsaKeySize::Bits2048 => KeySize::Rsa2048,
        RsaKeySize::Bits3072 => KeySize::Rsa3072,
    };
    let pair = RsaKeyPair::generate(size).map_err(|_| KeyError::Generation)?;
    let private: Pkcs8V1Der<'_> = pair.as_der().map_err(|_| KeyError::Generation)?;
    let public: PublicKeyX509Der<'_> = pair
        .public_key()
        .as_der()
        .map_err(|_| KeyError::Generation)?;
    Ok(GeneratedKey {
        private_pem: pem_encode("PRIVATE KEY", private.as_ref()),
        public_pem: pem_encode("PUBLIC KEY", public.as_ref()),
    })
}

fn generate_ec(
    alg: &'static aws_lc_rs::signature::EcdsaSigningAlgorithm,
) -> Result<GeneratedKey, KeyError> {
    let pair = EcdsaKeyPair::generate(alg).map_err(|_| KeyError::Generation)?;
    let private = pair.to_pkcs8v1().map_err(|_| KeyError::Generation)?;
    let public: PublicKeyX509Der<'_> = pair
        .public_key()
        .as_der()
        .map_err(|_| KeyError::Generation)?;
    Ok(GeneratedKey {
        private_pem: pem_encode("PRIVATE KEY", private.as_ref()),
        public_pem: pem_encode("PUBLIC KEY", public.as_ref()),
    })
}

/// RFC 7468 text encoding: 64-column base64 lines, LF endings.
pub(crate) fn pem_encode(tag: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 2 * tag.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(tag);
    out.push_str("-----\n");
    // base64 output is ASCII, so splitting bytes never splits a char.
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(tag);
    out.push_str("-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::super::{KeyMaterial, KeySet, KeySpec};
    use super::*;

    #[test]
    fn generated_keys_are_accepted_back_private_and_public() {
        for alg in [
            Algorithm::ES256,
            Algorithm::ES384,
            Algorithm::EdDSA,
            Algorithm::RS256,
        ] {
            let k = generate_key(alg).unwrap();
            assert!(k.private_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
            assert!(k.public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
            assert!(!format!("{k:?}").contains(&k.private_pem));
            let specs = vec![
                KeySpec {
                    kid: "priv".into(),
                    algorithm: alg,
                    material: KeyMaterial::PrivatePem(k.private_pem.into_bytes()),
                },
                KeySpec {
                    kid: "pub".into(),
                    algorithm: alg,
                    material: KeyMaterial::PublicPem(k.public_pem.into_bytes()),
                },
            ];
            KeySet::new(specs, Some("priv")).unwrap();
        }
    }

    #[test]
    fn rsa_3072_is_accepted_back() {
        let k = generate_rsa_key(RsaKeySize::Bits3072).unwrap();
        let spec = KeySpec {
            kid: "r".into(),
            algorithm: Algorithm::PS256,
            material: KeyMaterial::PrivatePem(k.private_pem.into_bytes()),
        };
        let set = KeySet::new(vec![spec], Some("r")).unwrap();
        let n = set.jwks()["keys"][0]["n"].as_str().unwrap().len();
        assert_eq!(n, 512); // 384 bytes in base64url
    }

    #[test]
    fn hmac_generation_is_refused() {
        assert_eq!(
            generate_key(Algorithm::HS256).unwrap_err(),
            KeyError::UnsupportedAlgorithm(Algorithm::HS256)
        );
    }
}
