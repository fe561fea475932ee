//! The dial plan: which SIP URIs a client may call. sono is no open relay, so
//! nothing is dialled unless a rule allows it; the default allows only loopback
//! targets. Deny rules win over allow rules. Patterns are regular expressions
//! matched against the whole normalised URI (`sip:user@host:port;params`).

use regex::Regex;

use crate::uri::{SipUri, UriError};

/// What the plan says of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed(SipUri),
    /// Not allowed; the reason names the rule or its absence.
    Forbidden(String),
    /// Not a URI sono can call.
    Invalid(UriError),
}

#[derive(Debug, Clone)]
pub struct DialPlan {
    allow_loopback: bool,
    allow: Vec<Regex>,
    deny: Vec<Regex>,
}

impl DialPlan {
    /// Compiles the rules; a bad pattern is an error naming it.
    pub fn new(
        allow_loopback: bool,
        allow: &[String],
        deny: &[String],
    ) -> Result<DialPlan, String> {
        let compile = |patterns: &[String]| -> Result<Vec<Regex>, String> {
            patterns
                .iter()
                .map(|p| {
                    Regex::new(&format!("^(?:{p})$"))
                        .map_err(|e| format!("dial plan pattern {p:?}: {e}"))
                })
                .collect()
        };
        Ok(DialPlan {
            allow_loopback,
            allow: compile(allow)?,
            deny: compile(deny)?,
        })
    }

    pub fn check(&self, target: &str) -> Verdict {
        let uri = match SipUri::parse(target) {
            Ok(u) => u,
            Err(e) => return Verdict::Invalid(e),
        };
        let text = uri.to_string();
        if let Some(rule) = self.deny.iter().find(|r| r.is_match(&text)) {
            return Verdict::Forbidden(format!("{text} matches deny rule {:?}", strip(rule)));
        }
        if self.allow_loopback && uri.is_loopback() {
            return Verdict::Allowed(uri);
        }
        if self.allow.iter().any(|r| r.is_match(&text)) {
            return Verdict::Allowed(uri);
        }
        Verdict::Forbidden(format!("{text} is not allowed by the dial plan"))
    }
}

fn strip(r: &Regex) -> &str {
    let s = r.as_str();
    s.strip_prefix("^(?:")
        .and_then(|s| s.strip_suffix(")$"))
        .unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_allows_only_loopback() {
        let plan = DialPlan::new(true, &[], &[]).unwrap();
        assert!(matches!(
            plan.check("sip:bob@127.0.0.1:5080"),
            Verdict::Allowed(_)
        ));
        assert!(matches!(plan.check("sip:bob@[::1]"), Verdict::Allowed(_)));
        assert!(matches!(
            plan.check("sip:bob@example.com"),
            Verdict::Forbidden(_)
        ));
        assert!(matches!(
            plan.check("sip:bob@127.0.0.1.evil.example"),
            Verdict::Forbidden(_)
        ));
        assert!(matches!(
            plan.check("sip:bob@10.0.0.1"),
            Verdict::Forbidden(_)
        ));
        assert!(matches!(plan.check("tel:+15551234"), Verdict::Invalid(_)));
    }

    #[test]
    fn allow_and_deny_rules() {
        let plan = DialPlan::new(
            false,
            &[r"sip:[0-9]+@pbx\.example\.com(:5060)?".into()],
            &[r"sip:900[0-9]*@.*".into()],
        )
        .unwrap();
        assert!(matches!(
            plan.check("sip:1234@PBX.example.com"),
            Verdict::Allowed(_)
        ));
        assert!(matches!(
            plan.check("sip:alice@pbx.example.com"),
            Verdict::Forbidden(_)
        ));
        assert!(matches!(
            plan.check("sip:1234@pbx.example.com.evil"),
            Verdict::Forbidden(_)
        ));
        match plan.check("sip:9001@pbx.example.com") {
            Verdict::Forbidden(reason) => assert!(reason.contains("deny rule"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(plan.check("sip:bob@127.0.0.1"), Verdict::Forbidden(_)),
            "loopback off"
        );
        assert!(DialPlan::new(true, &["(".into()], &[]).is_err());
    }

    #[test]
    fn multi_byte_targets_are_invalid_not_a_panic() {
        let plan = DialPlan::new(true, &[], &[]).unwrap();
        for s in ["ï^\u{9fff7}k", "sï", "SIPS\u{e9}", "\u{e9}@127.0.0.1"] {
            assert!(!matches!(plan.check(s), Verdict::Allowed(_)), "{s:?}");
        }
    }
}
