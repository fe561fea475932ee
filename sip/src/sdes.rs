//! SDES key exchange for SRTP in SDP (RFC 4568): the `a=crypto` attribute,
//! parsed and written, for the two suites sono offers
//! (AES_CM_128_HMAC_SHA1_80 and _32, RFC 4568 §6.2, RFC 3711). A key is
//! 30 bytes, the master key (16) and master salt (14), as `inline:` base64
//! (§6.1). Anything else in an offer (other suites, several keys, unknown
//! session parameters we must understand) is refused with a reason, so the
//! offer-answer logic can skip that line and answer another or 488.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Master key and salt together, as `inline:` carries them.
pub const KEY_AND_SALT: usize = 30;
/// The longest attribute value we read (a real one is under 100 bytes).
const MAX_LEN: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CryptoSuite {
    AesCm128HmacSha1_80,
    AesCm128HmacSha1_32,
}

impl CryptoSuite {
    pub fn name(self) -> &'static str {
        match self {
            CryptoSuite::AesCm128HmacSha1_80 => "AES_CM_128_HMAC_SHA1_80",
            CryptoSuite::AesCm128HmacSha1_32 => "AES_CM_128_HMAC_SHA1_32",
        }
    }

    fn parse(name: &str) -> Option<CryptoSuite> {
        match name {
            "AES_CM_128_HMAC_SHA1_80" => Some(CryptoSuite::AesCm128HmacSha1_80),
            "AES_CM_128_HMAC_SHA1_32" => Some(CryptoSuite::AesCm128HmacSha1_32),
            _ => None,
        }
    }
}

/// One `a=crypto` line.
#[derive(Clone, PartialEq, Eq)]
pub struct CryptoAttribute {
    /// Chosen by the offerer; the answer repeats it (§5.1.2).
    pub tag: u32,
    pub suite: CryptoSuite,
    pub key: [u8; KEY_AND_SALT],
    /// `|2^20` or `|1048576`: packets under this key, if given.
    pub lifetime: Option<u64>,
    /// `|1:4`: the MKI's value and length in bytes, if given.
    pub mki: Option<(u32, u8)>,
}

/// The key never reaches a log through `Debug`.
impl std::fmt::Debug for CryptoAttribute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptoAttribute")
            .field("tag", &self.tag)
            .field("suite", &self.suite)
            .field("key", &"<hidden>")
            .field("lifetime", &self.lifetime)
            .field("mki", &self.mki)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdesError {
    #[error("a=crypto is malformed: {0}")]
    Malformed(&'static str),
    #[error("crypto suite {0:?} is not one sono speaks")]
    UnknownSuite(String),
    #[error("a=crypto key parameter: {0}")]
    BadKey(&'static str),
    #[error("a=crypto session parameter {0:?} is not supported")]
    SessionParameter(String),
}

impl CryptoAttribute {
    /// Parses the value of an `a=crypto:` attribute (what follows the colon).
    pub fn parse(value: &str) -> Result<CryptoAttribute, SdesError> {
        if value.len() > MAX_LEN {
            return Err(SdesError::Malformed("too long"));
        }
        let mut fields = value.split_ascii_whitespace();
        let tag = fields
            .next()
            .and_then(|t| (t.len() <= 9).then(|| t.parse::<u32>().ok()).flatten())
            .ok_or(SdesError::Malformed(
                "the tag is not a number of up to 9 digits",
            ))?;
        let suite_name = fields
            .next()
            .ok_or(SdesError::Malformed("no crypto suite"))?;
        let suite = CryptoSuite::parse(suite_name)
            .ok_or_else(|| SdesError::UnknownSuite(suite_name.to_owned()))?;
        let key_params = fields
            .next()
            .ok_or(SdesError::Malformed("no key parameters"))?;
        // Session parameters (§6.3): unknown ones we would have to apply
        // (UNENCRYPTED_SRTP and friends) make the line unusable.
        if let Some(param) = fields.next() {
            return Err(SdesError::SessionParameter(param.to_owned()));
        }
        if key_params.contains(';') {
            return Err(SdesError::BadKey("several keys are not supported"));
        }
        let inline = key_params
            .strip_prefix("inline:")
            .ok_or(SdesError::BadKey("only inline: keys are supported"))?;
        let mut parts = inline.split('|');
        let encoded = parts.next().unwrap_or_default();
        let decoded = STANDARD
            .decode(encoded)
            .map_err(|_| SdesError::BadKey("the key is not base64"))?;
        let key: [u8; KEY_AND_SALT] = decoded
            .try_into()
            .map_err(|_| SdesError::BadKey("the key and salt are not 30 bytes"))?;
        let (mut lifetime, mut mki) = (None, None);
        for part in parts {
            if let Some((value, length)) = part.split_once(':') {
                if mki.is_some() {
                    return Err(SdesError::BadKey("more than one MKI"));
                }
                let value: u32 = value.parse().map_err(|_| SdesError::BadKey("MKI value"))?;
                let length: u8 = length
                    .parse()
                    .ok()
                    .filter(|l| (1..=128).contains(l))
                    .ok_or(SdesError::BadKey("MKI length"))?;
                mki = Some((value, length));
            } else {
                if lifetime.is_some() {
                    return Err(SdesError::BadKey("more than one lifetime"));
                }
                lifetime = Some(parse_lifetime(part)?);
            }
        }
        Ok(CryptoAttribute {
            tag,
            suite,
            key,
            lifetime,
            mki,
        })
    }

    /// The attribute's value (without `a=crypto:`).
    pub fn to_value(&self) -> String {
        let mut out = format!(
            "{} {} inline:{}",
            self.tag,
            self.suite.name(),
            STANDARD.encode(self.key)
        );
        if let Some(lifetime) = self.lifetime {
            out.push_str(&format!("|{lifetime}"));
        }
        if let Some((value, length)) = self.mki {
            out.push_str(&format!("|{value}:{length}"));
        }
        out
    }
}

/// `2^20` or a decimal count, at most 2^48 (SRTP's limit, RFC 3711 §9.2).
fn parse_lifetime(text: &str) -> Result<u64, SdesError> {
    let bad = SdesError::BadKey("lifetime");
    let value = match text.strip_prefix("2^") {
        Some(exp) => {
            let exp: u32 = exp.parse().map_err(|_| bad.clone())?;
            if exp > 48 {
                return Err(bad);
            }
            1u64 << exp
        }
        None => text.parse::<u64>().map_err(|_| bad.clone())?,
    };
    if value == 0 || value > 1 << 48 {
        return Err(bad);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4568 §5.1.1's example offer line.
    const RFC_EXAMPLE: &str =
        "1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4";

    #[test]
    fn the_rfc_example_is_read_and_written_back() {
        let c = CryptoAttribute::parse(RFC_EXAMPLE).unwrap();
        assert_eq!(c.tag, 1);
        assert_eq!(c.suite, CryptoSuite::AesCm128HmacSha1_80);
        assert_eq!(c.lifetime, Some(1 << 20));
        assert_eq!(c.mki, Some((1, 4)));
        // coreutils' base64 -d of the key: 3d2d6e40…5051, 30 bytes.
        assert_eq!(&c.key[..4], b"=-n@");
        assert_eq!(&c.key[26..], b"qiPQ");
        let again = CryptoAttribute::parse(&c.to_value()).unwrap();
        assert_eq!(again, c);
        assert!(
            !format!("{c:?}").contains("PS1u"),
            "the key stays out of Debug"
        );
    }

    #[test]
    fn what_sono_cannot_honour_is_refused_with_a_reason() {
        let key = "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
        let cases = [
            ("", "no tag"),
            ("x AES_CM_128_HMAC_SHA1_80 k", "tag"),
            ("1234567890 AES_CM_128_HMAC_SHA1_80 k", "tag too long"),
            ("1 F8_128_HMAC_SHA1_80 inline:x", "suite"),
            ("1 AES_CM_128_HMAC_SHA1_32", "no key"),
            ("1 AES_CM_128_HMAC_SHA1_32 inline:AAAA", "short key"),
            ("1 AES_CM_128_HMAC_SHA1_32 inline:!!!!", "not base64"),
            ("1 AES_CM_128_HMAC_SHA1_32 uri:http://x", "not inline"),
        ];
        for (line, why) in cases {
            assert!(CryptoAttribute::parse(line).is_err(), "{why}: {line}");
        }
        for extra in [
            " UNENCRYPTED_SRTP",
            "|2^49",
            "|0",
            "|1:0",
            "|1:4|2:4",
            "|2^20|2^20",
            ";inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
        ] {
            let line = format!("1 AES_CM_128_HMAC_SHA1_32 {key}{extra}");
            assert!(CryptoAttribute::parse(&line).is_err(), "{line}");
        }
        assert!(CryptoAttribute::parse(&format!("1 AES_CM_128_HMAC_SHA1_32 {key}")).is_ok());
        assert!(CryptoAttribute::parse(&"1".repeat(2000)).is_err());
    }
}
