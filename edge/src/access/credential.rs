//! A credential as the door sees it: the card data a reader delivered, decoded to a
//! facility code and a card number under a known bit layout.
//!
//! Written `BITS:FACILITY:CARD` (`26:18:4242`) in `enroll add --credential`, in JSON
//! credential lines and in the enrolment store; the bit count keeps a 26-bit card and a
//! 34-bit card with the same numbers apart.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One decoded credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Credential {
    /// Length of the frame it came in (26, 34, or a configured raw layout's length).
    pub bits: u32,
    pub facility: u64,
    pub card: u64,
}

impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.bits, self.facility, self.card)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("credential \"{text}\": {problem} — write BITS:FACILITY:CARD, e.g. 26:18:4242")]
pub struct CredentialParseError {
    pub text: String,
    pub problem: String,
}

impl FromStr for Credential {
    type Err = CredentialParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |problem: String| CredentialParseError {
            text: s.chars().take(64).collect(),
            problem,
        };
        let parts: Vec<&str> = s.trim().split(':').collect();
        let [bits, facility, card] = parts.as_slice() else {
            return Err(err(format!("{} fields, expected 3", parts.len())));
        };
        let num = |name: &str, v: &str| {
            v.parse::<u64>()
                .map_err(|_| err(format!("{name} \"{v}\" is not a whole number")))
        };
        let bits = num("BITS", bits)?;
        let (facility, card) = (num("FACILITY", facility)?, num("CARD", card)?);
        if !(2..=64).contains(&bits) {
            return Err(err(format!("BITS {bits} is not in 2..=64")));
        }
        Ok(Credential {
            bits: bits as u32,
            facility,
            card,
        })
    }
}

impl Serialize for Credential {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Credential {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What a reader (or an integration) delivered: a credential, or the reason none could be
/// read. An unreadable credential is still an attempt: the door denies it with
/// `credential_invalid` and audits it.
pub type CredentialRead = Result<Credential, String>;

/// A JSON credential line from the trigger socket or stdin: `{"credential": "26:18:4242"}`.
/// `None` when the line is not JSON at all (a plain trigger line); `Some(Err)` when it is
/// JSON but not a valid credential line.
pub fn parse_json_line(line: &str) -> Option<CredentialRead> {
    let line = line.trim();
    if !line.starts_with('{') {
        return None;
    }
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Line {
        credential: String,
    }
    Some(
        serde_json::from_str::<Line>(line)
            .map_err(|e| format!("JSON credential line: {e}"))
            .and_then(|l| l.credential.parse().map_err(|e| format!("{e}"))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        let c: Credential = "26:18:4242".parse().unwrap();
        assert_eq!(
            c,
            Credential {
                bits: 26,
                facility: 18,
                card: 4242
            }
        );
        assert_eq!(c.to_string(), "26:18:4242");
        assert_eq!(serde_json::to_string(&c).unwrap(), "\"26:18:4242\"");
        for bad in [
            "", "26:18", "26:x:1", "1:2:3", "65:1:1", "26:1:2:3", "26:-1:2",
        ] {
            let e = bad.parse::<Credential>().unwrap_err();
            assert!(e.to_string().contains("BITS:FACILITY:CARD"), "{e}");
        }
    }

    #[test]
    fn json_lines() {
        assert_eq!(parse_json_line("\n"), None);
        assert_eq!(parse_json_line("open"), None);
        assert_eq!(
            parse_json_line(r#"{"credential":"34:7:9"}"#),
            Some(Ok("34:7:9".parse().unwrap()))
        );
        for bad in [
            r#"{"credential":"34:7"}"#,
            r#"{"credential":7}"#,
            r#"{"card":"26:1:1"}"#,
            r#"{"credential":"26:1:1","pin":"1234"}"#,
            "{not json",
        ] {
            assert!(matches!(parse_json_line(bad), Some(Err(_))), "{bad}");
        }
    }
}
