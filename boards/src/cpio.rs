//! A `newc` cpio archive writer: the initramfs format the Linux kernel unpacks.
//! Deterministic (fixed mtime, inode numbers in order), so the same inputs give the same
//! bytes.

use std::io::{self, Write};

/// One archive entry.
#[derive(Debug, Clone)]
pub enum Entry {
    Dir {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        mode: u32,
        data: Vec<u8>,
    },
    Symlink {
        path: String,
        target: String,
    },
}

impl Entry {
    fn path(&self) -> &str {
        match self {
            Entry::Dir { path, .. } | Entry::File { path, .. } | Entry::Symlink { path, .. } => {
                path
            }
        }
    }
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;

fn pad4(w: &mut impl Write, n: usize) -> io::Result<()> {
    let pad = (4 - n % 4) % 4;
    w.write_all(&[0u8; 3][..pad])
}

fn header(
    w: &mut impl Write,
    ino: u32,
    mode: u32,
    nlink: u32,
    size: usize,
    name: &str,
) -> io::Result<()> {
    let namesize = name.len() + 1;
    let fields = [
        ino,
        mode,
        0,
        0,
        nlink,
        0,
        size as u32,
        0,
        0,
        0,
        0,
        namesize as u32,
        0,
    ];
    let mut h = String::from("070701");
    for f in fields {
        h += &format!("{f:08X}");
    }
    w.write_all(h.as_bytes())?;
    w.write_all(name.as_bytes())?;
    w.write_all(&[0])?;
    pad4(w, 110 + namesize)
}

/// Writes `entries` (paths without a leading `/`) and the trailer.
pub fn write(w: &mut impl Write, entries: &[Entry]) -> io::Result<()> {
    for (i, e) in entries.iter().enumerate() {
        let name = e.path().trim_start_matches('/');
        if name.is_empty() || name.split('/').any(|c| c == "..") {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cpio: bad path `{}`", e.path()),
            ));
        }
        let ino = i as u32 + 1;
        match e {
            Entry::Dir { mode, .. } => header(w, ino, S_IFDIR | (mode & 0o7777), 2, 0, name)?,
            Entry::File { mode, data, .. } => {
                if data.len() > u32::MAX as usize {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "cpio: file over 4 GiB",
                    ));
                }
                header(w, ino, S_IFREG | (mode & 0o7777), 1, data.len(), name)?;
                w.write_all(data)?;
                pad4(w, data.len())?;
            }
            Entry::Symlink { target, .. } => {
                header(w, ino, S_IFLNK | 0o777, 1, target.len(), name)?;
                w.write_all(target.as_bytes())?;
                pad4(w, target.len())?;
            }
        }
    }
    header(w, 0, 0, 1, 0, "TRAILER!!!")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads back (name, mode, data) — an independent parser of the same format.
    fn read(mut b: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            assert_eq!(&b[..6], b"070701");
            let field = |i: usize| {
                u32::from_str_radix(std::str::from_utf8(&b[6 + 8 * i..14 + 8 * i]).unwrap(), 16)
                    .unwrap()
            };
            let (mode, size, namesize) = (field(1), field(6) as usize, field(11) as usize);
            let name = String::from_utf8(b[110..110 + namesize - 1].to_vec()).unwrap();
            let data_at = (110 + namesize).div_ceil(4) * 4;
            let data = b[data_at..data_at + size].to_vec();
            b = &b[(data_at + size).div_ceil(4) * 4..];
            if name == "TRAILER!!!" {
                assert!(b.is_empty());
                return out;
            }
            out.push((name, mode, data));
        }
    }

    #[test]
    fn round_trips_and_matches_gnu_cpio() {
        let entries = vec![
            Entry::Dir {
                path: "bin".into(),
                mode: 0o755,
            },
            Entry::File {
                path: "/bin/busybox".into(),
                mode: 0o755,
                data: vec![7; 5],
            },
            Entry::Symlink {
                path: "bin/sh".into(),
                target: "busybox".into(),
            },
            Entry::File {
                path: "init".into(),
                mode: 0o755,
                data: b"#!/bin/sh\n".to_vec(),
            },
        ];
        let mut buf = Vec::new();
        write(&mut buf, &entries).unwrap();
        let back = read(&buf);
        assert_eq!(back.len(), 4);
        assert_eq!(back[1], ("bin/busybox".into(), 0o100755, vec![7; 5]));
        assert_eq!(back[2], ("bin/sh".into(), 0o120777, b"busybox".to_vec()));
        // GNU cpio, when the host has it, lists the same entries.
        if let Ok(mut child) = std::process::Command::new("cpio")
            .args(["-it", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
        {
            child.stdin.take().unwrap().write_all(&buf).unwrap();
            let out = child.wait_with_output().unwrap();
            let names = String::from_utf8(out.stdout).unwrap();
            assert_eq!(
                names.lines().collect::<Vec<_>>(),
                ["bin", "bin/busybox", "bin/sh", "init"]
            );
        }
        let mut again = Vec::new();
        write(&mut again, &entries).unwrap();
        assert_eq!(buf, again, "deterministic");
        assert!(write(
            &mut Vec::new(),
            &[Entry::Dir {
                path: "../x".into(),
                mode: 0
            }]
        )
        .is_err());
    }
}
