//! Configuration of a simulated card and of the far ends it simulates.

use crate::e1::{ExchangeConfig, SpanFarEnd};
use crate::hybrid::EchoPath;
use cardpbx_dsp::callerid::{Format, FskStandard};
use cardpbx_dsp::dtmf::DtmfGenConfig;
use cardpbx_dsp::tone::ToneSpec;
use cardpbx_dsp::toneplan::{ProgressTone, TonePlan};
use cardpbx_hal::Law;

/// How the simulated card paces its 1 ms tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClockMode {
    /// `wait_tick` returns at once: simulated time runs as fast as the work allows, and the
    /// run is identical from one execution to the next.
    #[default]
    Virtual,
    /// `wait_tick` sleeps until the next absolute 1 ms deadline since the first tick.
    RealTime,
}

/// How the simulated central office tells that the far end cleared a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DisconnectSignal {
    /// Reverse the line polarity ([`HalEvent::PolarityReversal`](cardpbx_hal::HalEvent)).
    PolarityReversal,
    /// Play busy tone into the line until our side goes on-hook (common in China).
    BusyTone,
    /// Both: reverse the polarity and play busy tone.
    #[default]
    Both,
}

/// Behaviour of the simulated central office behind every FXO port.
#[derive(Debug, Clone, PartialEq)]
pub struct CoLineConfig {
    /// Ringing cadence, alternating on and off times in ms starting with on
    /// (default China: 1000 on, 4000 off).
    pub ring_cadence_ms: Vec<u32>,
    /// Outgoing calls: the called party answers this long after ringback starts (default 3000).
    pub answer_delay_ms: u32,
    /// How a far-end clear is signalled (default [`DisconnectSignal::Both`]).
    pub disconnect: DisconnectSignal,
    /// Reverse the polarity when an outgoing call is answered (default false).
    pub answer_polarity_reversal: bool,
    /// Dial tone the CO plays after seizure (default China 450 Hz continuous).
    pub dial_tone: ToneSpec,
    /// Busy tone (default China 450 Hz 350/350 ms).
    pub busy_tone: ToneSpec,
    /// Ringback tone while the called party rings (default China 450 Hz 1000/4000 ms).
    pub ringback_tone: ToneSpec,
    /// The number is complete after this silence since the last digit (default 3000 ms).
    pub interdigit_timeout_ms: u32,
    /// The number is complete as soon as this many digits arrived (default none: timeout).
    pub expected_digits: Option<usize>,
    /// With dial tone and no digit for this long, the CO gives up and plays busy (default 10 s).
    pub dial_tone_timeout_ms: u32,
    /// Numbers for which the called party is busy: the CO plays busy tone instead of ringback.
    pub busy_numbers: Vec<String>,
    /// Numbers not in service: the CO plays the special information tone instead of ringback.
    pub unobtainable_numbers: Vec<String>,
    /// Special information tone for unobtainable numbers (default E.180: 950/1400/1800 Hz,
    /// 330 ms each, then 1 s silence).
    pub sit_tone: ToneSpec,
    /// The remote party clears this long after answer (default none: only on `hang_up`).
    pub hold_ms: Option<u32>,
    /// Level of the remote party's audio signature in dBm0 (default -15).
    pub signature_level_dbm0: f32,
    /// Caller ID sent on incoming calls between the first and second ring (default Bell 202
    /// MDMF at -13 dBm0).
    pub callerid: Option<CoCallerId>,
    /// Hybrid echo the line returns while our port holds it off-hook (default none).
    pub echo: Option<EchoPath>,
}

/// How a simulated exchange sends caller ID.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CoCallerId {
    /// The modem (FSK between the first and second ring).
    pub standard: FskStandard,
    /// The message format (FSK).
    pub format: Format,
    /// Send DTMF caller ID before the first ring instead of FSK (ETS 300 659-1 Annex C:
    /// `A<number>C`, `B00C` unavailable, `B10C` private; digits 70 ms on, 70 ms off at
    /// `level_dbm0` per tone, no polarity reversal; the first ring starts `after_ring_ms`
    /// after the last digit).
    pub dtmf: bool,
    /// Level, dBm0.
    pub level_dbm0: f32,
    /// FSK: delay from the end of the first ring burst to the start of the data, ms. DTMF:
    /// delay from the end of the last digit to the first ring burst.
    pub after_ring_ms: u32,
}

impl Default for CoCallerId {
    fn default() -> Self {
        CoCallerId {
            standard: FskStandard::Bell202,
            format: Format::Mdmf,
            dtmf: false,
            level_dbm0: -13.0,
            after_ring_ms: 600,
        }
    }
}

impl Default for CoLineConfig {
    fn default() -> Self {
        let plan = TonePlan::china();
        CoLineConfig {
            ring_cadence_ms: plan.ring_cadence_ms().to_vec(),
            answer_delay_ms: 3000,
            disconnect: DisconnectSignal::Both,
            answer_polarity_reversal: false,
            dial_tone: plan.tone(ProgressTone::Dial),
            busy_tone: plan.tone(ProgressTone::Busy),
            ringback_tone: plan.tone(ProgressTone::Ringback),
            interdigit_timeout_ms: 3000,
            expected_digits: None,
            dial_tone_timeout_ms: 10_000,
            busy_numbers: Vec::new(),
            unobtainable_numbers: Vec::new(),
            sit_tone: plan.tone(ProgressTone::Sit),
            hold_ms: None,
            signature_level_dbm0: -15.0,
            callerid: Some(CoCallerId::default()),
            echo: None,
        }
    }
}

/// Behaviour of the simulated phone on every FXS port.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PhoneConfig {
    /// DTMF timing and level (default 60 ms on, 60 ms off, -10 dBm0 per tone).
    pub dtmf: DtmfGenConfig,
    /// Answer automatically this many ms after ringing starts (default none).
    pub auto_answer_ms: Option<u32>,
    /// Ringing is over when no burst came for this long (default 6000 ms).
    pub ring_gone_ms: u32,
    /// Level of the phone's audio signature in dBm0 (default -15).
    pub signature_level_dbm0: f32,
    /// Caller ID the phone's display decodes while it rings (default Bell 202).
    pub callerid: Option<FskStandard>,
    /// The display also decodes DTMF caller ID sent before the first ring (default false).
    pub callerid_dtmf: bool,
    /// Hybrid echo the phone's line returns while off-hook (default none).
    pub echo: Option<EchoPath>,
}

impl Default for PhoneConfig {
    fn default() -> Self {
        PhoneConfig {
            dtmf: DtmfGenConfig::default(),
            auto_answer_ms: None,
            ring_gone_ms: 6000,
            signature_level_dbm0: -15.0,
            callerid: Some(FskStandard::Bell202),
            callerid_dtmf: false,
            echo: None,
        }
    }
}

/// Everything that describes one simulated card.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// The card's name (`CardInfo::name`).
    pub name: String,
    /// Number of FXS ports, each with a simulated phone (default 4).
    pub fxs_ports: u32,
    /// Number of FXO ports, each on a simulated central-office line (default 2).
    pub fxo_ports: u32,
    /// Number of E1 spans (31 timeslots each; default 0).
    pub e1_spans: u32,
    /// Companding law of every channel (default A-law).
    pub law: Law,
    /// Seed of every random choice the simulator makes (default 1).
    pub seed: u64,
    /// Virtual or real-time clock (default virtual).
    pub clock: ClockMode,
    /// The simulated central office on FXO ports.
    pub co: CoLineConfig,
    /// The simulated phones on FXS ports.
    pub phone: PhoneConfig,
    /// What is at the far end of each E1 span (index 0 = span 1; missing spans: nothing).
    pub span_far: Vec<SpanFarEnd>,
    /// How the simulated exchanges on E1 spans behave.
    pub exchange: ExchangeConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            name: "sim0".into(),
            fxs_ports: 4,
            fxo_ports: 2,
            e1_spans: 0,
            law: Law::Alaw,
            seed: 1,
            clock: ClockMode::Virtual,
            co: CoLineConfig::default(),
            phone: PhoneConfig::default(),
            span_far: Vec::new(),
            exchange: ExchangeConfig::default(),
        }
    }
}
