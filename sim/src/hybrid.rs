//! The echo a two-wire line's hybrid returns: what the card sends to a line comes back in what
//! it receives from that line, delayed and attenuated through a short dispersive response, as
//! a 2-wire/4-wire hybrid with a mismatched line impedance does.

use cardpbx_hal::CHUNK_SAMPLES;

/// Longest echo delay the simulator models, ms (the echo canceller's longest tail).
pub const MAX_ECHO_DELAY_MS: u32 = 120;
/// Samples of the dispersive response that follows the delay.
const RESPONSE_LEN: usize = 8;
/// Shape of the echo path's response (sums of reflections off a mismatched line), scaled to a
/// peak of 1 before the loss is applied.
const RESPONSE: [f32; RESPONSE_LEN] = [0.25, 1.0, 0.55, -0.3, -0.2, 0.1, 0.05, -0.02];
const LINE_LEN: usize = (MAX_ECHO_DELAY_MS as usize) * 8 + RESPONSE_LEN + CHUNK_SAMPLES;

/// Settings of a simulated hybrid echo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EchoPath {
    /// Round-trip delay of the echo, ms (0..=[`MAX_ECHO_DELAY_MS`]).
    pub delay_ms: u32,
    /// Echo return loss: how much weaker the echo is than the signal sent, dB (≥ 0).
    pub loss_db: f32,
}

impl Default for EchoPath {
    fn default() -> Self {
        EchoPath { delay_ms: 8, loss_db: 12.0 }
    }
}

/// The echo path of one line: a delay line of what was sent and the response.
#[derive(Debug, Clone)]
pub struct Hybrid {
    taps: [f32; RESPONSE_LEN],
    delay: usize,
    hist: Box<[f32; LINE_LEN]>,
    pos: usize,
}

impl Hybrid {
    /// A hybrid with the given path; the delay is clamped to [`MAX_ECHO_DELAY_MS`] and a
    /// negative loss taken as 0 dB.
    pub fn new(path: EchoPath) -> Self {
        let gain = 10f32.powf(-path.loss_db.max(0.0) / 20.0);
        Hybrid {
            taps: RESPONSE.map(|t| t * gain),
            delay: path.delay_ms.min(MAX_ECHO_DELAY_MS) as usize * 8,
            hist: Box::new([0.0; LINE_LEN]),
            pos: 0,
        }
    }

    /// Forget what was sent (the loop opened).
    pub fn reset(&mut self) {
        self.hist.fill(0.0);
    }

    /// Take in what the card sent this tick and add its echo to what the line returns.
    ///
    /// # Real-time
    /// Constant work, no allocation.
    pub fn apply(&mut self, sent: &[i16; CHUNK_SAMPLES], returned: &mut [i16; CHUNK_SAMPLES]) {
        for (s, r) in sent.iter().zip(returned.iter_mut()) {
            self.hist[self.pos] = f32::from(*s);
            let mut e = 0.0;
            for (k, t) in self.taps.iter().enumerate() {
                let i = (self.pos + LINE_LEN - self.delay - k) % LINE_LEN;
                e += t * self.hist[i];
            }
            self.pos = (self.pos + 1) % LINE_LEN;
            *r = (f32::from(*r) + e).round().clamp(-32768.0, 32767.0) as i16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_impulse_comes_back_after_the_delay_at_the_loss() {
        let mut h = Hybrid::new(EchoPath { delay_ms: 2, loss_db: 20.0 });
        let mut out = Vec::new();
        for t in 0..8 {
            let mut sent = [0i16; CHUNK_SAMPLES];
            if t == 0 {
                sent[0] = 10_000;
            }
            let mut back = [0i16; CHUNK_SAMPLES];
            h.apply(&sent, &mut back);
            out.extend_from_slice(&back);
        }
        // 2 ms = 16 samples; the response peaks one sample later at 1/10 of the impulse.
        assert!(out[..16].iter().all(|&s| s == 0), "{:?}", &out[..16]);
        assert_eq!(out[16], 250);
        assert_eq!(out[17], 1000);
        assert_eq!(out[18], 550);
        assert!(out[16 + RESPONSE_LEN..].iter().all(|&s| s == 0));
    }

    #[test]
    fn reset_forgets_the_past() {
        let mut h = Hybrid::new(EchoPath { delay_ms: 1, loss_db: 0.0 });
        h.apply(&[20_000; CHUNK_SAMPLES], &mut [0; CHUNK_SAMPLES]);
        h.reset();
        let mut back = [0i16; CHUNK_SAMPLES];
        h.apply(&[0; CHUNK_SAMPLES], &mut back);
        assert_eq!(back, [0; CHUNK_SAMPLES]);
    }
}
