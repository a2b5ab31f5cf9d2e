//! E1/T1 spans: line configuration, alarms and error counters.

use serde::Serialize;
use std::fmt;

/// A span's number on its card, 1-based like the faceplate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct SpanId(pub u32);

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "span {}", self.0)
    }
}

/// Frame format of the span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Framing {
    /// E1 with common channel signalling (PRI: D-channel in timeslot 16, 30 bearers).
    #[default]
    Ccs,
    /// E1 with channel associated signalling (multiframe, ABCD bits in timeslot 16).
    Cas,
    /// T1 extended superframe.
    Esf,
    /// T1 D4 superframe.
    D4,
}

/// Line code of the span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LineCode {
    /// High density bipolar of order 3 (E1).
    #[default]
    Hdb3,
    /// Alternate mark inversion.
    Ami,
    /// Bipolar with 8-zero substitution (T1).
    B8zs,
}

/// How a span is to be run: what `dahdi_cfg` would write with `DAHDI_SPANCONFIG`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SpanConfig {
    /// Frame format.
    pub framing: Framing,
    /// Line code.
    pub line_code: LineCode,
    /// CRC-4 multiframe on E1.
    pub crc4: bool,
    /// Timing source priority: 0 = never take the card clock from this span; 1 = first choice,
    /// 2 = second, and so on (DAHDI's `sync` field).
    pub timing_priority: u8,
    /// Line build-out / cable length index (0 = default, short haul).
    pub line_build_out: u8,
}

impl Default for SpanConfig {
    fn default() -> Self {
        SpanConfig {
            framing: Framing::Ccs,
            line_code: LineCode::Hdb3,
            crc4: true,
            timing_priority: 1,
            line_build_out: 0,
        }
    }
}

/// Span alarms as a bit set (DAHDI `DAHDI_ALARM_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Alarms(pub u8);

impl Alarms {
    /// No alarm: the span is up.
    pub const NONE: Alarms = Alarms(0);
    /// Loss of signal (red): nothing arrives on the receive pair.
    pub const LOS: Alarms = Alarms(1 << 0);
    /// Loss of frame alignment (red).
    pub const LOF: Alarms = Alarms(1 << 1);
    /// Alarm indication signal (blue): the far end sends all ones.
    pub const AIS: Alarms = Alarms(1 << 2);
    /// Remote alarm indication (yellow): the far end reports it lost our signal.
    pub const RAI: Alarms = Alarms(1 << 3);
    /// The span is in loopback (maintenance).
    pub const LOOPBACK: Alarms = Alarms(1 << 4);
    /// The span is not configured or not running.
    pub const NOT_OPEN: Alarms = Alarms(1 << 5);

    /// The alarms that take a span's line (its D-channel, CAS bits and bearers) out of
    /// service: loss of signal or framing, AIS, remote alarm, or a span not configured.
    pub const OUT_OF_SERVICE: Alarms =
        Alarms(Alarms::LOS.0 | Alarms::LOF.0 | Alarms::AIS.0 | Alarms::RAI.0 | Alarms::NOT_OPEN.0);

    /// Whether `other`'s bits are all set in `self`.
    pub fn contains(self, other: Alarms) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// Whether any of `other`'s bits is set in `self`.
    pub fn intersects(self, other: Alarms) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether no alarm is set.
    pub fn is_clear(self) -> bool {
        self.0 == 0
    }

    /// Both sets together.
    pub fn union(self, other: Alarms) -> Alarms {
        Alarms(self.0 | other.0)
    }

    /// `self` without `other`'s bits.
    pub fn without(self, other: Alarms) -> Alarms {
        Alarms(self.0 & !other.0)
    }

    /// The alarm names, for status output: `["LOS", "AIS"]`, empty when clear.
    pub fn names(self) -> Vec<&'static str> {
        const NAMES: [(Alarms, &str); 6] = [
            (Alarms::LOS, "LOS"),
            (Alarms::LOF, "LOF"),
            (Alarms::AIS, "AIS"),
            (Alarms::RAI, "RAI"),
            (Alarms::LOOPBACK, "LOOPBACK"),
            (Alarms::NOT_OPEN, "NOTOPEN"),
        ];
        NAMES.iter().filter(|(a, _)| self.contains(*a)).map(|(_, n)| *n).collect()
    }
}

impl fmt::Display for Alarms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_clear() {
            f.write_str("OK")
        } else {
            f.write_str(&self.names().join(","))
        }
    }
}

/// Error counters of a span since it was started (DAHDI `struct dahdi_spaninfo`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SpanCounters {
    /// Controlled frame slips (clock mismatch with the far end).
    pub slips: u64,
    /// CRC-4 errors.
    pub crc4_errors: u64,
    /// Bipolar (line code) violations.
    pub bipolar_violations: u64,
    /// Framing bit errors.
    pub frame_errors: u64,
    /// E-bit errors reported by the far end.
    pub ebit_errors: u64,
}

/// Static description of a span.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SpanInfo {
    /// Span number on the card.
    pub id: SpanId,
    /// A technician's name: `card0/span1`.
    pub name: String,
    /// Number of timeslots carried (32 on E1 including timeslot 0).
    pub timeslots: u8,
}

/// Live state of a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SpanStatus {
    /// Configuration in force, `None` before the span is configured.
    pub config: Option<SpanConfig>,
    /// Current alarms.
    pub alarms: Alarms,
    /// Error counters.
    pub counters: SpanCounters,
    /// Whether the card currently takes its clock from this span.
    pub is_timing_source: bool,
}

#[cfg(test)]
mod tests {
    use super::Alarms;

    #[test]
    fn intersects_is_any_common_bit_and_out_of_service_leaves_loopback_alone() {
        let los_rai = Alarms::LOS.union(Alarms::RAI);
        assert!(los_rai.intersects(Alarms::RAI));
        assert!(!los_rai.intersects(Alarms::AIS));
        assert!(!Alarms::NONE.intersects(Alarms::OUT_OF_SERVICE));
        for a in [Alarms::LOS, Alarms::LOF, Alarms::AIS, Alarms::RAI, Alarms::NOT_OPEN] {
            assert!(a.intersects(Alarms::OUT_OF_SERVICE), "{a}");
        }
        assert!(!Alarms::LOOPBACK.intersects(Alarms::OUT_OF_SERVICE));
    }
}
