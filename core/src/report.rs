//! One way to print an error with its causes, used by every fas command line.
//!
//! Error messages name the file, the field and the fix, but not their cause: the cause is
//! the error's `source()`, and these printers show each link of that chain once.
//! [`chain`] is for a person (one line per link); [`one_line`] is for a log line or a
//! JSON event's `error` field. An `anyhow::Error` goes in as `&*err` (it derefs to
//! `dyn Error`, and its `source()` walks the contexts and then the wrapped error).

use std::error::Error;

/// Prefix of each cause's line in [`chain`].
pub const CAUSED_BY: &str = "  caused by: ";

/// The error's message on the first line, then each cause on its own line, indented and
/// prefixed `caused by: `:
///
/// ```text
/// /etc/fas/edge.toml: cannot read it — pass --config with the path of fas-edge.toml
///   caused by: No such file or directory (os error 2)
/// ```
///
/// No trailing newline. A cause's own line breaks are indented to stay under it.
pub fn chain(err: &(dyn Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        out.push('\n');
        out.push_str(CAUSED_BY);
        out.push_str(&c.to_string().replace('\n', "\n    "));
        cause = c.source();
    }
    out
}

/// The error and its causes on one line, joined by `": "` (what anyhow's `{:#}` prints).
pub fn one_line(err: &(dyn Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{file}: cannot read it — pass --config with the path of fas-edge.toml")]
    struct Config {
        file: String,
        source: Middle,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("middle layer")]
    struct Middle {
        #[source]
        io: std::io::Error,
    }

    fn sample() -> Config {
        Config {
            file: "/etc/fas/edge.toml".into(),
            source: Middle {
                io: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            },
        }
    }

    #[test]
    fn chain_prints_each_link_once_on_its_own_line() {
        assert_eq!(
            chain(&sample()),
            "/etc/fas/edge.toml: cannot read it — pass --config with the path of fas-edge.toml\n  \
             caused by: middle layer\n  caused by: no such file"
        );
    }

    #[test]
    fn one_line_joins_the_links() {
        assert_eq!(
            one_line(&sample()),
            "/etc/fas/edge.toml: cannot read it — pass --config with the path of fas-edge.toml: \
             middle layer: no such file"
        );
    }

    #[test]
    fn an_error_without_a_cause_is_its_message() {
        let e = std::io::Error::other("plain");
        assert_eq!(chain(&e), "plain");
        assert_eq!(one_line(&e), "plain");
    }

    #[test]
    fn a_multi_line_cause_stays_indented() {
        let e = Config {
            file: "f".into(),
            source: Middle {
                io: std::io::Error::other("first\nsecond"),
            },
        };
        assert!(
            chain(&e).ends_with("  caused by: first\n    second"),
            "{}",
            chain(&e)
        );
    }
}
