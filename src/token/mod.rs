//! The token endpoint's building blocks: password hashes of users and clients.

mod password;

pub use password::{InvalidHash, PasswordHash, dummy_hash, hash_password};
