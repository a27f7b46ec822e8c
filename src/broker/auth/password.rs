//! The password file: one `user:hash` line per user, the hash an Argon2 PHC string
//! (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`); `#` comments and blank lines are allowed.
//! Parsing, formatting, hashing with a salt the caller supplies, and verification.
//!
//! Pure: no file reads and no randomness here. The command line reads and writes the file and
//! draws the salt from the operating system; verification needs no randomness at all.
//! Not here: who may do what once authenticated (`acl.rs`).

use std::collections::BTreeMap;
use std::fmt;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use super::FileError;

/// Bytes of salt `hash_password` takes (the PHC recommendation is at least 16).
pub const SALT_LEN: usize = 16;

/// How expensive a new hash is. The parameters are written into the hash, so verification
/// always uses the cost the hash was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashCost {
    /// Memory, in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
}

impl HashCost {
    /// Argon2id with 19 MiB and 2 passes (the OWASP recommendation, and the crate's default).
    pub const DEFAULT: HashCost = HashCost {
        memory_kib: Params::DEFAULT_M_COST,
        iterations: Params::DEFAULT_T_COST,
    };
    /// The cheapest cost Argon2 allows: for tests only, never for real passwords.
    pub const MINIMAL: HashCost = HashCost {
        memory_kib: Params::MIN_M_COST,
        iterations: Params::MIN_T_COST,
    };
}

/// Hashes `password` with Argon2id, `salt` and `cost`; returns the PHC string.
pub fn hash_password(password: &[u8], salt: &[u8; SALT_LEN], cost: HashCost) -> String {
    let params = Params::new(cost.memory_kib, cost.iterations, 1, None)
        .expect("HashCost values are within Argon2's ranges");
    let salt = SaltString::encode_b64(salt).expect("16 bytes is a valid salt length");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password, &salt)
        .expect("hashing with valid parameters cannot fail")
        .to_string()
}

/// Whether `password` matches the PHC string `hash` (false for a string that does not parse).
pub fn verify_password(password: &[u8], hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    Argon2::default().verify_password(password, &parsed).is_ok()
}

/// Users and their password hashes, in user-name order.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PasswordFile {
    users: BTreeMap<String, String>,
}

impl fmt::Debug for PasswordFile {
    /// User names only: hashes stay out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordFile")
            .field("users", &self.users.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Whether `name` can be written in the file: non-empty, no `:`, no control characters, no
/// leading `#` and no surrounding white space.
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(':')
        && !name.starts_with('#')
        && name.trim() == name
        && !name.chars().any(char::is_control)
}

impl PasswordFile {
    /// Parses the file's text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<PasswordFile, FileError> {
        let mut users = BTreeMap::new();
        let mut first_line = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |message: String| FileError::new(file, line_no, message);
            let Some((user, hash)) = line.split_once(':') else {
                return Err(err("expected `user:hash`".into()));
            };
            if !valid_user_name(user) {
                return Err(err(format!("invalid user name {user:?}")));
            }
            let parsed = PasswordHash::new(hash)
                .map_err(|e| err(format!("user {user:?}: the hash is not a PHC string ({e})")))?;
            let algorithm = parsed.algorithm.as_str();
            if !matches!(algorithm, "argon2id" | "argon2i" | "argon2d") {
                return Err(err(format!(
                    "user {user:?}: unsupported hash algorithm {algorithm:?} (expected argon2id)"
                )));
            }
            if parsed.hash.is_none() || parsed.salt.is_none() {
                return Err(err(format!(
                    "user {user:?}: the hash lacks a salt or an output"
                )));
            }
            if let Some(first) = first_line.insert(user.to_owned(), line_no) {
                return Err(err(format!(
                    "user {user:?} already defined on line {first}"
                )));
            }
            users.insert(user.to_owned(), hash.to_owned());
        }
        Ok(PasswordFile { users })
    }

    /// The file's text: one `user:hash` line per user, in user-name order.
    pub fn to_text(&self) -> String {
        self.users
            .iter()
            .map(|(u, h)| format!("{u}:{h}\n"))
            .collect()
    }

    /// Adds `user` or replaces its hash. Panics on a user name `valid_user_name` refuses.
    pub fn set(&mut self, user: &str, hash: String) {
        assert!(valid_user_name(user), "invalid user name {user:?}");
        self.users.insert(user.to_owned(), hash);
    }

    /// Removes `user`; false if it was not there.
    pub fn remove(&mut self, user: &str) -> bool {
        self.users.remove(user).is_some()
    }

    pub fn contains(&self, user: &str) -> bool {
        self.users.contains_key(user)
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `user` exists and `password` matches its hash.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        self.users
            .get(user)
            .is_some_and(|h| verify_password(password, h))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SALT: [u8; SALT_LEN] = *b"0123456789abcdef";

    #[test]
    fn hash_is_a_salted_argon2id_phc_string_that_verifies() {
        let h = hash_password(b"secret", &SALT, HashCost::MINIMAL);
        assert!(h.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{h}");
        assert!(!h.contains("secret"));
        assert!(verify_password(b"secret", &h));
        assert!(!verify_password(b"Secret", &h));
        assert!(!verify_password(b"", &h));
        let other_salt = hash_password(b"secret", b"fedcba9876543210", HashCost::MINIMAL);
        assert_ne!(h, other_salt, "the salt changes the hash");
        assert!(!verify_password(b"secret", "not a hash"));
    }

    #[test]
    fn file_round_trips_and_skips_comments_and_blank_lines() {
        let a = hash_password(b"pa", &SALT, HashCost::MINIMAL);
        let b = hash_password(b"pb", &SALT, HashCost::MINIMAL);
        let text = format!("# users\n\nbob:{b}\n  alice:{a}  \n");
        let f = PasswordFile::parse("pw", &text).unwrap();
        assert_eq!(f.len(), 2);
        assert!(f.verify("alice", b"pa"));
        assert!(f.verify("bob", b"pb"));
        assert!(!f.verify("alice", b"pb"));
        assert!(!f.verify("carol", b"pa"));
        assert_eq!(f.to_text(), format!("alice:{a}\nbob:{b}\n"));
        assert_eq!(PasswordFile::parse("pw", &f.to_text()).unwrap(), f);
    }

    #[test]
    fn bad_lines_name_the_file_and_line() {
        let a = hash_password(b"pa", &SALT, HashCost::MINIMAL);
        let cases = [
            ("alice", "expected `user:hash`"),
            ("alice:plaintext", "not a PHC string"),
            (
                ":$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
                "invalid user name",
            ),
            (
                "alice:$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                "unsupported hash algorithm",
            ),
            (
                &*format!("alice:{a}\nalice:{a}"),
                "already defined on line 2",
            ),
        ];
        for (text, want) in cases {
            let text = format!("# header\n{text}");
            let e = PasswordFile::parse("/etc/pw", &text).unwrap_err();
            let shown = e.to_string();
            assert!(shown.starts_with("/etc/pw:"), "{shown}");
            assert!(shown.contains(want), "{shown} should say {want}");
            assert!(e.line >= 2, "{shown}");
        }
    }

    #[test]
    fn debug_output_hides_hashes() {
        let mut f = PasswordFile::default();
        f.set("alice", hash_password(b"pa", &SALT, HashCost::MINIMAL));
        let shown = format!("{f:?}");
        assert!(
            shown.contains("alice") && !shown.contains("argon2"),
            "{shown}"
        );
    }
}
