//! Digest authentication, client side, as SIP uses it (RFC 3261 §22.4): parsing a
//! `WWW-Authenticate`/`Proxy-Authenticate` challenge and answering it with an
//! `Authorization`/`Proxy-Authorization` value. RFC 2617 (MD5, `qop=auth`,
//! `-sess`), RFC 7616 and RFC 8760 (SHA-256 and SHA-512-256 names; SHA-256 here).
//!
//! Written here rather than taken from rsip, whose helper prints the nonce count
//! in decimal and gets `-sess` wrong. The nonce count is kept per challenge by
//! [`DigestSession`]; the client nonce is an input, so the module stays pure.

use std::fmt::Write;

use md5::Md5;
use sha2::{Digest as _, Sha256};

/// The hash a challenge asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    fn parse(token: &str) -> Option<Algorithm> {
        Some(match token.to_ascii_uppercase().as_str() {
            "MD5" => Algorithm::Md5,
            "MD5-SESS" => Algorithm::Md5Sess,
            "SHA-256" => Algorithm::Sha256,
            "SHA-256-SESS" => Algorithm::Sha256Sess,
            _ => return None,
        })
    }

    /// The token as written in headers.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn is_sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Lower-case hex of the hash of `data`.
    fn hex(self, data: &str) -> String {
        let bytes: Vec<u8> = match self {
            Algorithm::Md5 | Algorithm::Md5Sess => Md5::digest(data.as_bytes()).to_vec(),
            Algorithm::Sha256 | Algorithm::Sha256Sess => Sha256::digest(data.as_bytes()).to_vec(),
        };
        bytes
            .iter()
            .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
    }
}

/// Why a challenge cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("the challenge is not a Digest challenge")]
    NotDigest,
    #[error("the challenge has no {0}")]
    Missing(&'static str),
    #[error("unsupported digest algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("the challenge offers only qop {0:?}; sono supports auth")]
    UnsupportedQop(String),
    #[error("malformed challenge: {0}")]
    Malformed(&'static str),
}

/// A parsed Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// Whether the server offered `qop=auth` (RFC 2617 §3.2.1); without qop the
    /// RFC 2069 form is used.
    pub qop_auth: bool,
    /// The nonce was stale: retry with the new one without asking the user again.
    pub stale: bool,
}

impl Challenge {
    /// Parses a header value such as
    /// `Digest realm="atlanta.com", nonce="84a4cc6f", qop="auth", algorithm=MD5`.
    pub fn parse(value: &str) -> Result<Challenge, DigestError> {
        let value = value.trim();
        let (scheme, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("digest") {
            return Err(DigestError::NotDigest);
        }
        let params = parse_params(rest)?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        };
        let algorithm = match get("algorithm") {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(a)
                .ok_or_else(|| DigestError::UnsupportedAlgorithm(a.to_owned()))?,
        };
        let qop_auth = match get("qop") {
            None => false,
            Some(q) => {
                if !q.split(',').any(|t| t.trim().eq_ignore_ascii_case("auth")) {
                    return Err(DigestError::UnsupportedQop(q.to_owned()));
                }
                true
            }
        };
        Ok(Challenge {
            realm: get("realm")
                .ok_or(DigestError::Missing("realm"))?
                .to_owned(),
            nonce: get("nonce")
                .ok_or(DigestError::Missing("nonce"))?
                .to_owned(),
            opaque: get("opaque").map(str::to_owned),
            algorithm,
            qop_auth,
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
        })
    }
}

/// `name=value` pairs separated by commas; values are tokens or quoted strings
/// with backslash escapes (RFC 2617 §1.2, RFC 3261 §25.1 quoted-string).
fn parse_params(s: &str) -> Result<Vec<(String, String)>, DigestError> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            name.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(DigestError::Malformed("a parameter without a value"));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err(DigestError::Malformed("an unterminated quoted string")),
                    Some('"') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => {
                            return Err(DigestError::Malformed("an unterminated quoted string"))
                        }
                    },
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' || c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        if name.is_empty() {
            return Err(DigestError::Malformed("a parameter without a name"));
        }
        out.push((name, value));
    }
}

/// Who answers the challenge.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

/// Answers one challenge, counting nonces as RFC 2617 §3.2.2 asks.
#[derive(Debug, Clone)]
pub struct DigestSession {
    challenge: Challenge,
    nonce_count: u32,
}

impl DigestSession {
    pub fn new(challenge: Challenge) -> DigestSession {
        DigestSession {
            challenge,
            nonce_count: 0,
        }
    }

    pub fn challenge(&self) -> &Challenge {
        &self.challenge
    }

    /// The `Authorization` value for one request. `cnonce` must be fresh and
    /// unpredictable (the caller draws it); it is used only when qop is offered.
    pub fn authorize(
        &mut self,
        credentials: &Credentials,
        method: &str,
        uri: &str,
        cnonce: &str,
    ) -> String {
        self.nonce_count = self.nonce_count.wrapping_add(1);
        let c = &self.challenge;
        let alg = c.algorithm;
        let nc = format!("{:08x}", self.nonce_count);
        let mut ha1 = alg.hex(&format!(
            "{}:{}:{}",
            credentials.username, c.realm, credentials.password
        ));
        if alg.is_sess() {
            ha1 = alg.hex(&format!("{ha1}:{}:{cnonce}", c.nonce));
        }
        let ha2 = alg.hex(&format!("{method}:{uri}"));
        let response = if c.qop_auth {
            alg.hex(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", c.nonce))
        } else {
            alg.hex(&format!("{ha1}:{}:{ha2}", c.nonce))
        };
        let mut v = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", algorithm={}",
            quote(&credentials.username),
            quote(&c.realm),
            quote(&c.nonce),
            quote(uri),
            response,
            alg.name()
        );
        if c.qop_auth {
            let _ = write!(v, ", qop=auth, nc={nc}, cnonce=\"{}\"", quote(cnonce));
        }
        if let Some(opaque) = &c.opaque {
            let _ = write!(v, ", opaque=\"{}\"", quote(opaque));
        }
        v
    }
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param<'a>(header: &'a str, name: &str) -> &'a str {
        let start = header
            .find(&format!("{name}="))
            .map(|i| i + name.len() + 1)
            .expect(name);
        let rest = &header[start..];
        let rest = rest.strip_prefix('"').unwrap_or(rest);
        let end = rest.find(['"', ',']).unwrap_or(rest.len());
        &rest[..end]
    }

    #[test]
    fn rfc_2617_example() {
        // RFC 2617 §3.5 (the method is GET, the password "Circle Of Life").
        let c = Challenge::parse(
            "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .unwrap();
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert!(c.qop_auth);
        let creds = Credentials {
            username: "Mufasa".into(),
            password: "Circle Of Life".into(),
        };
        let mut s = DigestSession::new(c);
        let v = s.authorize(&creds, "GET", "/dir/index.html", "0a4f113b");
        assert_eq!(param(&v, "response"), "6629fae49393a05397450978507c4ef1");
        assert_eq!(param(&v, "nc"), "00000001");
        assert_eq!(param(&v, "opaque"), "5ccc069c403ebaf9f0171e9517f40e41");
    }

    #[test]
    fn rfc_7616_examples_md5_and_sha256() {
        let creds = Credentials {
            username: "Mufasa".into(),
            password: "Circle of Life".into(),
        };
        let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        for (alg, expected) in [
            ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
            (
                "SHA-256",
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let c = Challenge::parse(&format!(
                "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm={alg}, \
                 nonce=\"{nonce}\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
            ))
            .unwrap();
            let v = DigestSession::new(c).authorize(&creds, "GET", "/dir/index.html", cnonce);
            assert_eq!(param(&v, "response"), expected, "{alg}");
        }
    }

    #[test]
    fn nonce_count_is_hex_and_counts_up() {
        let c = Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=auth").unwrap();
        let creds = Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        let mut s = DigestSession::new(c);
        for _ in 0..9 {
            s.authorize(&creds, "REGISTER", "sip:r", "c");
        }
        assert_eq!(
            param(&s.authorize(&creds, "REGISTER", "sip:r", "c"), "nc"),
            "0000000a"
        );
    }

    #[test]
    fn sess_hashes_the_client_nonce_into_ha1() {
        let creds = Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        let plain =
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=auth, algorithm=MD5").unwrap();
        let sess =
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=auth, algorithm=MD5-sess")
                .unwrap();
        let a = DigestSession::new(plain).authorize(&creds, "INVITE", "sip:b@x", "c");
        let b = DigestSession::new(sess).authorize(&creds, "INVITE", "sip:b@x", "c");
        let ha1 = Algorithm::Md5.hex("u:r:p");
        let ha1_sess = Algorithm::Md5.hex(&format!("{ha1}:n:c"));
        let ha2 = Algorithm::Md5.hex("INVITE:sip:b@x");
        let expected = Algorithm::Md5.hex(&format!("{ha1_sess}:n:00000001:c:auth:{ha2}"));
        assert_eq!(param(&b, "response"), expected);
        assert_ne!(param(&a, "response"), param(&b, "response"));
        assert!(b.contains("algorithm=MD5-sess"));
    }

    #[test]
    fn rfc_2069_form_without_qop() {
        let c = Challenge::parse("Digest realm=\"r\", nonce=\"n\"").unwrap();
        let creds = Credentials {
            username: "u".into(),
            password: "p".into(),
        };
        let v = DigestSession::new(c).authorize(&creds, "REGISTER", "sip:r", "c");
        let expected = Algorithm::Md5.hex(&format!(
            "{}:n:{}",
            Algorithm::Md5.hex("u:r:p"),
            Algorithm::Md5.hex("REGISTER:sip:r")
        ));
        assert_eq!(param(&v, "response"), expected);
        assert!(!v.contains("nc=") && !v.contains("cnonce"));
    }

    #[test]
    fn refuses_what_it_cannot_answer() {
        assert_eq!(
            Challenge::parse("Basic realm=\"r\""),
            Err(DigestError::NotDigest)
        );
        assert_eq!(
            Challenge::parse("Digest nonce=\"n\""),
            Err(DigestError::Missing("realm"))
        );
        assert!(matches!(
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256"),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\""),
            Err(DigestError::UnsupportedQop(_))
        ));
        assert!(matches!(
            Challenge::parse("Digest realm=\"r"),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            Challenge::parse("Digest realm"),
            Err(DigestError::Malformed(_))
        ));
        let c = Challenge::parse("digest REALM=\"a\\\"b\", nonce=n, stale=TRUE").unwrap();
        assert_eq!(c.realm, "a\"b");
        assert!(c.stale);
        let creds = Credentials {
            username: "u".into(),
            password: "secret".into(),
        };
        assert!(!format!("{creds:?}").contains("secret"));
    }
}
