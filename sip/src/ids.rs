//! Random identifiers: tags (RFC 3261 §19.3), branches with the magic cookie
//! (§8.1.1.7), Call-IDs (§8.1.1.4) and digest cnonces. 64 random bits each,
//! from the thread's CSPRNG, so they cannot be guessed by an off-path attacker.

/// The RFC 3261 magic cookie every branch starts with (§8.1.1.7).
pub const BRANCH_COOKIE: &str = "z9hG4bK";

/// A fresh random token: 16 hex digits.
pub fn random_token() -> String {
    format!("{:016x}", rand::random::<u64>())
}
