//! The dial plan: which SIP URIs a client may call. sono is no open relay, so
//! nothing is dialled unless a rule allows it; the default allows only loopback
//! targets. Deny rules win over allow rules. Patterns are regular expressions
//! matched against the whole normalised URI (`sip:user@host:port;params`).
//!
//! The plan judges where a request will really go, not only what the URI
//! looks like (RFC 3263 §4): a `maddr` parameter sends the request to its
//! address instead of the host, so both must be allowed; URI headers
//! (`?Route=…`, §19.1.1) could add hops no rule sees, so they are refused.
//! A remote target learnt later (a Contact, a Record-Route) is judged by
//! [`TargetGuard`].

use regex::Regex;

use crate::dialog::{Dialog, RequestContext};
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
        if uri.headers().is_some() {
            return Verdict::Forbidden(format!(
                "{text}: URI headers (?...) are not dialled: they could add hops the dial plan cannot judge"
            ));
        }
        let destination = match uri.destination() {
            Ok(d) => d,
            Err(e) => return Verdict::Forbidden(format!("{text}: unusable maddr ({e})")),
        };
        // Anything else that calls itself maddr (in the user part, say) is
        // not judged: refused.
        let maddrs = uri.maddrs().len();
        let decoded = crate::uri::percent_decoded(&text).to_ascii_lowercase();
        if maddrs == 0 && decoded.contains("maddr") || maddrs > 1 {
            return Verdict::Forbidden(format!(
                "{text}: maddr spelt in a way the dial plan cannot judge"
            ));
        }
        if let Err(reason) = self.judge(&uri) {
            return Verdict::Forbidden(reason);
        }
        if destination != uri {
            if let Err(reason) = self.judge(&destination) {
                return Verdict::Forbidden(format!(
                    "{text} would be sent to {} (maddr): {reason}",
                    destination.host
                ));
            }
        }
        Verdict::Allowed(uri)
    }

    /// The rules alone, on one URI.
    fn judge(&self, uri: &SipUri) -> Result<(), String> {
        let text = uri.to_string();
        if let Some(rule) = self.deny.iter().find(|r| r.is_match(&text)) {
            return Err(format!("{text} matches deny rule {:?}", strip(rule)));
        }
        if self.allow_loopback && uri.is_loopback() {
            return Ok(());
        }
        if self.allow.iter().any(|r| r.is_match(&text)) {
            return Ok(());
        }
        Err(format!("{text} is not allowed by the dial plan"))
    }
}

/// Judges the addresses a call's requests inside its dialog go to (RFC 3261
/// §12.2.1.1: the first route, or the remote target): the address the
/// call's first request went to (or came from) is trusted, since the plan or
/// the operator chose it; anything else must pass the dial plan. So a peer
/// cannot turn sono into a relay by answering with a Contact elsewhere.
#[derive(Debug, Clone, Copy)]
pub struct TargetGuard<'a> {
    pub plan: &'a DialPlan,
    /// Where the INVITE went (outbound) or came from (inbound).
    pub trusted: std::net::SocketAddr,
}

impl TargetGuard<'_> {
    /// `Ok` if a request may be sent to `address` for `uri`.
    pub fn check(&self, uri: &str, address: std::net::SocketAddr) -> Result<(), String> {
        if address == self.trusted {
            return Ok(());
        }
        match self.plan.check(uri) {
            Verdict::Allowed(_) => Ok(()),
            Verdict::Forbidden(reason) => Err(reason),
            Verdict::Invalid(e) => Err(format!("{uri}: {e}")),
        }
    }

    /// Judges where the next request inside `dialog` would go (its next
    /// hop, as [`Dialog::next_hop`] routes it); the refused URI and why.
    pub fn judge(&self, dialog: &Dialog, ctx: &RequestContext<'_>) -> Result<(), (String, String)> {
        let (route, to) = dialog.next_hop(ctx);
        self.check(&route.next_hop, to)
            .map_err(|why| (route.next_hop, why))
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

    #[test]
    fn maddr_must_be_allowed_too_in_every_spelling() {
        let plan = DialPlan::new(true, &[], &[]).unwrap();
        for target in [
            "sip:900123@127.0.0.1;maddr=203.0.113.1",
            "sip:900123@127.0.0.1;MADDR=203.0.113.1",
            "sip:900123@127.0.0.1;transport=udp;maddr=203.0.113.1;lr",
            "sip:900123@127.0.0.1;m%61ddr=203.0.113.1",
            "sip:900123@127.0.0.1;maddr=127.0.0.1;maddr=203.0.113.1",
            "sip:900123@127.0.0.1;maddr=%32%30%33.0.113.1",
            "sip:900123;maddr=203.0.113.1@127.0.0.1",
            "sips:900123@[::1];maddr=203.0.113.1",
            "sip:900123@127.0.0.1?Route=%3Csip:203.0.113.1;lr%3E",
        ] {
            match plan.check(target) {
                Verdict::Forbidden(reason) => assert!(!reason.is_empty()),
                other => panic!("{target}: {other:?}"),
            }
        }
        assert!(matches!(
            plan.check("sip:900123@127.0.0.1;maddr=127.0.0.2"),
            Verdict::Allowed(_)
        ));
        // An allow rule for the host does not let maddr go elsewhere.
        let plan = DialPlan::new(false, &[r"sip:[0-9]+@pbx\.example\.com.*".into()], &[]).unwrap();
        assert!(matches!(
            plan.check("sip:1@pbx.example.com;maddr=203.0.113.1"),
            Verdict::Forbidden(r) if r.contains("maddr")
        ));
    }

    #[test]
    fn the_guard_trusts_the_first_hop_and_judges_the_rest() {
        let plan = DialPlan::new(false, &[r"sip:.*@127\.0\.0\.1:5080".into()], &[]).unwrap();
        let guard = TargetGuard {
            plan: &plan,
            trusted: "127.0.0.1:5070".parse().unwrap(),
        };
        assert!(guard
            .check("sip:a@proxy.example", "127.0.0.1:5070".parse().unwrap())
            .is_ok());
        assert!(guard
            .check("sip:b@127.0.0.1:5080", "127.0.0.1:5080".parse().unwrap())
            .is_ok());
        assert!(guard
            .check(
                "sip:900123@203.0.113.1:5060",
                "203.0.113.1:5060".parse().unwrap()
            )
            .is_err());
    }
}
