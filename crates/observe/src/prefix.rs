//! The log prefix the compile writes on every Palisade log rule, `pal1 <kind> <id>`, and its parser.
//!
//! The kernel caps a prefix at 127 bytes and a Kubernetes name can be longer, so a prefix carries a compact
//! id (32 bits, 8 lowercase hex digits) that the compile maps back to a pod and direction or a policy rule.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The version tag every Palisade prefix starts with.
pub const PREFIX_TAG: &str = "pal1";

/// What a log rule logs: where in the table it sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    /// A pod chain's final drop: no policy admitted the packet (the id names pod and direction).
    D,
    /// A packet whose source address is not its pod's on that interface (anti-spoofing).
    S,
    /// A packet conntrack finds invalid (`ct state invalid`).
    I,
    /// An allowed new flow (flow log; the id names policy, direction and rule index).
    A,
    /// An audit sample taken before the pod chain's jumps (allowed and denied flows alike).
    U,
}

impl Kind {
    /// Every kind, in prefix-letter order.
    pub const ALL: [Kind; 5] = [Kind::D, Kind::S, Kind::I, Kind::A, Kind::U];

    /// The prefix letter.
    pub fn letter(self) -> char {
        match self {
            Kind::D => 'D',
            Kind::S => 'S',
            Kind::I => 'I',
            Kind::A => 'A',
            Kind::U => 'U',
        }
    }

    /// The kind a prefix letter names.
    pub fn from_letter(c: char) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.letter() == c)
    }

    /// What the kernel did with a packet logged here, when the log point alone says so (an audit sample
    /// is taken before the verdict, so only the engine knows).
    pub fn kernel_verdict(self) -> Option<crate::record::Verdict> {
        match self {
            Kind::D | Kind::S | Kind::I => Some(crate::record::Verdict::Denied),
            Kind::A => Some(crate::record::Verdict::Allowed),
            Kind::U => None,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.letter())
    }
}

/// A parsed prefix: the log point's kind and its compact id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Prefix {
    pub kind: Kind,
    pub id: u32,
}

impl Prefix {
    pub fn new(kind: Kind, id: u32) -> Self {
        Prefix { kind, id }
    }

    /// Parses `pal1 <kind> <id>` exactly: single spaces, one of the kind letters, 8 lowercase hex digits,
    /// nothing after (the kernel's trailing NUL is removed before this).
    pub fn parse(text: &[u8]) -> Result<Prefix, PrefixError> {
        let bad = |reason: &'static str| PrefixError { prefix: String::from_utf8_lossy(text).into_owned(), reason };
        let rest = text.strip_prefix(PREFIX_TAG.as_bytes()).ok_or_else(|| bad("does not start with `pal1 `"))?;
        let rest = rest.strip_prefix(b" ").ok_or_else(|| bad("does not start with `pal1 `"))?;
        let (&letter, rest) = rest.split_first().ok_or_else(|| bad("has no kind"))?;
        let kind =
            Kind::from_letter(char::from(letter)).ok_or_else(|| bad("has an unknown kind (not D, S, I, A or U)"))?;
        let hex = rest.strip_prefix(b" ").ok_or_else(|| bad("has no space after the kind"))?;
        if hex.len() != 8 || !hex.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)) {
            return Err(bad("has an id that is not 8 lowercase hex digits"));
        }
        let id = hex.iter().fold(0u32, |acc, &b| {
            let digit = if b.is_ascii_digit() { b - b'0' } else { b - b'a' + 10 };
            (acc << 4) | u32::from(digit)
        });
        Ok(Prefix { kind, id })
    }
}

/// Renders the prefix exactly as the compile writes it: `pal1 D 0000abcd`.
impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX_TAG} {} {:08x}", self.kind, self.id)
    }
}

impl FromStr for Prefix {
    type Err = PrefixError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Prefix::parse(s.as_bytes())
    }
}

/// A prefix that is not Palisade's grammar (another program's log rule in the same group, or a newer format).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("log prefix {prefix:?} {reason}")]
pub struct PrefixError {
    /// The prefix as received (lossy UTF-8).
    pub prefix: String,
    pub reason: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_kind() {
        for kind in Kind::ALL {
            for id in [0, 1, 0xabcd, 0x9c1e_04aa, u32::MAX] {
                let p = Prefix::new(kind, id);
                let text = p.to_string();
                assert_eq!(text.len(), 15);
                assert_eq!(Prefix::parse(text.as_bytes()), Ok(p), "{text}");
            }
        }
        assert_eq!(Prefix::new(Kind::D, 0xabcd).to_string(), "pal1 D 0000abcd");
    }

    #[test]
    fn rejects_what_is_not_the_grammar() {
        for (text, reason) in [
            ("", "does not start with `pal1 `"),
            ("pal2 D 0000abcd", "does not start with `pal1 `"),
            ("pal1D 0000abcd", "does not start with `pal1 `"),
            ("pal1 ", "has no kind"),
            ("pal1 X 0000abcd", "has an unknown kind (not D, S, I, A or U)"),
            ("pal1 d 0000abcd", "has an unknown kind (not D, S, I, A or U)"),
            ("pal1 D", "has no space after the kind"),
            ("pal1 D  0000abcd", "has an id that is not 8 lowercase hex digits"),
            ("pal1 D 0000ABCD", "has an id that is not 8 lowercase hex digits"),
            ("pal1 D 0000abc", "has an id that is not 8 lowercase hex digits"),
            ("pal1 D 0000abcde", "has an id that is not 8 lowercase hex digits"),
            ("pal1 D 0000abcd ", "has an id that is not 8 lowercase hex digits"),
            ("pal1 D 0000abcg", "has an id that is not 8 lowercase hex digits"),
            ("DROP by policy ns/name", "does not start with `pal1 `"),
        ] {
            let e = Prefix::parse(text.as_bytes()).unwrap_err();
            assert_eq!(e.reason, reason, "{text:?}");
            assert_eq!(e.prefix, text);
        }
        let e = Prefix::parse(b"pal1 D \xff\xfe").unwrap_err();
        assert_eq!(
            e.to_string(),
            "log prefix \"pal1 D \u{fffd}\u{fffd}\" has an id that is not 8 lowercase hex digits"
        );
    }
}
