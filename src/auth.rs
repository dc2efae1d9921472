//! Who may send or read customer data: write keys and bearer tokens, checked
//! in constant time. Used by the `segment_http` source and by the API's
//! counts endpoint (`[api] auth`).
//!
//! Three ways to present a credential, as Segment's API accepts them:
//!
//! * `Authorization: Basic base64(<write key>:)` — the key as the user name and
//!   an **empty** password (what the official libraries send). A password, or
//!   no `:` at all, is refused: it is not the form the libraries use, and
//!   accepting it would let a mistyped header pass unnoticed.
//! * `writeKey` in the JSON body (the envelope of a batch, or the event of a
//!   one-event call), for callers that cannot set headers (`segment_http` only).
//! * `Authorization: Bearer <token>`, matched against `bearer_tokens` only (for
//!   webhook destinations, which are configured with a token, not a key).
//!
//! Comparisons take the same time whether the first or the last byte differs,
//! and every configured credential is compared (no early exit), so response
//! timing does not tell a caller how much of a key it guessed right. The
//! length of the configured keys is not hidden. Neither the config's nor the
//! checker's `Debug` prints a secret.
//!
//! Plain functions over bytes, with no HTTP types.

use std::fmt;

use base64::Engine;
use serde::Deserialize;
use subtle::ConstantTimeEq;

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

/// Why a request's credentials were refused. The message goes back to the
/// client in the 401 body; the kind is a bounded metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials: send the write key as the Basic auth user (empty password) or as `writeKey` in the body")]
    Missing,
    #[error("the Authorization header is not `Basic base64(<write key>:)` or `Bearer <token>`")]
    Malformed,
    #[error("Basic auth must carry the write key as the user and an empty password")]
    PasswordNotEmpty,
    #[error("unknown write key or token")]
    Unknown,
}

impl AuthError {
    /// Bounded name, for metrics and logs.
    pub fn kind(self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Malformed => "malformed",
            AuthError::PasswordNotEmpty => "password_not_empty",
            AuthError::Unknown => "unknown",
        }
    }
}

/// The accepted write keys and bearer tokens.
#[derive(Clone, Default)]
pub struct Credentials {
    write_keys: Vec<Box<[u8]>>,
    bearer_tokens: Vec<Box<[u8]>>,
}

impl fmt::Debug for Credentials {
    /// Never prints a secret: only how many there are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("write_keys", &self.write_keys.len())
            .field("bearer_tokens", &self.bearer_tokens.len())
            .finish()
    }
}

impl Credentials {
    /// Empty strings are left out: an unset `${VAR:-}` must not mean "no key".
    pub fn new(write_keys: &[String], bearer_tokens: &[String]) -> Self {
        let keep = |list: &[String]| {
            list.iter()
                .filter(|k| !k.is_empty())
                .map(|k| k.as_bytes().into())
                .collect()
        };
        Credentials {
            write_keys: keep(write_keys),
            bearer_tokens: keep(bearer_tokens),
        }
    }

    /// The credentials of an `auth = { ... }` table.
    pub fn from_config(config: &AuthConfig) -> Self {
        Credentials::new(&config.write_keys, &config.bearer_tokens)
    }

    /// Checks a request's `Authorization` header, if it has one.
    pub fn check(&self, header: Option<&[u8]>) -> Result<(), AuthError> {
        self.check_header(header.ok_or(AuthError::Missing)?)
    }

    /// True when nothing at all would be accepted.
    pub fn is_empty(&self) -> bool {
        self.write_keys.is_empty() && self.bearer_tokens.is_empty()
    }

    /// Checks an `Authorization` header value.
    pub fn check_header(&self, value: &[u8]) -> Result<(), AuthError> {
        let (scheme, rest) = match value.iter().position(|&b| b == b' ') {
            Some(at) => (&value[..at], trim(&value[at + 1..])),
            None => return Err(AuthError::Malformed),
        };
        if scheme.eq_ignore_ascii_case(b"basic") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(rest))
                .map_err(|_| AuthError::Malformed)?;
            let colon = decoded
                .iter()
                .position(|&b| b == b':')
                .ok_or(AuthError::PasswordNotEmpty)?;
            if colon + 1 != decoded.len() {
                return Err(AuthError::PasswordNotEmpty);
            }
            self.check_write_key(&decoded[..colon])
        } else if scheme.eq_ignore_ascii_case(b"bearer") {
            if any_equal(&self.bearer_tokens, rest) {
                Ok(())
            } else {
                Err(AuthError::Unknown)
            }
        } else {
            Err(AuthError::Malformed)
        }
    }

    /// Checks a write key (from Basic auth or the body).
    pub fn check_write_key(&self, key: &[u8]) -> Result<(), AuthError> {
        if key.is_empty() {
            return Err(AuthError::Missing);
        }
        if any_equal(&self.write_keys, key) {
            Ok(())
        } else {
            Err(AuthError::Unknown)
        }
    }
}

/// Compares `candidate` with every entry, in constant time per entry, without
/// stopping at a match.
fn any_equal(accepted: &[Box<[u8]>], candidate: &[u8]) -> bool {
    let mut found = subtle::Choice::from(0);
    for key in accepted {
        found |= key.as_ref().ct_eq(candidate);
    }
    found.into()
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != b' ').unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| *b != b' ')
        .map_or(start, |e| e + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials::new(
            &["key-1".into(), "".into(), "key-2".into()],
            &["tok".into(), "".into()],
        )
    }

    fn basic(user_pass: &str) -> Vec<u8> {
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_pass);
        format!("Basic {encoded}").into_bytes()
    }

    #[test]
    fn basic_auth_takes_the_key_as_user_with_an_empty_password() {
        let c = creds();
        assert_eq!(c.check_header(&basic("key-2:")), Ok(()));
        assert_eq!(c.check_header(&basic("key-3:")), Err(AuthError::Unknown));
        assert_eq!(
            c.check_header(&basic("key-1:secret")),
            Err(AuthError::PasswordNotEmpty)
        );
        assert_eq!(
            c.check_header(&basic("key-1")),
            Err(AuthError::PasswordNotEmpty)
        );
        assert_eq!(c.check_header(&basic(":")), Err(AuthError::Missing));
        assert_eq!(c.check_header(b"Basic !!!"), Err(AuthError::Malformed));
        assert_eq!(c.check_header(b"Basic"), Err(AuthError::Malformed));
    }

    #[test]
    fn bearer_tokens_are_separate_from_write_keys() {
        let c = creds();
        assert_eq!(c.check_header(b"Bearer tok"), Ok(()));
        assert_eq!(c.check_header(b"bearer  tok "), Ok(()));
        assert_eq!(c.check_header(b"Bearer key-1"), Err(AuthError::Unknown));
        assert_eq!(c.check_header(b"Bearer "), Err(AuthError::Unknown));
        assert_eq!(c.check_header(b"Digest x"), Err(AuthError::Malformed));
    }

    #[test]
    fn empty_entries_never_match() {
        let c = Credentials::new(&["".into()], &["".into()]);
        assert!(c.is_empty());
        assert_eq!(c.check_write_key(b""), Err(AuthError::Missing));
        assert_eq!(c.check_header(b"Bearer "), Err(AuthError::Unknown));
    }

    #[test]
    fn debug_does_not_print_secrets() {
        let text = format!("{:?}", creds());
        assert!(!text.contains("key-1"), "{text}");
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

    #[test]
    fn a_request_without_a_header_is_missing_credentials() {
        let c = Credentials::from_config(&AuthConfig {
            write_keys: vec!["wk".into()],
            bearer_tokens: vec![],
        });
        assert_eq!(c.check(None), Err(AuthError::Missing));
        assert_eq!(c.check(Some(&basic("wk:"))), Ok(()));
    }
}
