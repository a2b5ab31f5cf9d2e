//! A simulated fax machine as the remote party of a channel: a [`FaxSession`] (T.30 over the
//! V.21 / V.27 ter / V.29 soft modems of the DSP crate) hears what the PBX sends on the
//! channel and its transmit audio is what the channel receives. The channel's signalling
//! (ringing, answer, clearing) stays with the simulated central office or exchange, so the
//! same terminal serves an FXO CO line and a PRI bearer alike.
//!
//! Audio goes through in 160-sample blocks (20 ms), as the standalone fax CLI exchanges it:
//! each tick's samples from the PBX are collected, and every 20 ticks the session processes
//! the block and its answer plays over the next 20 ticks. The session allocates at T.30 phase
//! changes; this is a test far end, not a card driver.

use cardpbx_dsp::fax::audio_modem::SoftModem;
use cardpbx_dsp::fax::session::{FaxSession, ImageModem};
use cardpbx_dsp::fax::t30::{FaxStatus, ModemFamily, Role, T30Config, T30Event, T30};
use cardpbx_dsp::fax::tiff::FaxPage;
use cardpbx_dsp::g711::Law;
use cardpbx_hal::{Chunk, CHUNK_SAMPLES};

/// Samples per processed block.
const BLOCK: usize = 160;
/// Transmit level, dBm0.
const LEVEL_DBM0: f32 = -13.0;

/// A simulated remote fax terminal. See the module docs.
pub struct SimFax {
    session: FaxSession<SoftModem>,
    out: [i16; BLOCK],
    out_fill: usize,
    inp: [i16; BLOCK],
    in_pos: usize,
    received: Vec<FaxPage>,
    pages_sent: usize,
    bit_rate: u32,
    remote_ident: Option<String>,
    blocks: u64,
}

impl std::fmt::Debug for SimFax {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimFax")
            .field("status", &self.status())
            .field("received", &self.received.len())
            .field("pages_sent", &self.pages_sent)
            .field("bit_rate", &self.bit_rate)
            .finish_non_exhaustive()
    }
}

impl SimFax {
    /// A calling terminal that sends `pages` (CNG, then waits for the PBX's DIS), offering
    /// `modems`, identifying itself as `ident`.
    pub fn sender(pages: Vec<FaxPage>, ident: &str, modems: &[ModemFamily]) -> SimFax {
        SimFax::new(Role::Calling, pages, ident, modems)
    }

    /// An answering terminal (CED, DIS) that receives what the PBX sends.
    pub fn receiver(ident: &str, modems: &[ModemFamily]) -> SimFax {
        SimFax::new(Role::Called, Vec::new(), ident, modems)
    }

    fn new(role: Role, pages: Vec<FaxPage>, ident: &str, modems: &[ModemFamily]) -> SimFax {
        let modem = SoftModem::with_families(modems);
        let cfg = T30Config { ident: ident.into(), rates: modem.rates(), ..T30Config::default() };
        SimFax {
            session: FaxSession::new(T30::new(role, pages, cfg), modem, LEVEL_DBM0),
            out: [0; BLOCK],
            out_fill: 0,
            inp: [0; BLOCK],
            in_pos: BLOCK,
            received: Vec::new(),
            pages_sent: 0,
            bit_rate: 0,
            remote_ident: None,
            blocks: 0,
        }
    }

    /// The T.30 status once the session is over.
    pub fn status(&self) -> Option<FaxStatus> {
        self.session.status()
    }

    /// Whether the session is over and its last signal sent.
    pub fn is_finished(&self) -> bool {
        self.session.is_finished()
    }

    /// Pages received so far (receiver).
    pub fn received(&self) -> &[FaxPage] {
        &self.received
    }

    /// Pages the PBX confirmed (sender).
    pub fn pages_sent(&self) -> usize {
        self.pages_sent
    }

    /// Rate of the last DCS, bit/s.
    pub fn bit_rate(&self) -> u32 {
        self.bit_rate
    }

    /// The PBX's CSI/TSI.
    pub fn remote_ident(&self) -> Option<&str> {
        self.remote_ident.as_deref()
    }

    /// Seconds of audio processed.
    pub fn seconds(&self) -> f64 {
        self.blocks as f64 * BLOCK as f64 / 8000.0
    }

    /// One tick: hear what the PBX sent on the channel (`from_pbx`) and fill what the channel
    /// receives (`to_pbx`).
    pub(crate) fn tick(&mut self, law: Law, from_pbx: &Chunk, to_pbx: &mut Chunk) {
        let dst = &mut self.out[self.out_fill..self.out_fill + CHUNK_SAMPLES];
        law.decode_block(from_pbx, dst);
        self.out_fill += CHUNK_SAMPLES;
        if self.in_pos < BLOCK {
            law.encode_block(&self.inp[self.in_pos..self.in_pos + CHUNK_SAMPLES], to_pbx);
            self.in_pos += CHUNK_SAMPLES;
        } else {
            *to_pbx = [law.silence(); CHUNK_SAMPLES];
        }
        if self.out_fill < BLOCK {
            return;
        }
        self.out_fill = 0;
        let mut tx = [0i16; BLOCK];
        self.session.process(&self.out, &mut tx);
        self.blocks += 1;
        self.inp = tx;
        self.in_pos = 0;
        while let Some(e) = self.session.poll_event() {
            match e {
                T30Event::PageReceived(p) => self.received.push(p),
                T30Event::PageSent { accepted: true, .. } => self.pages_sent += 1,
                T30Event::Negotiated(d) => self.bit_rate = d.rate.bps(),
                T30Event::RemoteIdent(id) => self.remote_ident = Some(id.trim().to_string()),
                _ => {}
            }
        }
    }
}
