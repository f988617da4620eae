//! Errors said once (issue 28): an error's message names the file, the field and the fix,
//! and its cause is its `source()`, printed by `fas_core::report::chain` on a line of its
//! own. A message that also formats its source prints the cause twice.
//!
//! - [`no_error_message_formats_its_own_source`] scans every crate's `src/` for a
//!   thiserror `#[error("...")]` whose format string names the variant's source field
//!   (`{source}`, a `#[source]`/`#[from]` field by name, `{0}` on a `#[from]` tuple).
//! - [`cli_errors_say_each_cause_once`] runs the real command lines on bad inputs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (this crate is `tests/`).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The crates whose `src/` is scanned.
const CRATES: &[&str] = &[
    "core",
    "infer",
    "trainer",
    "quantize",
    "edge",
    "boards",
    "boards/testbed",
    "tests",
    "xtask",
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Index just past the string literal that starts at `i` (`s[i] == b'"'`).
fn skip_str(s: &[u8], mut i: usize) -> usize {
    i += 1;
    while i < s.len() && s[i] != b'"' {
        if s[i] == b'\\' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

/// Index just past the bracket group that opens at `i`, skipping string literals.
fn group_end(s: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i < s.len() {
        match s[i] {
            b'"' => {
                i = skip_str(s, i);
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    s.len()
}

/// The first string literal in `attr`, unescaped only as far as the scan needs.
fn format_string(attr: &str) -> Option<&str> {
    let b = attr.as_bytes();
    let start = attr.find('"')?;
    let end = skip_str(b, start);
    Some(&attr[start + 1..end - 1])
}

/// Splits a field list at top-level commas.
fn split_fields(body: &str) -> Vec<String> {
    let b = body.as_bytes();
    let (mut parts, mut cur, mut depth, mut i) = (Vec::new(), String::new(), 0i32, 0);
    while i < b.len() {
        let c = b[i];
        if c == b'"' {
            let e = skip_str(b, i);
            cur.push_str(&body[i..e]);
            i = e;
            continue;
        }
        match c {
            b'(' | b'[' | b'{' | b'<' => depth += 1,
            b')' | b']' | b'}' | b'>' => depth -= 1,
            _ => {}
        }
        if c == b',' && depth == 0 {
            parts.push(std::mem::take(&mut cur));
        } else {
            // Field lists are ASCII outside string literals, handled above.
            cur.push(c as char);
        }
        i += 1;
    }
    if !cur.trim().is_empty() {
        parts.push(cur);
    }
    parts
}

/// Without `#[...]` attributes and `//` comments.
fn strip_attrs(field: &str) -> String {
    let mut out = String::new();
    for line in field.lines() {
        let line = line.split("//").next().unwrap();
        out.push_str(line);
        out.push('\n');
    }
    while let Some(at) = out.find("#[") {
        let end = at + 1 + group_end(&out.as_bytes()[at + 1..], 0);
        out.replace_range(at..end, "");
    }
    out
}

/// The names (`source`, `inner`, `0`, ...) of the source fields of the variant or struct
/// whose body starts at `s[i]` (after its attributes and name).
fn source_fields(s: &str, i: usize) -> Vec<String> {
    let b = s.as_bytes();
    let open = b[i];
    if open != b'(' && open != b'{' {
        return Vec::new();
    }
    let end = group_end(b, i);
    let body = &s[i + 1..end - 1];
    let mut names = Vec::new();
    for (idx, field) in split_fields(body).iter().enumerate() {
        let attr = field.contains("#[source]") || field.contains("#[from]");
        if open == b'(' {
            if attr {
                names.push(idx.to_string());
            }
            continue;
        }
        let bare = strip_attrs(field);
        let bare = bare.trim_start();
        let bare = bare.strip_prefix("pub ").unwrap_or(bare).trim_start();
        let name: String = bare
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // thiserror takes a field named `source` as the source without an attribute.
        if attr || name == "source" {
            names.push(name);
        }
    }
    names
}

/// Whether `fmt` formats the argument `name` (`{name}` or `{name:...}`).
fn formats(fmt: &str, name: &str) -> bool {
    fmt.contains(&format!("{{{name}}}")) || fmt.contains(&format!("{{{name}:"))
}

/// `file:line: Item {field}: "format"` for each `#[error("...")]` in `text` that formats
/// its own source.
fn violations(file: &str, text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(off) = text[from..].find("#[error(") {
        let at = from + off;
        from = at + 1;
        let end = group_end(b, at + 1);
        let Some(fmt) = format_string(&text[at..end]) else {
            continue; // #[error(transparent)]
        };
        // Past further attributes, doc comments and visibility to the item's name.
        let mut j = end;
        loop {
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if text[j..].starts_with("//") {
                j += text[j..].find('\n').unwrap_or(text.len() - j);
            } else if b.get(j) == Some(&b'#') {
                j = group_end(b, j + 1);
            } else {
                break;
            }
        }
        let mut k = j;
        for kw in ["pub(crate) ", "pub(super) ", "pub ", "struct ", "enum "] {
            if text[k..].starts_with(kw) {
                k += kw.len();
            }
        }
        let name: String = text[k..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        k += name.len();
        if b.get(k) == Some(&b'<') {
            k += text[k..].find('>').unwrap() + 1;
        }
        while k < b.len() && b[k].is_ascii_whitespace() {
            k += 1;
        }
        for field in source_fields(text, k) {
            if formats(fmt, &field) {
                let line = text[..at].matches('\n').count() + 1;
                found.push(format!("{file}:{line}: {name} {{{field}}}: \"{fmt}\""));
            }
        }
    }
    found
}

#[test]
fn the_scan_finds_a_message_that_formats_its_source() {
    let text = r#"
#[derive(Debug, thiserror::Error)]
pub enum E {
    #[error("{file}: cannot read: {source} — pass --config")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("fine: {file} — fix")]
    Fine {
        file: String,
        source: std::io::Error,
    },
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}: not a number")]
    Field(String),
    /// A doc comment between attribute and variant.
    #[error("{what}: {inner:?}")]
    #[allow(dead_code)]
    Named { what: String, #[from] inner: Other },
    #[error(transparent)]
    Through(#[from] Other),
}
#[derive(Debug, thiserror::Error)]
#[error("plot {path}: {source}")]
pub struct PlotError { path: String, source: std::io::Error }
"#;
    let v = violations("x.rs", text);
    assert_eq!(v.len(), 4, "{v:#?}");
    assert!(v[0].starts_with("x.rs:4: Io {source}"), "{v:#?}");
    assert!(v[1].starts_with("x.rs:15: Json {0}"), "{v:#?}");
    assert!(v[2].starts_with("x.rs:20: Named {inner}"), "{v:#?}");
    assert!(v[3].starts_with("x.rs:27: PlotError {source}"), "{v:#?}");
}

#[test]
fn no_error_message_formats_its_own_source() {
    let root = workspace();
    let mut files = Vec::new();
    for c in CRATES {
        rust_files(&root.join(c).join("src"), &mut files);
    }
    assert!(
        files.len() > 100,
        "found only {} files under {root:?}",
        files.len()
    );
    let mut found = Vec::new();
    for f in &files {
        // This file's own known-answer test holds deliberate violations.
        if f.ends_with("tests/it/errors.rs") {
            continue;
        }
        let text = std::fs::read_to_string(f).unwrap();
        let rel = f.strip_prefix(&root).unwrap().display().to_string();
        found.extend(violations(&rel, &text));
    }
    assert!(
        found.is_empty(),
        "these error messages format their own source, so a printed chain says the cause \
         twice; drop it from the message (the chain prints it) or, where the inner error is \
         the message itself, make it not a source:\n{}",
        found.join("\n")
    );
}

/// A workspace binary built next to this test (`target/<profile>/<name>`). fas-tests does
/// not own these binaries, so cargo does not build them for `-p fas-tests` alone;
/// `cargo xtask test` (`cargo test --workspace`) does.
fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap(); // target/<profile>/deps/..
    let p = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        p.is_file(),
        "{} is not built: run `cargo build -p {name}` (or `cargo xtask test`, which builds every binary) first",
        p.display()
    );
    p
}

/// Runs `bin args`, which must fail; returns its stderr.
fn failing(bin: &str, args: &[&str]) -> String {
    let out = Command::new(binary(bin)).args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{bin} {args:?} succeeded:\n{err}");
    err
}

/// The CLI's error layout, and no line said again inside another.
fn assert_said_once(bin: &str, args: &[&str], path: &str) {
    let err = failing(bin, args);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    let head = format!("{bin}: error: ");
    assert!(lines[0].starts_with(&head), "{bin} {args:?}:\n{err}");
    assert!(
        lines[0].contains(path),
        "{bin} {args:?}: the path is not named:\n{err}"
    );
    assert!(
        lines.len() >= 2 && lines[1..].iter().all(|l| l.starts_with("  caused by: ")),
        "{bin} {args:?}: each cause on its own line:\n{err}"
    );
    let texts: Vec<&str> = lines
        .iter()
        .map(|l| {
            l.strip_prefix(head.as_str())
                .or_else(|| l.strip_prefix(fas_core::report::CAUSED_BY))
                .unwrap_or(l)
        })
        .collect();
    for (i, a) in texts.iter().enumerate() {
        for (j, b) in texts.iter().enumerate() {
            assert!(
                i == j || !b.contains(a),
                "{bin} {args:?}: line {} says line {} again:\n{err}",
                j + 1,
                i + 1
            );
        }
    }
}

#[test]
fn cli_errors_say_each_cause_once() {
    let tmp = std::env::temp_dir().join(format!("fas-errors-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let missing = |name: &str| tmp.join("missing").join(name).display().to_string();
    let out = tmp.join("out").display().to_string();

    let config = missing("fas-edge.toml");
    assert_said_once("fas-edge", &["check-config", "--config", &config], &config);

    let run = missing("run");
    assert_said_once(
        "fas-quantize",
        &["export", "--run", &run, "--out", &out],
        &run,
    );
    let bundle = missing("model.fasb");
    assert_said_once("fas-quantize", &["inspect", "--bundle", &bundle], &bundle);
    let key = missing("release.key");
    assert_said_once(
        "fas-quantize",
        &["sign", "--bundle", &bundle, "--key", &key],
        &key,
    );

    let profile = missing("board.toml");
    assert_said_once("fas-boards", &["show", &profile], &profile);

    let _ = std::fs::remove_dir_all(&tmp);
}
