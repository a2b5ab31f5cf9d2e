//! The remote party on an E1 bearer timeslot, shared by the span far ends (the PRI exchange
//! in [`e1`](crate::e1) and the R2 exchange in [`r2far`](crate::r2far)): it talks its audio
//! signature while its call is up and checks what the PBX sends it.

use crate::signature::{AudioCheck, EndpointId, Listener, SignaturePlan};
use cardpbx_dsp::dtmf::{DtmfError, DtmfGenConfig, DtmfGenerator};
use cardpbx_dsp::g711::Law;
use cardpbx_dsp::tone::{Segment, ToneGen, ToneSpec};
use cardpbx_hal::{Chunk, CHUNK_SAMPLES};

/// One timeslot's remote party.
pub(crate) struct RemoteParty {
    talking: bool,
    voice: ToneGen,
    listener: Listener,
    /// DTMF keys the party presses (sent instead of its voice while they sound).
    keys: DtmfGenerator,
    keys_on: bool,
}

/// How remote parties press keys: 80 ms tones, 80 ms pauses, -8 dBm0 per tone.
pub(crate) fn remote_keys() -> DtmfGenerator {
    DtmfGenerator::new(DtmfGenConfig { on_ms: 80, off_ms: 80, level_dbm0: -8.0, twist_db: 0.0 })
}

impl RemoteParty {
    /// The party on timeslot `ts` of span `span` (1-based), talking at `level_dbm0`.
    /// Timeslots 0 and 16 carry no bearer: their party is silent.
    pub(crate) fn new(span: u32, ts: u8, level_dbm0: f32, plan: &SignaturePlan) -> Self {
        let spec = if ts == 0 || ts == 16 {
            ToneSpec::new(&[Segment::silence(0)], false).expect("silence is a valid tone")
        } else {
            plan.signature_tone(EndpointId::Bearer { span, ts }, level_dbm0)
        };
        RemoteParty {
            talking: false,
            voice: ToneGen::new(spec),
            listener: Listener::new(),
            keys: remote_keys(),
            keys_on: false,
        }
    }

    /// The call is up (`true`: talk and listen) or not.
    pub(crate) fn set_talking(&mut self, on: bool) {
        self.talking = on;
        self.listener.set_active(on);
    }

    /// Expect `peer`'s signature while talking.
    pub(crate) fn expect_peer(&mut self, peer: Option<EndpointId>) {
        self.listener.expect_peer(peer);
    }

    /// Press DTMF keys (sent while the call is up, in place of the party's voice).
    pub(crate) fn press(&mut self, digits: &str) -> Result<(), DtmfError> {
        self.keys.queue(digits)?;
        self.keys_on = true;
        Ok(())
    }

    /// Whether the party is pressing keys (its generator needs every tick).
    pub(crate) fn pressing(&self) -> bool {
        self.keys_on
    }

    /// The audio path check so far.
    pub(crate) fn check(&self) -> AudioCheck {
        self.listener.check()
    }

    /// One chunk: add the party's voice to `out` (nothing while not talking) and listen to
    /// `heard` (linear samples from the PBX).
    pub(crate) fn mix_and_listen(
        &mut self,
        plan: &SignaturePlan,
        heard: &[i16; CHUNK_SAMPLES],
        out: &mut [i16; CHUNK_SAMPLES],
    ) {
        if !self.talking {
            return;
        }
        let mut v = [0i16; CHUNK_SAMPLES];
        if self.keys_on {
            self.keys_on = self.keys.fill(&mut v);
        } else {
            self.voice.fill(&mut v);
        }
        for (o, s) in out.iter_mut().zip(v) {
            *o = o.saturating_add(s);
        }
        self.listener.push(plan, heard);
    }

    /// One chunk of a plain bearer: talk to the PBX and listen to it (G.711 both ways).
    pub(crate) fn tick(
        &mut self,
        law: Law,
        plan: &SignaturePlan,
        from_pbx: &Chunk,
        to_pbx: &mut Chunk,
    ) {
        let mut out = [0i16; CHUNK_SAMPLES];
        if self.talking {
            let mut heard = [0i16; CHUNK_SAMPLES];
            law.decode_block(from_pbx, &mut heard);
            self.mix_and_listen(plan, &heard, &mut out);
        }
        law.encode_block(&out, to_pbx);
    }
}
