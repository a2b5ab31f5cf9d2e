//! Ring cadences: the on/off pattern of ringing voltage an FXS port applies.

use serde::{Deserialize, Serialize};

/// The most segments a cadence may have (four on/off pairs, enough for the UK double ring).
pub const MAX_CADENCE_SEGMENTS: usize = 8;

/// A ring cadence: alternating ring-on and ring-off times in milliseconds, starting with an on
/// segment, repeated until the ringing stops.
///
/// Always holds an even number (2..=8) of non-zero segments; [`RingCadence::new`] checks this.
/// In configuration files it is written as a list: `[1000, 4000]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<u32>", into = "Vec<u32>")]
pub struct RingCadence {
    segments: [u32; MAX_CADENCE_SEGMENTS],
    len: u8,
}

/// Why a list of segments is not a usable ring cadence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CadenceError {
    /// The list must hold an even number of segments, from 2 to 8.
    #[error("a ring cadence needs an even number of segments from 2 to 8, got {0}")]
    Length(usize),
    /// Every segment must last at least 1 ms.
    #[error("ring cadence segment {0} is 0 ms long")]
    ZeroSegment(usize),
}

const fn two(on: u32, off: u32) -> RingCadence {
    RingCadence { segments: [on, off, 0, 0, 0, 0, 0, 0], len: 2 }
}

impl RingCadence {
    /// China: 1000 ms on, 4000 ms off (fact sheet §8.2).
    pub const CHINA: RingCadence = two(1000, 4000);
    /// Germany: 1000 ms on, 4000 ms off.
    pub const GERMANY: RingCadence = two(1000, 4000);
    /// North America: 2000 ms on, 4000 ms off.
    pub const US: RingCadence = two(2000, 4000);
    /// France: 1500 ms on, 3500 ms off.
    pub const FRANCE: RingCadence = two(1500, 3500);
    /// Japan: 1000 ms on, 2000 ms off.
    pub const JAPAN: RingCadence = two(1000, 2000);
    /// United Kingdom double ring: 400 on, 200 off, 400 on, 2000 off.
    pub const UK: RingCadence = RingCadence { segments: [400, 200, 400, 2000, 0, 0, 0, 0], len: 4 };

    /// A cadence from alternating on/off times in milliseconds, starting with an on time.
    ///
    /// # Errors
    /// [`CadenceError::Length`] unless there is an even number of segments from 2 to 8;
    /// [`CadenceError::ZeroSegment`] when a segment is 0 ms.
    pub fn new(segments_ms: &[u32]) -> Result<Self, CadenceError> {
        let n = segments_ms.len();
        if !(2..=MAX_CADENCE_SEGMENTS).contains(&n) || n & 1 == 1 {
            return Err(CadenceError::Length(n));
        }
        if let Some(i) = segments_ms.iter().position(|&ms| ms == 0) {
            return Err(CadenceError::ZeroSegment(i));
        }
        let mut segments = [0; MAX_CADENCE_SEGMENTS];
        segments[..n].copy_from_slice(segments_ms);
        Ok(RingCadence { segments, len: n as u8 })
    }

    /// The segments in milliseconds: even indices ring, odd indices are silent.
    pub fn segments(&self) -> &[u32] {
        &self.segments[..usize::from(self.len)]
    }

    /// Length of one whole cycle in milliseconds.
    pub fn cycle_ms(&self) -> u64 {
        self.segments().iter().map(|&ms| u64::from(ms)).sum()
    }
}

impl Default for RingCadence {
    fn default() -> Self {
        RingCadence::CHINA
    }
}

impl TryFrom<Vec<u32>> for RingCadence {
    type Error = CadenceError;

    fn try_from(v: Vec<u32>) -> Result<Self, CadenceError> {
        RingCadence::new(&v)
    }
}

impl From<RingCadence> for Vec<u32> {
    fn from(c: RingCadence) -> Vec<u32> {
        c.segments().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_segments() {
        assert_eq!(RingCadence::new(&[]), Err(CadenceError::Length(0)));
        assert_eq!(RingCadence::new(&[1000]), Err(CadenceError::Length(1)));
        assert_eq!(RingCadence::new(&[1, 2, 3]), Err(CadenceError::Length(3)));
        assert_eq!(RingCadence::new(&[1; 10]), Err(CadenceError::Length(10)));
        assert_eq!(RingCadence::new(&[400, 0]), Err(CadenceError::ZeroSegment(1)));
        let c = RingCadence::new(&[400, 200, 400, 2000]).unwrap();
        assert_eq!(c, RingCadence::UK);
        assert_eq!(c.segments(), &[400, 200, 400, 2000]);
        assert_eq!(c.cycle_ms(), 3000);
        assert_eq!(RingCadence::default().segments(), &[1000, 4000]);
        assert_eq!(RingCadence::new(&[1; 8]).unwrap().cycle_ms(), 8);
    }
}
