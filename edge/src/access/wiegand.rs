//! Wiegand: the two-wire card-reader interface (D0 and D1, both idle high; a short low
//! pulse on D0 sends a 0, on D1 a 1; the frame ends with a silence).
//!
//! Two pure parts, tested on the host, and a GPIO reader that feeds them:
//! - [`Assembler`] turns line edges with kernel timestamps into frames of bits. It accepts
//!   pulses from [`WiegandTiming::min_pulse_us`] to [`WiegandTiming::max_pulse_us`] (real
//!   readers pulse 50–100 µs, slow test drivers several ms) and calls a frame *noise* when
//!   both lines are low at once, a pulse is too short or too long, a line is stuck low, or
//!   the frame runs past 64 bits.
//! - [`Layout::decode`] checks a frame's length and parity and reads the facility code and
//!   card number: the standard 26-bit (H10301) and 34-bit layouts, or a raw N-bit layout.
//!
//! Every frame that does not decode becomes a `credential_invalid` read, never a crash.

use serde::{Deserialize, Serialize};

use super::credential::Credential;

/// Where the facility code and card number sit in a frame, and how it is parity-checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layout {
    /// Frame length in bits.
    pub bits: u32,
    /// `[first bit, length]` of the facility code (bit 0 is the first bit sent).
    pub facility: [u32; 2],
    /// `[first bit, length]` of the card number.
    pub card: [u32; 2],
    pub parity: Parity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parity {
    /// The first bit is even parity over the first half of the bits between the first and
    /// the last; the last bit is odd parity over the second half (26- and 34-bit cards).
    Halves,
    /// No parity bits.
    None,
}

impl Layout {
    /// HID H10301: even parity, 8-bit facility, 16-bit card, odd parity.
    pub const W26: Layout = Layout {
        bits: 26,
        facility: [1, 8],
        card: [9, 16],
        parity: Parity::Halves,
    };
    /// 34-bit: even parity, 16-bit facility, 16-bit card, odd parity.
    pub const W34: Layout = Layout {
        bits: 34,
        facility: [1, 16],
        card: [17, 16],
        parity: Parity::Halves,
    };

    /// Checks that the fields fit the frame.
    pub fn validate(&self) -> Result<(), String> {
        if !(4..=64).contains(&self.bits) {
            return Err(format!("bits = {} is not in 4..=64", self.bits));
        }
        for (name, [start, len]) in [("facility", self.facility), ("card", self.card)] {
            if len > 63 || start + len > self.bits {
                return Err(format!(
                    "{name} = [{start}, {len}] does not fit in a {}-bit frame (and at most 63 bits)",
                    self.bits
                ));
            }
        }
        if self.card[1] == 0 {
            return Err("card = [start, 0]: the card number needs at least one bit".into());
        }
        Ok(())
    }

    /// The credential in `frame`, or why there is none.
    pub fn decode(&self, frame: &[bool]) -> Result<Credential, DecodeError> {
        if frame.len() != self.bits as usize {
            return Err(DecodeError::Length {
                found: frame.len(),
                expected: self.bits,
            });
        }
        if self.parity == Parity::Halves {
            let n = frame.len();
            let data = &frame[1..n - 1];
            let (first, second) = data.split_at(data.len() / 2);
            let ones = |b: &[bool]| b.iter().filter(|&&x| x).count();
            if !(ones(first) + frame[0] as usize).is_multiple_of(2) {
                return Err(DecodeError::Parity { bit: 0 });
            }
            if (ones(second) + frame[n - 1] as usize).is_multiple_of(2) {
                return Err(DecodeError::Parity { bit: n - 1 });
            }
        }
        let field = |[start, len]: [u32; 2]| {
            frame[start as usize..(start + len) as usize]
                .iter()
                .fold(0u64, |acc, &b| (acc << 1) | b as u64)
        };
        Ok(Credential {
            bits: self.bits,
            facility: field(self.facility),
            card: field(self.card),
        })
    }

    /// The frame that carries `facility` and `card` (for test drivers and the enrolment
    /// of cards by number); `None` when a number does not fit its field.
    pub fn encode(&self, facility: u64, card: u64) -> Option<Vec<bool>> {
        let mut frame = vec![false; self.bits as usize];
        for ([start, len], value) in [(self.facility, facility), (self.card, card)] {
            if len < 64 && value >> len != 0 {
                return None;
            }
            for i in 0..len {
                frame[(start + i) as usize] = (value >> (len - 1 - i)) & 1 == 1;
            }
        }
        if self.parity == Parity::Halves {
            let n = frame.len();
            let half = (n - 2) / 2;
            let ones = |b: &[bool]| b.iter().filter(|&&x| x).count();
            frame[0] = ones(&frame[1..1 + half]) % 2 == 1;
            frame[n - 1] = ones(&frame[1 + half..n - 1]) % 2 == 0;
        }
        Some(frame)
    }
}

/// The standard 26- and 34-bit layouts followed by `extra` (a reader's configured ones).
pub fn with_standard(extra: &[Layout]) -> Vec<Layout> {
    let mut v = vec![Layout::W26, Layout::W34];
    v.extend_from_slice(extra);
    v
}

/// Checks a reader's extra layouts, configured under `key` (`access.wiegand.layouts`, …):
/// each must fit its frame and must not repeat a standard length. `Err((key, problem))`.
pub fn validate_extra(key: &str, extra: &[Layout]) -> Result<(), (String, String)> {
    for (i, l) in extra.iter().enumerate() {
        l.validate().map_err(|e| (format!("{key}[{i}]"), e))?;
        if [Layout::W26.bits, Layout::W34.bits].contains(&l.bits) {
            return Err((
                format!("{key}[{i}].bits"),
                format!(
                    "{} bits is a standard layout already read; remove it",
                    l.bits
                ),
            ));
        }
    }
    Ok(())
}

/// Decodes `frame` with the first layout of its length.
pub fn decode(layouts: &[Layout], frame: &[bool]) -> Result<Credential, DecodeError> {
    match layouts.iter().find(|l| l.bits as usize == frame.len()) {
        Some(l) => l.decode(frame),
        None => Err(DecodeError::UnknownLength {
            found: frame.len(),
            known: layouts.iter().map(|l| l.bits).collect(),
        }),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("Wiegand frame of {found} bits, expected {expected}")]
    Length { found: usize, expected: u32 },
    #[error("Wiegand frame of {found} bits matches no configured layout ({known:?} bits)")]
    UnknownLength { found: usize, known: Vec<u32> },
    #[error("Wiegand parity bit {bit} is wrong (a misread or a forged frame)")]
    Parity { bit: usize },
    #[error("Wiegand noise: {0}")]
    Noise(&'static str),
}

/// Pulse and frame timing the assembler accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WiegandTiming {
    /// Shorter low pulses are glitches: the frame is noise.
    pub min_pulse_us: u64,
    /// Longer low pulses mean a stuck or shorted line: the frame is noise.
    pub max_pulse_us: u64,
    /// This much silence after the last pulse ends a frame (longer than the reader's
    /// bit interval: standard readers send a bit every 0.2–2 ms, slow ones up to 20 ms).
    pub frame_gap_ms: u64,
}

impl Default for WiegandTiming {
    fn default() -> Self {
        WiegandTiming {
            min_pulse_us: 10,
            max_pulse_us: 5_000,
            frame_gap_ms: 50,
        }
    }
}

impl WiegandTiming {
    pub fn validate(&self) -> Result<(), String> {
        if self.min_pulse_us >= self.max_pulse_us {
            return Err(format!(
                "min_pulse_us = {} must be below max_pulse_us = {}",
                self.min_pulse_us, self.max_pulse_us
            ));
        }
        if self.frame_gap_ms * 1000 <= self.max_pulse_us || self.frame_gap_ms > 1000 {
            return Err(format!(
                "frame_gap_ms = {} must be longer than the longest pulse ({} µs) and at most 1000",
                self.frame_gap_ms, self.max_pulse_us
            ));
        }
        Ok(())
    }
}

/// The two data lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// Pulses send 0.
    D0,
    /// Pulses send 1.
    D1,
}

/// One edge on a data line, with the kernel's timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EdgeEvent {
    pub t_ns: u64,
    pub line: Line,
    /// `true` for high → low (a pulse starts), `false` for low → high (it ends).
    pub falling: bool,
}

/// A frame of bits, or noise.
pub type FrameRead = Result<Vec<bool>, DecodeError>;

/// Edges → frames. Feed every edge to [`Assembler::edge`] and call [`Assembler::poll`]
/// when no edge came for a while; each returns a finished frame when there is one.
#[derive(Debug, Clone)]
pub struct Assembler {
    timing: WiegandTiming,
    bits: Vec<bool>,
    /// When each line went low, while it is low.
    low_since: [Option<u64>; 2],
    last_edge_ns: Option<u64>,
    noise: Option<&'static str>,
}

const MAX_BITS: usize = 64;

impl Assembler {
    pub fn new(timing: WiegandTiming) -> Assembler {
        Assembler {
            timing,
            bits: Vec::new(),
            low_since: [None; 2],
            last_edge_ns: None,
            noise: None,
        }
    }

    fn in_frame(&self) -> bool {
        self.last_edge_ns.is_some()
    }

    /// One edge. Returns the previous frame when this edge starts a new one after a
    /// silence that [`Assembler::poll`] was not called in time to see.
    pub fn edge(&mut self, e: EdgeEvent) -> Option<FrameRead> {
        let done = self.poll(e.t_ns);
        let idx = e.line as usize;
        let other = 1 - idx;
        if e.falling {
            if self.low_since[other].is_some() {
                self.noise.get_or_insert("both lines low at once");
            }
            if self.low_since[idx].is_some() {
                self.noise.get_or_insert("a line fell twice without rising");
            }
            self.low_since[idx] = Some(e.t_ns);
            self.last_edge_ns = Some(e.t_ns);
        } else if let Some(start) = self.low_since[idx].take() {
            let width_us = e.t_ns.saturating_sub(start) / 1000;
            if width_us < self.timing.min_pulse_us {
                self.noise
                    .get_or_insert("a pulse shorter than min_pulse_us");
            } else if width_us > self.timing.max_pulse_us {
                self.noise.get_or_insert("a pulse longer than max_pulse_us");
            } else if self.bits.len() >= MAX_BITS {
                self.noise.get_or_insert("more than 64 bits");
            } else {
                self.bits.push(e.line == Line::D1);
            }
            self.last_edge_ns = Some(e.t_ns);
        }
        // A rising edge with no falling one before it (the line was low when the reader
        // started) is not a bit and starts nothing.
        done
    }

    /// Ends the frame if the lines have been quiet for `frame_gap_ms` at `now_ns`.
    pub fn poll(&mut self, now_ns: u64) -> Option<FrameRead> {
        let last = self.last_edge_ns?;
        let gap_ns = self.timing.frame_gap_ms * 1_000_000;
        if now_ns.saturating_sub(last) < gap_ns {
            return None;
        }
        if self.low_since.iter().any(Option::is_some) {
            self.noise.get_or_insert("a line stuck low");
        }
        let frame = match self.noise.take() {
            Some(why) => Err(DecodeError::Noise(why)),
            None => Ok(std::mem::take(&mut self.bits)),
        };
        *self = Assembler::new(self.timing);
        debug_assert!(!self.in_frame());
        Some(frame)
    }

    /// When to call [`Assembler::poll`] next (`None` while idle).
    pub fn deadline_ns(&self) -> Option<u64> {
        self.last_edge_ns
            .map(|t| t + self.timing.frame_gap_ms * 1_000_000)
    }
}

/// The edges a reader sends for `frame`: each bit a `pulse_us` low pulse on its line,
/// one every `interval_us`, starting at `t0_ns` (for tests and the guest's driver).
pub fn edges_of(frame: &[bool], t0_ns: u64, pulse_us: u64, interval_us: u64) -> Vec<EdgeEvent> {
    let mut out = Vec::with_capacity(frame.len() * 2);
    for (i, &bit) in frame.iter().enumerate() {
        let t = t0_ns + i as u64 * interval_us * 1000;
        let line = if bit { Line::D1 } else { Line::D0 };
        out.push(EdgeEvent {
            t_ns: t,
            line,
            falling: true,
        });
        out.push(EdgeEvent {
            t_ns: t + pulse_us * 1000,
            line,
            falling: false,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn bits(s: &str) -> Vec<bool> {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c == '1')
            .collect()
    }

    fn assemble(timing: WiegandTiming, edges: &[EdgeEvent]) -> Vec<FrameRead> {
        let mut a = Assembler::new(timing);
        let mut out: Vec<FrameRead> = edges.iter().filter_map(|&e| a.edge(e)).collect();
        if let Some(d) = a.deadline_ns() {
            out.extend(a.poll(d));
        }
        out
    }

    /// Known answer: facility 18, card 4242 as a 26-bit frame, bit by bit.
    /// 18 = 00010010, 4242 = 0001000010010010; bits 1–12 hold three ones → even parity
    /// bit 1; bits 13–24 hold three ones → odd parity bit 0.
    #[test]
    fn w26_known_answer() {
        let frame = bits("1 00010010 0001000010010010 0");
        let c = Layout::W26.decode(&frame).unwrap();
        assert_eq!((c.bits, c.facility, c.card), (26, 18, 4242));
        assert_eq!(Layout::W26.encode(18, 4242).unwrap(), frame);
    }

    #[test]
    fn w34_known_answer() {
        // 1000 = 0000001111101000 (6 ones → even parity 0); 65535 = 16 ones → odd parity 1.
        let frame = bits("0 0000001111101000 1111111111111111 1");
        let c = Layout::W34.decode(&frame).unwrap();
        assert_eq!((c.bits, c.facility, c.card), (34, 1000, 65535));
    }

    #[test]
    fn parity_and_length_errors() {
        let mut frame = Layout::W26.encode(18, 4242).unwrap();
        frame[5] = !frame[5];
        assert_eq!(
            Layout::W26.decode(&frame),
            Err(DecodeError::Parity { bit: 0 })
        );
        let mut frame = Layout::W26.encode(18, 4242).unwrap();
        frame[20] = !frame[20];
        assert_eq!(
            Layout::W26.decode(&frame),
            Err(DecodeError::Parity { bit: 25 })
        );
        let short = &Layout::W26.encode(18, 4242).unwrap()[..25];
        assert!(matches!(
            decode(&[Layout::W26, Layout::W34], short),
            Err(DecodeError::UnknownLength { found: 25, .. })
        ));
        assert_eq!(Layout::W26.encode(256, 1), None);
        assert_eq!(Layout::W26.encode(1, 65536), None);
    }

    #[test]
    fn raw_layout_without_parity() {
        let l = Layout {
            bits: 40,
            facility: [0, 8],
            card: [8, 32],
            parity: Parity::None,
        };
        l.validate().unwrap();
        let f = l.encode(200, 0xDEAD_BEEF).unwrap();
        assert_eq!(l.decode(&f).unwrap().card, 0xDEAD_BEEF);
        let bad = Layout {
            card: [20, 32],
            ..l
        };
        assert!(bad.validate().unwrap_err().contains("card"));
    }

    #[test]
    fn assembles_real_and_slow_pulse_widths() {
        let frame = Layout::W26.encode(18, 4242).unwrap();
        // A reader: 50 µs pulses every 1 ms. A slow test driver: 3 ms pulses every 8 ms.
        for (pulse, interval) in [(50, 1000), (20, 200), (3000, 8000)] {
            let got = assemble(
                WiegandTiming::default(),
                &edges_of(&frame, 1_000_000, pulse, interval),
            );
            assert_eq!(got, vec![Ok(frame.clone())], "{pulse} µs / {interval} µs");
        }
    }

    #[test]
    fn two_frames_split_by_silence() {
        let a = Layout::W26.encode(1, 2).unwrap();
        let b = Layout::W34.encode(3, 4).unwrap();
        let mut edges = edges_of(&a, 0, 50, 1000);
        edges.extend(edges_of(&b, 200_000_000, 50, 1000));
        let got = assemble(WiegandTiming::default(), &edges);
        assert_eq!(got, vec![Ok(a), Ok(b)]);
    }

    #[test]
    fn noise_is_reported_not_decoded() {
        let t = WiegandTiming::default();
        let frame = Layout::W26.encode(18, 4242).unwrap();
        // Both lines low at once.
        let mut e = edges_of(&frame, 0, 50, 1000);
        e.insert(
            1,
            EdgeEvent {
                t_ns: 10_000,
                line: Line::D1,
                falling: true,
            },
        );
        e.insert(
            2,
            EdgeEvent {
                t_ns: 20_000,
                line: Line::D1,
                falling: false,
            },
        );
        let got = assemble(t, &e);
        assert!(matches!(got[..], [Err(DecodeError::Noise(_))]), "{got:?}");
        // A glitch shorter than min_pulse_us.
        let got = assemble(t, &edges_of(&frame, 0, 2, 1000));
        assert!(matches!(got[..], [Err(DecodeError::Noise(_))]));
        // A line stuck low.
        let stuck = [EdgeEvent {
            t_ns: 0,
            line: Line::D0,
            falling: true,
        }];
        let got = assemble(t, &stuck);
        assert_eq!(got, vec![Err(DecodeError::Noise("a line stuck low"))]);
        // More than 64 bits.
        let long = vec![true; 70];
        let got = assemble(t, &edges_of(&long, 0, 50, 500));
        assert_eq!(got, vec![Err(DecodeError::Noise("more than 64 bits"))]);
        // A stray rising edge is ignored.
        let mut a = Assembler::new(t);
        assert_eq!(
            a.edge(EdgeEvent {
                t_ns: 5,
                line: Line::D1,
                falling: false
            }),
            None
        );
        assert_eq!(a.deadline_ns(), None);
    }

    proptest! {
        /// Every 26- and 34-bit credential survives encode → edges → assemble → decode, at
        /// any pulse width and interval the timing accepts.
        #[test]
        fn round_trip(fac in 0u64..65536, card in 0u64..65536, w34 in any::<bool>(),
                      pulse in 10u64..5000, extra in 1u64..10_000) {
            let layout = if w34 { Layout::W34 } else { Layout::W26 };
            let fac = if w34 { fac } else { fac % 256 };
            let frame = layout.encode(fac, card).unwrap();
            let got = assemble(WiegandTiming::default(), &edges_of(&frame, 7, pulse, pulse + extra));
            prop_assert_eq!(got.len(), 1);
            let c = decode(&[Layout::W26, Layout::W34], got[0].as_ref().unwrap()).unwrap();
            prop_assert_eq!((c.facility, c.card), (fac, card));
        }

        /// Any single flipped bit of a 26-bit frame is caught by its parity.
        #[test]
        fn one_flipped_bit_is_caught(fac in 0u64..256, card in 0u64..65536, i in 0usize..26) {
            let mut f = Layout::W26.encode(fac, card).unwrap();
            f[i] = !f[i];
            let caught = matches!(Layout::W26.decode(&f), Err(DecodeError::Parity { .. }));
            prop_assert!(caught);
        }

        /// Arbitrary edge streams never panic and every frame is ≤ 64 bits.
        #[test]
        fn arbitrary_edges_never_panic(ev in proptest::collection::vec((0u64..200_000_000, any::<bool>(), any::<bool>()), 0..300)) {
            let mut ev = ev;
            ev.sort_by_key(|e| e.0);
            let edges: Vec<EdgeEvent> = ev.into_iter().map(|(t_ns, d1, falling)| EdgeEvent {
                t_ns, line: if d1 { Line::D1 } else { Line::D0 }, falling }).collect();
            for f in assemble(WiegandTiming::default(), &edges).into_iter().flatten() {
                prop_assert!(f.len() <= 64);
                let _ = decode(&[Layout::W26, Layout::W34], &f);
            }
        }
    }
}
