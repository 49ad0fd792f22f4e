//! Secrets: Argon2id password hashes, and random tokens and share links stored only as a hash.
//!
//! A token is 32 random bytes, so a fast hash (SHA-256) is enough to store it: nobody can guess
//! an input. Passwords are chosen by people, so they get a slow, salted hash.

use std::fmt::Write;
use std::sync::LazyLock;

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AccountError;

/// What every API and session token starts with, so secret scanners and people recognise one.
pub const TOKEN_PREFIX: &str = "todo_";
/// Fewest characters in a password.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Most characters in a password (at most 4 KiB); Argon2 hashes anything, but a megabyte
/// "password" is an attack.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Checks a new password against the length rules.
pub fn check_password(password: &str) -> Result<(), AccountError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(AccountError::InvalidPassword(format!(
            "must be at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(AccountError::InvalidPassword(format!(
            "must be at most {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// The Argon2id hash of `password` with a fresh salt, in PHC string form.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let salt = SaltString::encode_b64(&random_bytes::<16>()?).map_err(secret_error)?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(secret_error)?;
    Ok(hash.to_string())
}

/// Whether `password` matches the stored `hash`. With no hash (no such user), it checks a hash
/// nobody's password matches, so the answer takes as long either way and does not say whether
/// the user exists.
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    let (hash, real) = match hash {
        Some(hash) => (hash, true),
        None => (UNMATCHABLE.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let matches = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    matches && real
}

/// A hash of random bytes, made once: what `verify_password` checks for a missing user.
static UNMATCHABLE: LazyLock<String> = LazyLock::new(|| {
    let password = random_bytes::<32>()
        .map(|bytes| URL_SAFE_NO_PAD.encode(bytes))
        .unwrap_or_else(|_| "unmatchable".to_owned());
    hash_password(&password).unwrap_or_default()
});

/// A new token: the prefix and 32 random bytes in URL-safe base64.
pub fn new_token() -> Result<String, AccountError> {
    Ok(format!("{TOKEN_PREFIX}{}", new_link_secret()?))
}

/// A new share-link secret: 32 random bytes in URL-safe base64 (43 characters).
pub fn new_link_secret() -> Result<String, AccountError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<32>()?))
}

/// The stored form of a token or link secret: its SHA-256, in hex.
pub fn secret_hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    // One allocation: a signed-in request hashes its token before anything else.
    let mut hex = String::with_capacity(2 * digest.len());
    for byte in digest {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// Whether two stored hashes are equal, in time that does not depend on where they differ.
pub fn same_hash(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

fn random_bytes<const N: usize>() -> Result<[u8; N], AccountError> {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).map_err(secret_error)?;
    Ok(bytes)
}

fn secret_error(error: impl std::fmt::Display) -> AccountError {
    AccountError::Secret(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_matches_its_hash_and_nothing_else() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", Some(&hash)));
        assert!(!verify_password("correct horsf", Some(&hash)));
        assert!(!verify_password("correct horse", None));
    }

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 43);
        assert_eq!(secret_hash(&a).len(), 64);
        assert!(same_hash(&secret_hash(&a), &secret_hash(&a)));
        assert!(!same_hash(&secret_hash(&a), &secret_hash(&b)));
    }

    #[test]
    fn short_and_huge_passwords_are_refused() {
        assert!(check_password("seven77").is_err());
        assert!(check_password("eight888").is_ok());
        assert!(check_password(&"x".repeat(MAX_PASSWORD_CHARS + 1)).is_err());
    }
}
