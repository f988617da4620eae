//! Reading a DOS (MBR) partition table: where an image's partitions are, so the boot
//! check and the tests can reach a partition's file system (`mcopy -i IMAGE@@OFFSET`)
//! without a loop device.

/// One primary partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    /// 1-based, as Linux numbers them (`mmcblk0p1`).
    pub number: u8,
    /// The MBR type byte (`0x0c` FAT32 LBA, `0x83` Linux).
    pub kind: u8,
    pub bootable: bool,
    pub start_lba: u64,
    pub sectors: u64,
}

pub const SECTOR: u64 = 512;

impl Partition {
    pub fn offset_bytes(&self) -> u64 {
        self.start_lba * SECTOR
    }
    pub fn len_bytes(&self) -> u64 {
        self.sectors * SECTOR
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MbrError {
    #[error("{0} bytes is too short for a partition table (512 needed)")]
    Short(usize),
    #[error("no MBR boot signature (bytes 510..512 are {0:02x?}, want [55, aa])")]
    Signature([u8; 2]),
    #[error("partition {number}: boot flag {flag:#04x} is neither 0x00 nor 0x80")]
    BootFlag { number: u8, flag: u8 },
}

/// The used primary partitions of the first sector of a disk or image.
pub fn read(sector0: &[u8]) -> Result<Vec<Partition>, MbrError> {
    if sector0.len() < 512 {
        return Err(MbrError::Short(sector0.len()));
    }
    let sig = [sector0[510], sector0[511]];
    if sig != [0x55, 0xaa] {
        return Err(MbrError::Signature(sig));
    }
    let mut parts = Vec::new();
    for i in 0..4u8 {
        let e = &sector0[446 + 16 * usize::from(i)..][..16];
        let u32le = |o: usize| u64::from(u32::from_le_bytes([e[o], e[o + 1], e[o + 2], e[o + 3]]));
        let (kind, start_lba, sectors) = (e[4], u32le(8), u32le(12));
        if kind == 0 || sectors == 0 {
            continue;
        }
        if e[0] != 0 && e[0] != 0x80 {
            return Err(MbrError::BootFlag {
                number: i + 1,
                flag: e[0],
            });
        }
        parts.push(Partition {
            number: i + 1,
            kind,
            bootable: e[0] == 0x80,
            start_lba,
            sectors,
        });
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(buf: &mut [u8], i: usize, flag: u8, kind: u8, start: u32, len: u32) {
        let e = &mut buf[446 + 16 * i..][..16];
        e[0] = flag;
        e[4] = kind;
        e[8..12].copy_from_slice(&start.to_le_bytes());
        e[12..16].copy_from_slice(&len.to_le_bytes());
    }

    #[test]
    fn reads_entries_and_rejects_garbage() {
        let mut s = vec![0u8; 512];
        assert_eq!(read(&s), Err(MbrError::Signature([0, 0])));
        s[510] = 0x55;
        s[511] = 0xaa;
        entry(&mut s, 0, 0x80, 0x0c, 2048, 131072);
        entry(&mut s, 2, 0, 0x83, 133120, 4096);
        let p = read(&s).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[0],
            Partition {
                number: 1,
                kind: 0x0c,
                bootable: true,
                start_lba: 2048,
                sectors: 131072
            }
        );
        assert_eq!(p[1].number, 3);
        assert_eq!(p[1].offset_bytes(), 133120 * 512);
        assert_eq!(p[1].len_bytes(), 4096 * 512);
        entry(&mut s, 1, 0x12, 0x83, 1, 1);
        assert_eq!(
            read(&s),
            Err(MbrError::BootFlag {
                number: 2,
                flag: 0x12
            })
        );
        assert_eq!(read(&s[..100]), Err(MbrError::Short(100)));
    }
}
