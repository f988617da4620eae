//! A strict reader for the plain-tar subset a `.fasb` uses.
//!
//! Only what `fas-quantize bundle` writes is accepted: 512-byte ustar (POSIX or GNU magic)
//! headers with a valid checksum, regular files with plain names (no directories, links,
//! devices, PAX or GNU long-name records, no `prefix` field), each name once, then the
//! two-zero-block end marker followed by nothing but zero padding. Anything else is an
//! error; the reader never panics and never allocates more than the entry sizes it has
//! already bounds-checked against the input (entries borrow from the input).

use std::collections::BTreeSet;

use super::error::LoadErrorKind;

/// tar block size.
pub const BLOCK: usize = 512;

/// One regular-file entry, borrowing its bytes from the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'a> {
    pub name: String,
    pub data: &'a [u8],
}

const NAME: std::ops::Range<usize> = 0..100;
const SIZE: std::ops::Range<usize> = 124..136;
const CHKSUM: std::ops::Range<usize> = 148..156;
const TYPEFLAG: usize = 156;
const MAGIC: std::ops::Range<usize> = 257..265;
const PREFIX: std::ops::Range<usize> = 345..500;

/// Parse `bytes` as a tar whose entries' data add up to at most `max_total` bytes.
pub fn read_entries(bytes: &[u8], max_total: u64) -> Result<Vec<Entry<'_>>, LoadErrorKind> {
    let len = bytes.len() as u64;
    let mut entries: Vec<Entry<'_>> = Vec::new();
    let mut names = BTreeSet::new();
    let mut total: u64 = 0;
    let mut pos: usize = 0;
    loop {
        let header = block_at(bytes, pos, "a header block")?;
        if header.iter().all(|&b| b == 0) {
            // End of archive: a second zero block, then only zero padding.
            let second = block_at(bytes, pos + BLOCK, "the end-of-archive marker")?;
            if second.iter().any(|&b| b != 0) {
                return Err(corrupt(
                    pos + BLOCK,
                    "a lone zero block in the middle of the archive",
                ));
            }
            let tail = &bytes[pos + 2 * BLOCK..];
            if let Some(i) = tail.iter().position(|&b| b != 0) {
                return Err(corrupt(
                    pos + 2 * BLOCK + i,
                    "data after the end-of-archive marker",
                ));
            }
            if !tail.len().is_multiple_of(BLOCK) {
                return Err(corrupt(
                    bytes.len(),
                    "the archive is not a whole number of 512-byte blocks",
                ));
            }
            return Ok(entries);
        }
        let header: &[u8; BLOCK] = header.try_into().expect("block_at returns BLOCK bytes");
        check_checksum(header, pos)?;
        let gnu = match &header[MAGIC] {
            b"ustar\x0000" => false,
            b"ustar  \x00" => true,
            _ => {
                return Err(corrupt(
                    pos + MAGIC.start,
                    "header has no ustar magic (not a POSIX or GNU tar)",
                ))
            }
        };
        // The type first: a link or long-name record says more than its odd name.
        if let Some(kind) = non_regular_kind(header[TYPEFLAG]) {
            let field = &header[NAME];
            let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
            return Err(LoadErrorKind::NonRegularEntry {
                name: String::from_utf8_lossy(&field[..end]).into_owned(),
                kind,
            });
        }
        let name = entry_name(header, pos, gnu)?;
        let size = parse_octal(&header[SIZE])
            .ok_or_else(|| corrupt(pos + SIZE.start, "header size field is not octal"))?;
        total = total.saturating_add(size);
        if total > max_total {
            return Err(LoadErrorKind::Oversized {
                name: Some(name),
                size: total,
                limit: max_total,
            });
        }
        if !names.insert(name.clone()) {
            return Err(LoadErrorKind::DuplicateEntry { name });
        }
        let start = pos + BLOCK;
        // size <= max_total fits usize on every platform fas runs on; checked anyway.
        let size = usize::try_from(size).map_err(|_| LoadErrorKind::Oversized {
            name: Some(name.clone()),
            size,
            limit: max_total,
        })?;
        let padded = size.div_ceil(BLOCK) * BLOCK;
        if (bytes.len() - start) < padded {
            return Err(LoadErrorKind::Truncated {
                what: format!("the data of entry \"{name}\""),
                needed: start as u64 + padded as u64,
                len,
            });
        }
        let data = &bytes[start..start + size];
        if let Some(i) = bytes[start + size..start + padded]
            .iter()
            .position(|&b| b != 0)
        {
            return Err(corrupt(
                start + size + i,
                "non-zero bytes in the padding after an entry",
            ));
        }
        entries.push(Entry { name, data });
        pos = start + padded;
    }
}

fn corrupt(offset: usize, problem: &str) -> LoadErrorKind {
    LoadErrorKind::Corrupt {
        offset: offset as u64,
        problem: problem.to_string(),
    }
}

fn block_at<'a>(bytes: &'a [u8], pos: usize, what: &str) -> Result<&'a [u8], LoadErrorKind> {
    bytes
        .get(pos..pos + BLOCK)
        .ok_or_else(|| LoadErrorKind::Truncated {
            what: what.to_string(),
            needed: (pos + BLOCK) as u64,
            len: bytes.len() as u64,
        })
}

fn check_checksum(header: &[u8; BLOCK], pos: usize) -> Result<(), LoadErrorKind> {
    let recorded = parse_octal(&header[CHKSUM])
        .ok_or_else(|| corrupt(pos + CHKSUM.start, "header checksum field is not octal"))?;
    let actual: u64 = header
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if CHKSUM.contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    if recorded != actual {
        return Err(corrupt(
            pos,
            &format!("header checksum {recorded} does not match its bytes ({actual})"),
        ));
    }
    Ok(())
}

/// An octal number field: optional leading spaces, at least one octal digit, then only
/// NULs and spaces. Base-256 (GNU, high bit set) is rejected: no bundle entry needs it.
fn parse_octal(field: &[u8]) -> Option<u64> {
    let start = field.iter().position(|&b| b != b' ')?;
    let digits = field[start..]
        .iter()
        .take_while(|b| (b'0'..=b'7').contains(b))
        .count();
    if digits == 0 || field[start + digits..].iter().any(|&b| b != 0 && b != b' ') {
        return None;
    }
    field[start..start + digits]
        .iter()
        .try_fold(0u64, |acc, &d| {
            acc.checked_mul(8)?.checked_add(u64::from(d - b'0'))
        })
}

/// The entry's name, which must be one plain file name.
fn entry_name(header: &[u8; BLOCK], pos: usize, gnu: bool) -> Result<String, LoadErrorKind> {
    let field = &header[NAME];
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    let raw = &field[..end];
    let shown = String::from_utf8_lossy(raw).into_owned();
    if field[end..].iter().any(|&b| b != 0) {
        return Err(corrupt(pos, "bytes after the NUL that ends the entry name"));
    }
    // POSIX ustar splits long paths into prefix/name; a plain name never needs it.
    if !gnu && header[PREFIX].iter().any(|&b| b != 0) {
        let prefix = &header[PREFIX];
        let pend = prefix.iter().position(|&b| b == 0).unwrap_or(prefix.len());
        return Err(LoadErrorKind::PathNotPlain {
            name: format!("{}/{shown}", String::from_utf8_lossy(&prefix[..pend])),
        });
    }
    let name = match std::str::from_utf8(raw) {
        Ok(s) => s,
        Err(_) => return Err(LoadErrorKind::PathNotPlain { name: shown }),
    };
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\\')
        && !name.chars().any(char::is_control);
    if !plain {
        return Err(LoadErrorKind::PathNotPlain { name: shown });
    }
    Ok(name.to_string())
}

/// `None` for a regular file, else what the entry is.
fn non_regular_kind(typeflag: u8) -> Option<&'static str> {
    match typeflag {
        b'0' | 0 => None,
        b'1' => Some("hard link"),
        b'2' => Some("symbolic link"),
        b'3' => Some("character device"),
        b'4' => Some("block device"),
        b'5' => Some("directory"),
        b'6' => Some("FIFO"),
        b'7' => Some("contiguous file"),
        b'x' | b'g' => Some("PAX extended header"),
        b'L' | b'K' => Some("GNU long-name record"),
        b'S' => Some("GNU sparse file"),
        _ => Some("entry of unknown type"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal POSIX ustar header, written by hand (independent of the `tar` crate the
    /// integration tests use).
    fn header(name: &[u8], size: u64, typeflag: u8) -> [u8; BLOCK] {
        let mut h = [0u8; BLOCK];
        h[..name.len()].copy_from_slice(name);
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{size:011o}").as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[TYPEFLAG] = typeflag;
        h[MAGIC].copy_from_slice(b"ustar\x0000");
        fix_checksum(&mut h);
        h
    }

    fn fix_checksum(h: &mut [u8; BLOCK]) {
        h[CHKSUM].copy_from_slice(b"        ");
        let sum: u64 = h.iter().map(|&b| u64::from(b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    }

    fn archive(entries: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (name, data) in entries {
            out.extend_from_slice(&header(name, data.len() as u64, b'0'));
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
        }
        out.extend_from_slice(&[0u8; 2 * BLOCK]);
        out
    }

    #[test]
    fn reads_entries_in_order() {
        let bytes = archive(&[(b"a.json", b"{}"), (b"empty", b""), (b"b", &[7u8; 512])]);
        let e = read_entries(&bytes, 1 << 20).unwrap();
        let got: Vec<(&str, usize)> = e.iter().map(|e| (e.name.as_str(), e.data.len())).collect();
        assert_eq!(got, [("a.json", 2), ("empty", 0), ("b", 512)]);
        assert_eq!(e[0].data, b"{}");
        // Record padding (zeros to a 10 KiB record) is fine.
        let mut padded = bytes.clone();
        padded.resize(10240, 0);
        assert_eq!(read_entries(&padded, 1 << 20).unwrap(), e);
    }

    #[test]
    fn octal_fields() {
        assert_eq!(parse_octal(b"00000000017\0"), Some(15));
        assert_eq!(parse_octal(b"   17 \0\0"), Some(15));
        assert_eq!(parse_octal(b"\0\0\0\0"), None);
        assert_eq!(parse_octal(b"0001 9\0"), None);
        assert_eq!(parse_octal(b"0008"), None);
        assert_eq!(parse_octal(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]), None);
        assert_eq!(parse_octal(b"77777777777777777777777"), None, "overflow");
    }

    #[test]
    fn rejects_bad_checksum_and_magic() {
        let mut bytes = archive(&[(b"a", b"x")]);
        bytes[0] = b'b';
        assert!(matches!(
            read_entries(&bytes, 1 << 20),
            Err(LoadErrorKind::Corrupt { offset: 0, .. })
        ));
        let mut h = header(b"a", 0, b'0');
        h[MAGIC].copy_from_slice(b"xxxxxxxx");
        fix_checksum(&mut h);
        let mut bytes = h.to_vec();
        bytes.extend_from_slice(&[0; 1024]);
        let e = read_entries(&bytes, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("ustar magic"), "{e}");
    }

    #[test]
    fn rejects_non_regular_and_unplain_names() {
        for (flag, kind) in [
            (b'5', "directory"),
            (b'2', "symbolic link"),
            (b'1', "hard link"),
            (b'3', "character device"),
            (b'x', "PAX extended header"),
            (b'L', "GNU long-name record"),
        ] {
            let mut bytes = header(b"liveness.onnx", 0, flag).to_vec();
            bytes.extend_from_slice(&[0; 1024]);
            match read_entries(&bytes, 1 << 20) {
                Err(LoadErrorKind::NonRegularEntry { name, kind: k }) => {
                    assert_eq!((name.as_str(), k), ("liveness.onnx", kind))
                }
                other => panic!("{flag}: {other:?}"),
            }
        }
        for name in [
            &b"../x"[..],
            b"a/b",
            b"..",
            b".",
            b"",
            b"a\\b",
            b"\xff",
            b"a\nb",
        ] {
            let mut bytes = header(name, 0, b'0').to_vec();
            bytes.extend_from_slice(&[0; 1024]);
            if name.is_empty() {
                // An empty name with everything else zero is still a valid header.
                assert!(bytes[..BLOCK].iter().any(|&b| b != 0));
            }
            assert!(
                matches!(
                    read_entries(&bytes, 1 << 20),
                    Err(LoadErrorKind::PathNotPlain { .. })
                ),
                "{name:?}"
            );
        }
        let mut h = header(b"x", 0, b'0');
        h[PREFIX.start..PREFIX.start + 3].copy_from_slice(b"dir");
        fix_checksum(&mut h);
        let mut bytes = h.to_vec();
        bytes.extend_from_slice(&[0; 1024]);
        match read_entries(&bytes, 1 << 20) {
            Err(LoadErrorKind::PathNotPlain { name }) => assert_eq!(name, "dir/x"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_duplicates_truncation_and_trailing_junk() {
        let bytes = archive(&[(b"a", b"1"), (b"a", b"2")]);
        assert!(matches!(
            read_entries(&bytes, 1 << 20),
            Err(LoadErrorKind::DuplicateEntry { name }) if name == "a"
        ));
        let bytes = archive(&[(b"a", &[1u8; 700])]);
        for cut in [0, 100, 512, 600, 1024, 1536, 2000, bytes.len() - 1] {
            assert!(
                matches!(
                    read_entries(&bytes[..cut], 1 << 20),
                    Err(LoadErrorKind::Truncated { .. })
                ),
                "cut at {cut}"
            );
        }
        let mut junk = bytes.clone();
        junk.extend_from_slice(b"junk");
        assert!(matches!(
            read_entries(&junk, 1 << 20),
            Err(LoadErrorKind::Corrupt { .. })
        ));
        let mut odd = bytes.clone();
        odd.extend_from_slice(&[0; 3]);
        assert!(matches!(
            read_entries(&odd, 1 << 20),
            Err(LoadErrorKind::Corrupt { .. })
        ));
        let mut pad = bytes.clone();
        pad[BLOCK + 700] = 1;
        assert!(matches!(
            read_entries(&pad, 1 << 20),
            Err(LoadErrorKind::Corrupt { .. })
        ));
    }

    #[test]
    fn size_cap_is_checked_before_the_data_is_needed() {
        // A header claiming 1 GiB with no data behind it: the cap, not truncation, answers.
        let mut bytes = header(b"liveness.onnx", 1 << 30, b'0').to_vec();
        bytes.extend_from_slice(&[0; 1024]);
        match read_entries(&bytes, 512 << 20) {
            Err(LoadErrorKind::Oversized { name, size, limit }) => {
                assert_eq!(name.as_deref(), Some("liveness.onnx"));
                assert_eq!((size, limit), (1 << 30, 512 << 20));
            }
            other => panic!("{other:?}"),
        }
        let bytes = archive(&[(b"a", &[1u8; 600]), (b"b", &[1u8; 600])]);
        assert!(read_entries(&bytes, 1200).is_ok());
        assert!(matches!(
            read_entries(&bytes, 1199),
            Err(LoadErrorKind::Oversized { .. })
        ));
    }
}
