//! # Poison Pill's cryptography adapters
//!
//! Implementations of the domain's ports that are pure computation:
//! - [`AesGcmSealer`]: sealed bids (AES-256-GCM, bound to their rows);
//! - [`Argon2Hasher`]: argon2id password hashing off the async workers,
//!   bounded to the number of cores;
//! - [`ZxcvbnStrength`]: the breached-password and guessability check;
//! - [`JwtAccessTokens`]: HS256 access tokens with `iss`/`aud`/`exp`/`typ` checked;
//! - [`RandomSecretTokens`]: 256-bit opaque tokens stored as SHA-256 digests;
//! - [`TotpCodes`]: RFC 6238 codes (totp-rs) and 80-bit recovery codes.

mod jwt;
mod passwords;
mod sealer;
mod secrets;
mod totp;

pub use jwt::{JwtAccessTokens, JwtSettings};
pub use passwords::{Argon2Hasher, HashParams, ZxcvbnStrength};
pub use sealer::{AesGcmSealer, KEY_LEN};
pub use secrets::RandomSecretTokens;
pub use totp::TotpCodes;
