//! Credentials for the HTTP endpoints that take or show customer data: the
//! counts endpoint now, the `segment_http` source later.
//!
//! A request passes with `Authorization: Basic base64(<write key>:)` (Segment's
//! convention: the write key as user name, empty password) or
//! `Authorization: Bearer <token>`. Secrets are compared in constant time
//! (for equal lengths), so response timing does not reveal how much of a
//! guess was right; the config's `Debug` never prints them.

use std::fmt;

use base64::Engine as _;
use serde::Deserialize;

use crate::config::FieldError;

/// `auth = { write_keys = [...], bearer_tokens = [...] }`.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Accepted as the user name of Basic credentials (the password is ignored).
    #[serde(default)]
    pub write_keys: Vec<String>,
    /// Accepted as `Authorization: Bearer <token>`.
    #[serde(default)]
    pub bearer_tokens: Vec<String>,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field(
                "write_keys",
                &format!("<{} redacted>", self.write_keys.len()),
            )
            .field(
                "bearer_tokens",
                &format!("<{} redacted>", self.bearer_tokens.len()),
            )
            .finish()
    }
}

impl AuthConfig {
    /// True when no credential is configured (nothing would pass).
    pub fn is_empty(&self) -> bool {
        self.write_keys.is_empty() && self.bearer_tokens.is_empty()
    }

    /// Empty secrets are refused: an unset `${VAR}` must not open the door.
    pub fn validate(&self, prefix: &str) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for (name, list) in [
            ("write_keys", &self.write_keys),
            ("bearer_tokens", &self.bearer_tokens),
        ] {
            for (i, secret) in list.iter().enumerate() {
                if secret.is_empty() {
                    errors.push(FieldError::new(
                        format!("{prefix}{name}[{i}]"),
                        format!("{name}[{i}] is empty (an unset environment variable?); every credential must be non-empty"),
                    ));
                }
            }
        }
        errors
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no Authorization header")]
    Missing,
    #[error("the Authorization header is not Basic or Bearer credentials")]
    Malformed,
    #[error("the credentials are not valid")]
    Invalid,
}

/// Checks `Authorization` headers against configured secrets.
#[derive(Clone)]
pub struct Credentials {
    write_keys: Vec<Vec<u8>>,
    bearer_tokens: Vec<Vec<u8>>,
}

impl Credentials {
    pub fn new(config: &AuthConfig) -> Self {
        let bytes = |list: &[String]| -> Vec<Vec<u8>> {
            list.iter()
                .filter(|s| !s.is_empty())
                .map(|s| s.as_bytes().to_vec())
                .collect()
        };
        Credentials {
            write_keys: bytes(&config.write_keys),
            bearer_tokens: bytes(&config.bearer_tokens),
        }
    }

    /// Accepts or refuses the value of an `Authorization` header.
    pub fn check(&self, header: Option<&[u8]>) -> Result<(), AuthError> {
        let header = header.ok_or(AuthError::Missing)?;
        let (scheme, rest) = split_scheme(header).ok_or(AuthError::Malformed)?;
        let accepted = if scheme.eq_ignore_ascii_case(b"basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .map_err(|_| AuthError::Malformed)?;
            let user = match decoded.iter().position(|&b| b == b':') {
                Some(colon) => &decoded[..colon],
                None => &decoded[..],
            };
            any_equal(&self.write_keys, user)
        } else if scheme.eq_ignore_ascii_case(b"bearer") {
            any_equal(&self.bearer_tokens, rest)
        } else {
            return Err(AuthError::Malformed);
        };
        if accepted {
            Ok(())
        } else {
            Err(AuthError::Invalid)
        }
    }
}

fn split_scheme(header: &[u8]) -> Option<(&[u8], &[u8])> {
    let space = header.iter().position(|&b| b == b' ')?;
    let rest = header[space + 1..].trim_ascii();
    (!rest.is_empty()).then_some((&header[..space], rest))
}

/// Whether `candidate` equals one of `secrets`; every secret is compared.
fn any_equal(secrets: &[Vec<u8>], candidate: &[u8]) -> bool {
    secrets.iter().fold(false, |found, secret| {
        found | constant_time_eq(secret, candidate)
    })
}

/// Byte equality whose time depends only on the lengths, not on where the
/// first difference is.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    // Keep the comparison from being turned into an early-exit loop.
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::new(&AuthConfig {
            write_keys: vec!["wk1".into(), "".into()],
            bearer_tokens: vec!["tok".into()],
        })
    }

    fn basic(text: &str) -> Vec<u8> {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(text)
        )
        .into_bytes()
    }

    #[test]
    fn basic_and_bearer() {
        let c = creds();
        assert_eq!(c.check(Some(&basic("wk1:"))), Ok(()));
        assert_eq!(c.check(Some(&basic("wk1"))), Ok(()));
        assert_eq!(c.check(Some(b"bearer tok")), Ok(()));
        assert_eq!(c.check(Some(&basic("wk2:"))), Err(AuthError::Invalid));
        // An empty configured key never matches an empty user.
        assert_eq!(c.check(Some(&basic(":"))), Err(AuthError::Invalid));
        assert_eq!(c.check(Some(b"Bearer tok2")), Err(AuthError::Invalid));
        assert_eq!(c.check(Some(b"Bearer wk1")), Err(AuthError::Invalid));
        assert_eq!(c.check(None), Err(AuthError::Missing));
        assert_eq!(c.check(Some(b"Digest x")), Err(AuthError::Malformed));
        assert_eq!(c.check(Some(b"Basic !!!")), Err(AuthError::Malformed));
        assert_eq!(c.check(Some(b"Bearer")), Err(AuthError::Malformed));
    }

    #[test]
    fn equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[test]
    fn empty_secrets_are_config_errors_and_debug_hides_secrets() {
        let c = AuthConfig {
            write_keys: vec!["".into()],
            bearer_tokens: vec!["secret".into()],
        };
        assert_eq!(c.validate("auth.")[0].field, "auth.write_keys[0]");
        assert!(!format!("{c:?}").contains("secret"));
    }
}
