//! Password hashes: argon2id (the default) and bcrypt (for users migrating from the
//! seed stack), in PHC / modular-crypt strings as `portcullis hash-password` prints.
//!
//! Verifying costs tens of milliseconds of CPU by design: call it on a blocking thread,
//! never on the reactor.

use std::fmt;
use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHasher, PasswordVerifier, SaltString};

/// A stored password hash, checked to be well-formed when the config is loaded.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash {
    kind: Kind,
}

#[derive(Clone, PartialEq, Eq)]
enum Kind {
    Argon2(String),
    Bcrypt(String),
}

/// Why a stored hash was refused at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidHash(&'static str);

impl fmt::Display for InvalidHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for InvalidHash {}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            Kind::Argon2(_) => "PasswordHash(argon2)",
            Kind::Bcrypt(_) => "PasswordHash(bcrypt)",
        })
    }
}

impl PasswordHash {
    /// Parses `$argon2id$v=19$...` (argon2i/argon2d too) or `$2b$`/`$2a$`/`$2y$` bcrypt.
    pub fn parse(text: &str) -> Result<Self, InvalidHash> {
        if text.starts_with("$argon2") {
            let hash = argon2::PasswordHash::new(text)
                .map_err(|_| InvalidHash("not a valid argon2 PHC string"))?;
            let complete = hash.salt.is_some()
                && hash.hash.is_some()
                && argon2::Params::try_from(&hash).is_ok();
            if !complete {
                return Err(InvalidHash("not a valid argon2 PHC string"));
            }
            return Ok(Self {
                kind: Kind::Argon2(text.to_owned()),
            });
        }
        if ["$2a$", "$2b$", "$2y$"].iter().any(|p| text.starts_with(p)) {
            let cost = text.get(4..6).and_then(|c| c.parse::<u32>().ok());
            if text.len() != 60 || !cost.is_some_and(|c| (4..=31).contains(&c)) {
                return Err(InvalidHash("not a valid bcrypt hash"));
            }
            return Ok(Self {
                kind: Kind::Bcrypt(text.to_owned()),
            });
        }
        Err(InvalidHash(
            "unknown hash format: expected argon2 ($argon2id$...) or bcrypt ($2b$...)",
        ))
    }

    /// Whether `password` matches. Never panics: a password bcrypt cannot take whole
    /// (over 72 bytes) simply does not match, where bcrypt would silently truncate it.
    pub fn verify(&self, password: &[u8]) -> bool {
        match &self.kind {
            Kind::Argon2(phc) => argon2::PasswordHash::new(phc)
                .is_ok_and(|hash| Argon2::default().verify_password(password, &hash).is_ok()),
            Kind::Bcrypt(hash) => bcrypt::non_truncating_verify(password, hash).unwrap_or(false),
        }
    }
}

/// Hashes `password` with argon2id at OWASP's parameters (m=19456 KiB, t=2, p=1).
pub fn hash_password(password: &[u8]) -> Result<String, InvalidHash> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|_| InvalidHash("argon2 hashing failed"))
}

/// A hash of a random password with the same parameters as real ones: unknown users
/// are checked against it so that they cost the same time as a wrong password.
pub fn dummy_hash() -> &'static PasswordHash {
    static DUMMY: OnceLock<PasswordHash> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut secret = [0u8; 32];
        OsRng.fill_bytes(&mut secret);
        let kind = match hash_password(&secret) {
            Ok(phc) => Kind::Argon2(phc),
            // Unreachable with valid parameters; a bcrypt hash of the same cost class
            // keeps the timing property rather than failing open.
            Err(_) => Kind::Bcrypt(bcrypt::hash(secret, 10).unwrap_or_default()),
        };
        PasswordHash { kind }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Known answers from SECURITY_CASES.md §12.2.
    const ARGON2: &str =
        "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc";
    const BCRYPT_2B: &str = "$2b$04$cVWp4XaNU8a4v1uMRum2SO026BWLIoQMD/TXg5uZV.0P.uO8m3YEm";
    const BCRYPT_2A: &str = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";

    #[test]
    fn known_answers_verify() {
        assert!(PasswordHash::parse(ARGON2).unwrap().verify(b"password"));
        assert!(!PasswordHash::parse(ARGON2).unwrap().verify(b"passwore"));
        assert!(
            PasswordHash::parse(BCRYPT_2B)
                .unwrap()
                .verify(b"Kk4DQuMMfZL9o")
        );
        assert!(PasswordHash::parse(BCRYPT_2A).unwrap().verify(b"U*U"));
    }

    #[test]
    fn new_hashes_are_argon2id_with_owasp_parameters() {
        let phc = hash_password(b"correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let hash = PasswordHash::parse(&phc).unwrap();
        assert!(hash.verify(b"correct horse"));
        assert!(!hash.verify(b"correct horsf"));
    }

    #[test]
    fn bcrypt_never_truncates_long_passwords() {
        // bcrypt reads at most 72 bytes, NUL terminator included.
        let long = [b'A'; 71];
        let hash = bcrypt::hash(long, 4).unwrap();
        let hash = PasswordHash::parse(&hash).unwrap();
        assert!(hash.verify(&long));
        let mut longer = long.to_vec();
        longer.push(b'y');
        assert!(!hash.verify(&longer), "A*71+y must not match A*71");
        assert!(
            !hash.verify(&[b'A'; 1000]),
            "a long password is refused, not truncated"
        );
    }

    #[test]
    fn malformed_and_unknown_hashes_are_refused_at_load() {
        assert!(PasswordHash::parse("plaintext").is_err());
        assert!(PasswordHash::parse("$argon2id$v=19$garbage").is_err());
        assert!(PasswordHash::parse("$2b$04$short").is_err());
        assert!(PasswordHash::parse("$1$md5$whatever").is_err());
    }

    #[test]
    fn the_dummy_hash_matches_nothing_a_user_types() {
        assert!(!dummy_hash().verify(b""));
        assert!(!dummy_hash().verify(b"password"));
    }
}
