//! The session's [`ImageModem`] over the real image modems of [`super::modem`]: V.27 ter
//! (2400/4800 bit/s), V.29 (7200/9600 bit/s) and V.17 (7200–14400 bit/s).
//!
//! T.30 names rates with [`FaxRate`], the modems with [`ImageRate`]; [`image_rate`] joins
//! them. The session hands a whole page to [`ImageTx::push_bytes`] at once, more than a
//! modem's bit queue holds, so [`ModemTxAdapter`] keeps the bytes and feeds the modem as its
//! queue drains.
//!
//! V.17 training: T.30 sends TCF with V.17's long training and the image data after CFR with
//! the short one (the receiver keeps what it learnt from TCF). The session does not say which
//! burst is which, so the adapter tells them apart by content: TCF is all zero octets, while
//! image data (T.4 lines start with an EOL, ECM frames with HDLC flags) never is. The V.17
//! receiver recognises either training by itself.

use std::collections::VecDeque;

use super::modem::{self, ImageRate, ModemRx, ModemTx, RxConfig, TxConfig};
use super::session::{ImageModem, ImageRx, ImageTx};
use super::t30::{FaxRate, ModemFamily};

/// The modem rate for a T.30 rate, if one is implemented.
pub fn image_rate(rate: FaxRate) -> Option<ImageRate> {
    match rate {
        FaxRate::V27ter2400 => Some(ImageRate::V27_2400),
        FaxRate::V27ter4800 => Some(ImageRate::V27_4800),
        FaxRate::V29_7200 => Some(ImageRate::V29_7200),
        FaxRate::V29_9600 => Some(ImageRate::V29_9600),
        FaxRate::V17_7200 => Some(ImageRate::V17_7200),
        FaxRate::V17_9600 => Some(ImageRate::V17_9600),
        FaxRate::V17_12000 => Some(ImageRate::V17_12000),
        FaxRate::V17_14400 => Some(ImageRate::V17_14400),
    }
}

/// Image modems in software: any of V.27 ter, V.29 and V.17.
#[derive(Debug, Clone)]
pub struct SoftModem {
    families: Vec<ModemFamily>,
    tx: TxConfig,
    rx: RxConfig,
}

impl SoftModem {
    /// V.27 ter, V.29 and V.17 with default settings.
    pub fn new() -> Self {
        Self::with_families(&[ModemFamily::V27ter, ModemFamily::V29, ModemFamily::V17])
    }

    /// Only the given modem families.
    pub fn with_families(families: &[ModemFamily]) -> Self {
        SoftModem { families: families.to_vec(), tx: TxConfig::default(), rx: RxConfig::default() }
    }

    /// Transmit settings (level, echo protection tone).
    pub fn tx_config(mut self, cfg: TxConfig) -> Self {
        self.tx = cfg;
        self
    }

    /// Receive settings (carrier thresholds).
    pub fn rx_config(mut self, cfg: RxConfig) -> Self {
        self.rx = cfg;
        self
    }
}

impl Default for SoftModem {
    fn default() -> Self {
        Self::new()
    }
}

/// A transmitter: a real modem plus the bytes that did not fit its queue yet.
#[derive(Debug, Clone)]
pub struct ModemTxAdapter {
    inner: Option<modem::ImageTx>,
    pending: VecDeque<u8>,
    finish: bool,
    /// The first data has been seen (and V.17's training chosen).
    started: bool,
}

impl ModemTxAdapter {
    fn feed(&mut self) {
        let Some(m) = self.inner.as_mut() else { return };
        while !self.pending.is_empty() && m.space() >= 8 {
            let (a, b) = self.pending.as_slices();
            let chunk = if a.is_empty() { b } else { a };
            let n = m.push_bytes(chunk);
            if n == 0 {
                break;
            }
            self.pending.drain(..n);
        }
        if self.finish && self.pending.is_empty() {
            m.finish();
        }
    }

    /// The underlying modem, if the rate is implemented.
    pub fn modem(&self) -> Option<&modem::ImageTx> {
        self.inner.as_ref()
    }
}

impl ImageTx for ModemTxAdapter {
    fn push_bytes(&mut self, data: &[u8]) {
        if !self.started && !data.is_empty() {
            self.started = true;
            // Image data (not TCF): V.17 sends the short training.
            if let Some(m) = self.inner.as_mut() {
                m.set_short_train(data.iter().any(|&b| b != 0));
            }
        }
        self.pending.extend(data);
        self.feed();
    }

    fn finish(&mut self) {
        self.finish = true;
        self.feed();
    }

    fn fill(&mut self, out: &mut [i16]) -> usize {
        // Feed before each slice: 10 ms needs at most 96 bits at 9600 bit/s.
        let mut pos = 0;
        while pos < out.len() {
            self.feed();
            let Some(m) = self.inner.as_mut() else { break };
            let end = (pos + 80).min(out.len());
            let n = m.fill(&mut out[pos..end]);
            pos += n;
            if pos < end {
                break;
            }
        }
        out[pos..].fill(0);
        pos
    }
}

/// A receiver over a real modem.
#[derive(Debug, Clone)]
pub struct ModemRxAdapter {
    inner: Option<modem::ImageRx>,
}

impl ModemRxAdapter {
    /// The underlying modem, if the rate is implemented.
    pub fn modem(&self) -> Option<&modem::ImageRx> {
        self.inner.as_ref()
    }
}

impl ImageRx for ModemRxAdapter {
    fn process(&mut self, samples: &[i16], on_bit: &mut dyn FnMut(u8)) {
        if let Some(m) = self.inner.as_mut() {
            m.process(samples, on_bit);
        }
    }

    fn carrier(&self) -> bool {
        self.inner.as_ref().is_some_and(|m| m.carrier())
    }
}

impl ImageModem for SoftModem {
    type Tx = ModemTxAdapter;
    type Rx = ModemRxAdapter;

    fn rates(&self) -> Vec<FaxRate> {
        FaxRate::FALLBACK
            .into_iter()
            .filter(|r| image_rate(*r).is_some() && self.families.contains(&r.family()))
            .collect()
    }

    fn make_tx(&mut self, rate: FaxRate) -> ModemTxAdapter {
        ModemTxAdapter {
            inner: image_rate(rate).map(|r| modem::ImageTx::new(r, self.tx)),
            pending: VecDeque::new(),
            finish: false,
            started: false,
        }
    }

    fn make_rx(&mut self, rate: FaxRate) -> ModemRxAdapter {
        ModemRxAdapter { inner: image_rate(rate).map(|r| modem::ImageRx::new(r, self.rx)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_follow_families() {
        assert_eq!(SoftModem::new().rates(), FaxRate::FALLBACK);
        let both = SoftModem::with_families(&[ModemFamily::V27ter, ModemFamily::V29]).rates();
        assert_eq!(
            both,
            vec![FaxRate::V29_9600, FaxRate::V29_7200, FaxRate::V27ter4800, FaxRate::V27ter2400]
        );
        let v27 = SoftModem::with_families(&[ModemFamily::V27ter, ModemFamily::V17]).rates();
        assert_eq!(
            v27,
            vec![
                FaxRate::V17_14400,
                FaxRate::V17_12000,
                FaxRate::V17_9600,
                FaxRate::V17_7200,
                FaxRate::V27ter4800,
                FaxRate::V27ter2400
            ]
        );
    }

    #[test]
    fn a_page_larger_than_the_queue_goes_out_whole() {
        let mut m = SoftModem::new();
        let data: Vec<u8> = (0..20_000u32).map(|i| (i * 37 % 251) as u8).collect();
        let mut tx = m.make_tx(FaxRate::V29_9600);
        tx.push_bytes(&data);
        tx.finish();
        let mut rx = m.make_rx(FaxRate::V29_9600);
        let mut bits = Vec::new();
        let mut buf = [0i16; 160];
        let mut blocks = 0;
        loop {
            let n = tx.fill(&mut buf);
            rx.process(&buf, &mut |b| bits.push(b));
            blocks += 1;
            assert!(blocks < 10_000, "transmitter never ended");
            if n < buf.len() {
                break;
            }
        }
        rx.process(&[0; 1600], &mut |b| bits.push(b));
        assert_eq!(tx.modem().map(|t| t.underruns()), Some(0));
        // Find the data after the training ones.
        let want: Vec<u8> = data.iter().flat_map(|&b| (0..8).map(move |i| (b >> i) & 1)).collect();
        let start = (0..2000)
            .find(|&o| bits.len() >= o + 64 && bits[o..o + 64] == want[..64])
            .expect("data found");
        assert!(bits.len() >= start + want.len(), "bits lost: {}", bits.len() - start);
        assert_eq!(&bits[start..start + want.len()], &want[..]);
    }

    fn short_train(tx: &ModemTxAdapter) -> bool {
        match tx.modem() {
            Some(modem::ImageTx::V17(t)) => t.short_train(),
            other => panic!("not V.17: {other:?}"),
        }
    }

    #[test]
    fn v17_tcf_trains_long_and_image_data_short() {
        let mut m = SoftModem::new();
        let mut tcf = m.make_tx(FaxRate::V17_14400);
        tcf.push_bytes(&[0; 2700]);
        assert!(!short_train(&tcf));
        let mut page = m.make_tx(FaxRate::V17_14400);
        page.push_bytes(&[0x00, 0x80, 0x12]);
        assert!(short_train(&page));
    }
}
