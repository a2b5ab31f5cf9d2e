//! External audio peers: another program as the far end of a channel's audio.
//!
//! The format is the one `/work/shared/peers/fax_peer` speaks: raw s16le 8 kHz PCM in lock-step
//! blocks of 160 samples. For each block, each side first writes 160 samples, then reads 160.
//! A helper thread owns the files (opening a FIFO blocks until the other side opens it, and the
//! two may open in either order); the tick hands blocks to it over bounded channels.

use crate::signature::BLOCK_SAMPLES;
use cardpbx_dsp::g711::Law;
use cardpbx_hal::{ChannelId, Chunk, Error, ErrorKind, Result, CHUNK_SAMPLES};
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One block of PCM.
type Block = [i16; BLOCK_SAMPLES];

/// How long the virtual clock waits for the peer's block before giving the binding up.
const PEER_TIMEOUT: Duration = Duration::from_secs(30);
/// Blocks buffered each way between the tick and the helper thread.
const QUEUE_BLOCKS: usize = 8;

/// Counters of an external audio binding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtAudioStats {
    /// Blocks handed to the peer.
    pub blocks_out: u64,
    /// Blocks received from the peer.
    pub blocks_in: u64,
    /// Real-time clock: block boundaries at which the peer's next block had not arrived.
    pub underruns: u64,
    /// Real-time clock: our blocks dropped because the writer thread fell behind.
    pub overruns: u64,
    /// The binding ended (peer end of file, an I/O error, or the peer timed out); the line
    /// is silent since.
    pub ended: bool,
    /// Why it ended, when known.
    pub end_reason: Option<String>,
}

/// The tick side of one binding.
#[derive(Debug)]
pub(crate) struct ExtBinding {
    chan: ChannelId,
    law: Law,
    realtime: bool,
    to_thread: Option<Sender<Block>>,
    from_thread: Receiver<Block>,
    out: Block,
    out_fill: usize,
    inp: Block,
    in_pos: usize,
    stats: ExtAudioStats,
    reason: Arc<Mutex<Option<String>>>,
}

fn is_fifo(p: &Path) -> bool {
    std::fs::metadata(p).map(|m| m.file_type().is_fifo()).unwrap_or(false)
}

fn make_fifo(p: &Path) -> Result<()> {
    if p.exists() {
        return Ok(());
    }
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600))
        .map_err(|e| Error::with_source(ErrorKind::Io, format!("mkfifo {}", p.display()), e))
}

impl ExtBinding {
    /// Create missing FIFOs and start the helper thread.
    pub(crate) fn start(
        chan: ChannelId,
        law: Law,
        realtime: bool,
        to_peer: PathBuf,
        from_peer: PathBuf,
    ) -> Result<Self> {
        make_fifo(&to_peer)?;
        make_fifo(&from_peer)?;
        let (to_thread, thread_rx) = bounded::<Block>(QUEUE_BLOCKS);
        let (thread_tx, from_thread) = bounded::<Block>(QUEUE_BLOCKS);
        let reason = Arc::new(Mutex::new(None));
        let r2 = reason.clone();
        std::thread::Builder::new()
            .name(format!("sim-ext-{}", chan.0))
            .spawn(move || {
                let why = pump(&to_peer, &from_peer, &thread_rx, &thread_tx);
                if let Ok(mut g) = r2.lock() {
                    *g = Some(why);
                }
            })
            .map_err(|e| Error::with_source(ErrorKind::Io, "spawn external audio thread", e))?;
        Ok(ExtBinding {
            chan,
            law,
            realtime,
            to_thread: Some(to_thread),
            from_thread,
            out: [0; BLOCK_SAMPLES],
            out_fill: 0,
            inp: [0; BLOCK_SAMPLES],
            in_pos: BLOCK_SAMPLES,
            stats: ExtAudioStats::default(),
            reason,
        })
    }

    pub(crate) fn channel(&self) -> ChannelId {
        self.chan
    }

    pub(crate) fn stats(&self) -> ExtAudioStats {
        let mut s = self.stats.clone();
        if s.ended {
            s.end_reason = self.reason.lock().ok().and_then(|g| g.clone());
        }
        s
    }

    fn end(&mut self) {
        self.stats.ended = true;
        self.to_thread = None;
    }

    /// One tick: collect what our side sent on the channel and play the peer's audio into it.
    ///
    /// # Real-time
    /// Constant work; every 20 ticks one block hand-over (non-blocking on the real-time clock;
    /// on the virtual clock it waits for the peer). No allocation.
    pub(crate) fn exchange(&mut self, tx: &[Chunk], rx: &mut [Chunk]) {
        let i = self.chan.index();
        let dst = &mut self.out[self.out_fill..self.out_fill + CHUNK_SAMPLES];
        self.law.decode_block(&tx[i], dst);
        self.out_fill += CHUNK_SAMPLES;
        if self.in_pos < BLOCK_SAMPLES {
            self.law.encode_block(&self.inp[self.in_pos..self.in_pos + CHUNK_SAMPLES], &mut rx[i]);
            self.in_pos += CHUNK_SAMPLES;
        } else {
            rx[i] = [self.law.silence(); CHUNK_SAMPLES];
        }
        if self.out_fill < BLOCK_SAMPLES {
            return;
        }
        self.out_fill = 0;
        if self.stats.ended {
            return;
        }
        if self.realtime {
            match self.from_thread.try_recv() {
                Ok(b) => self.take(b),
                Err(TryRecvError::Empty) => {
                    if self.stats.blocks_in > 0 {
                        self.stats.underruns += 1;
                    }
                }
                Err(TryRecvError::Disconnected) => return self.end(),
            }
            if let Some(t) = &self.to_thread {
                match t.try_send(self.out) {
                    Ok(()) => self.stats.blocks_out += 1,
                    Err(TrySendError::Full(_)) => self.stats.overruns += 1,
                    Err(TrySendError::Disconnected(_)) => self.end(),
                }
            }
        } else {
            let sent = self.to_thread.as_ref().is_some_and(|t| t.send(self.out).is_ok());
            if !sent {
                return self.end();
            }
            self.stats.blocks_out += 1;
            match self.from_thread.recv_timeout(PEER_TIMEOUT) {
                Ok(b) => self.take(b),
                Err(RecvTimeoutError::Timeout) => {
                    if let Ok(mut g) = self.reason.lock() {
                        g.get_or_insert_with(|| "peer sent nothing for 30 s".into());
                    }
                    self.end();
                }
                Err(RecvTimeoutError::Disconnected) => self.end(),
            }
        }
    }

    fn take(&mut self, b: Block) {
        self.inp = b;
        self.in_pos = 0;
        self.stats.blocks_in += 1;
    }
}

/// The helper thread: open both files, then for every block from the tick write it and read
/// the peer's. Returns why it stopped.
fn pump(
    to_peer: &Path,
    from_peer: &Path,
    blocks: &Receiver<Block>,
    back: &Sender<Block>,
) -> String {
    // Our write side: read+write on a FIFO never blocks in open and never fails for want of
    // a reader; a regular file is truncated.
    let w = if is_fifo(to_peer) {
        OpenOptions::new().read(true).write(true).open(to_peer)
    } else {
        OpenOptions::new().write(true).create(true).truncate(true).open(to_peer)
    };
    let mut w = match w {
        Ok(f) => f,
        Err(e) => return format!("open {}: {e}", to_peer.display()),
    };
    // Our read side: blocks until the peer opens its write side.
    let mut r = match File::open(from_peer) {
        Ok(f) => f,
        Err(e) => return format!("open {}: {e}", from_peer.display()),
    };
    let mut bytes = [0u8; BLOCK_SAMPLES * 2];
    loop {
        let Ok(block) = blocks.recv() else {
            return "unbound".into();
        };
        for (k, s) in block.iter().enumerate() {
            bytes[2 * k..2 * k + 2].copy_from_slice(&s.to_le_bytes());
        }
        if let Err(e) = w.write_all(&bytes) {
            return format!("write {}: {e}", to_peer.display());
        }
        if let Err(e) = r.read_exact(&mut bytes) {
            return if e.kind() == std::io::ErrorKind::UnexpectedEof {
                "peer closed its side (end of file)".into()
            } else {
                format!("read {}: {e}", from_peer.display())
            };
        }
        let mut inp = [0i16; BLOCK_SAMPLES];
        for (k, s) in inp.iter_mut().enumerate() {
            *s = i16::from_le_bytes([bytes[2 * k], bytes[2 * k + 1]]);
        }
        if back.send(inp).is_err() {
            return "unbound".into();
        }
    }
}
