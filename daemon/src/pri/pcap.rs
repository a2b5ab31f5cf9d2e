//! D-channel capture files: pcap with link type 177 (`LINUX_LAPD`), which Wireshark and tshark
//! decode as LAPD and, above it, Q.931.
//!
//! Each record is a 16-byte Linux "cooked" (sll-style) pseudo header followed by the LAPD frame
//! (address, control, information; no flags, no FCS). Big-endian header fields:
//!
//! | octets | field | value |
//! |---|---|---|
//! | 0-1 | packet type | 0 = received by us, 4 = sent by us |
//! | 2-3 | ARPHRD type | 8445 (`ARPHRD_LAPD`) |
//! | 4-5 | address length | 1 |
//! | 6-13 | address | octet 6 = 1 when we are the network side, else 0 |
//! | 14-15 | protocol | 0x0030 (`ETH_P_LAPD`) |
//!
//! Wireshark derives from the direction and our side which end sent a frame, and so whether
//! its C/R bit marks a command or a response. The file header and records are written
//! little-endian (the pcap magic tells readers the byte order). Timestamps come from the
//! caller; every frame is flushed to the file as it is written, so a capture of a process that
//! dies is still readable.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// pcap link type `LINUX_LAPD`.
pub const LINKTYPE_LINUX_LAPD: u32 = 177;
/// Length of the `LINUX_LAPD` pseudo header.
pub const LAPD_HEADER_LEN: usize = 16;
/// `ARPHRD_LAPD`.
const ARPHRD_LAPD: u16 = 8445;
/// `ETH_P_LAPD`.
const ETH_P_LAPD: u16 = 0x0030;
/// Largest frame recorded (longer ones are cut, with the real length kept in the record).
const SNAPLEN: u32 = 65_535;

/// Which way a frame went, seen from the capturing end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Received from the far end.
    In,
    /// Sent by us.
    Out,
}

/// A pcap writer for one D-channel.
#[derive(Debug)]
pub struct LapdPcap<W: Write> {
    out: W,
    network: bool,
    frames: u64,
}

impl LapdPcap<BufWriter<File>> {
    /// Creates (or truncates) `path` and writes the file header. `network`: this end is the
    /// network side.
    ///
    /// # Errors
    /// The file cannot be created or written.
    pub fn create(path: impl AsRef<Path>, network: bool) -> io::Result<Self> {
        let path = path.as_ref();
        let f = File::create(path)
            .map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", path.display())))?;
        LapdPcap::new(BufWriter::new(f), network)
    }
}

impl<W: Write> LapdPcap<W> {
    /// Writes the file header to `out`. `network`: this end is the network side.
    ///
    /// # Errors
    /// Writing fails.
    pub fn new(mut out: W, network: bool) -> io::Result<Self> {
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes()); // magic, microsecond timestamps
        h.extend_from_slice(&2u16.to_le_bytes()); // version 2.4
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0i32.to_le_bytes()); // timezone offset
        h.extend_from_slice(&0u32.to_le_bytes()); // timestamp accuracy
        h.extend_from_slice(&SNAPLEN.to_le_bytes());
        h.extend_from_slice(&LINKTYPE_LINUX_LAPD.to_le_bytes());
        out.write_all(&h)?;
        out.flush()?;
        Ok(LapdPcap { out, network, frames: 0 })
    }

    /// Records one frame at `ts_us` microseconds since the Unix epoch, and flushes it.
    ///
    /// # Errors
    /// Writing fails.
    pub fn write_frame(&mut self, ts_us: u64, dir: Dir, frame: &[u8]) -> io::Result<()> {
        let caplen = frame.len().min(SNAPLEN as usize - LAPD_HEADER_LEN);
        let mut rec = Vec::with_capacity(16 + LAPD_HEADER_LEN + caplen);
        rec.extend_from_slice(&((ts_us / 1_000_000) as u32).to_le_bytes());
        rec.extend_from_slice(&((ts_us % 1_000_000) as u32).to_le_bytes());
        rec.extend_from_slice(&((LAPD_HEADER_LEN + caplen) as u32).to_le_bytes());
        rec.extend_from_slice(&((LAPD_HEADER_LEN + frame.len()) as u32).to_le_bytes());
        rec.extend_from_slice(&lapd_header(dir, self.network));
        rec.extend_from_slice(&frame[..caplen]);
        self.out.write_all(&rec)?;
        self.out.flush()?;
        self.frames += 1;
        Ok(())
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Flushes and returns the writer.
    ///
    /// # Errors
    /// Flushing fails.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The 16-byte `LINUX_LAPD` pseudo header for a frame going `dir`, captured at the network
/// side when `network`.
pub fn lapd_header(dir: Dir, network: bool) -> [u8; LAPD_HEADER_LEN] {
    let mut h = [0u8; LAPD_HEADER_LEN];
    let pkttype: u16 = match dir {
        Dir::In => 0,
        Dir::Out => 4,
    };
    h[0..2].copy_from_slice(&pkttype.to_be_bytes());
    h[2..4].copy_from_slice(&ARPHRD_LAPD.to_be_bytes());
    h[4..6].copy_from_slice(&1u16.to_be_bytes());
    h[6] = u8::from(network);
    h[14..16].copy_from_slice(&ETH_P_LAPD.to_be_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use cardpbx_signalling::pri::{PriConfig, PriEndpoint, PriOutput};
    use cardpbx_signalling::q931::call::{CallEvent, CallParams, Side};
    use cardpbx_signalling::q931::Cause;

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn header_and_record_layout() {
        let mut p = LapdPcap::new(Vec::new(), true).unwrap();
        p.write_frame(1_700_000_000_123_456, Dir::Out, &[0x00, 0x01, 0x7f]).unwrap();
        p.write_frame(1_700_000_001_000_000, Dir::In, &[0x02, 0x01, 0x73]).unwrap();
        assert_eq!(p.frames(), 2);
        let b = p.finish().unwrap();
        assert_eq!(u32_at(&b, 0), 0xa1b2_c3d4);
        assert_eq!(&b[4..8], &[2, 0, 4, 0]);
        assert_eq!(u32_at(&b, 16), 65_535);
        assert_eq!(u32_at(&b, 20), 177);
        let r = &b[24..];
        assert_eq!(u32_at(r, 0), 1_700_000_000);
        assert_eq!(u32_at(r, 4), 123_456);
        assert_eq!(u32_at(r, 8), 19);
        assert_eq!(u32_at(r, 12), 19);
        assert_eq!(&r[16..32], &[0, 4, 0x20, 0xfd, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x30]);
        assert_eq!(&r[32..35], &[0x00, 0x01, 0x7f]);
        let r2 = &r[35..];
        assert_eq!(u32_at(r2, 4), 0);
        assert_eq!(&r2[16..18], &[0, 0], "received frame");
        assert_eq!(r2.len(), 16 + 16 + 3);
    }

    #[test]
    fn user_side_header_says_so() {
        assert_eq!(lapd_header(Dir::In, false)[6], 0);
        assert_eq!(lapd_header(Dir::In, true)[6], 1);
    }

    /// Runs one call between a user and a network endpoint and records the user side's view.
    /// Returns the file contents and how many frames went over the line.
    pub(crate) fn capture_one_call(path: &Path) -> u64 {
        let mut user = PriEndpoint::new(PriConfig::new(Side::User));
        let mut net = PriEndpoint::new(PriConfig::new(Side::Network));
        let mut pcap = LapdPcap::create(path, false).unwrap();
        let mut now = 0u64;
        let mut ts = 1_700_000_000_000_000u64;
        user.physical_up(now);
        net.physical_up(now);
        let mut ev_user = Vec::new();
        let mut ev_net = Vec::new();
        let mut run = |user: &mut PriEndpoint,
                       net: &mut PriEndpoint,
                       pcap: &mut LapdPcap<BufWriter<File>>,
                       now: u64,
                       ev_user: &mut Vec<CallEvent>,
                       ev_net: &mut Vec<CallEvent>| loop {
            let mut moved = false;
            while let Some(o) = user.poll_output() {
                moved = true;
                match o {
                    PriOutput::Frame(f) => {
                        ts += 1_000;
                        pcap.write_frame(ts, Dir::Out, &f).unwrap();
                        net.receive_frame(now, &f);
                    }
                    PriOutput::Event(e) => ev_user.push(e),
                    _ => {}
                }
            }
            while let Some(o) = net.poll_output() {
                moved = true;
                match o {
                    PriOutput::Frame(f) => {
                        ts += 1_000;
                        pcap.write_frame(ts, Dir::In, &f).unwrap();
                        user.receive_frame(now, &f);
                    }
                    PriOutput::Event(e) => ev_net.push(e),
                    _ => {}
                }
            }
            if !moved {
                break;
            }
        };
        run(&mut user, &mut net, &mut pcap, now, &mut ev_user, &mut ev_net);
        assert!(user.link_is_up());
        let h = user
            .call(now, |q, t| {
                q.setup(
                    t,
                    CallParams {
                        called: "5551234".into(),
                        calling: Some("4000".into()),
                        ..Default::default()
                    },
                )
            })
            .unwrap();
        run(&mut user, &mut net, &mut pcap, now, &mut ev_user, &mut ev_net);
        let Some(CallEvent::Incoming { call, .. }) =
            ev_net.iter().find(|e| matches!(e, CallEvent::Incoming { .. })).cloned()
        else {
            panic!("no incoming call")
        };
        for step in 0..3 {
            net.call(now, |q, t| match step {
                0 => q.proceeding(t, call),
                1 => q.alerting(t, call),
                _ => q.connect(t, call),
            })
            .unwrap();
            run(&mut user, &mut net, &mut pcap, now, &mut ev_user, &mut ev_net);
        }
        now += 1_000;
        user.call(now, |q, t| q.disconnect(t, h, Cause::NORMAL_CLEARING)).unwrap();
        run(&mut user, &mut net, &mut pcap, now, &mut ev_user, &mut ev_net);
        assert!(ev_user.iter().any(|e| matches!(e, CallEvent::Released { .. })));
        pcap.frames()
    }

    #[test]
    fn records_a_whole_call() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("call.pcap");
        let frames = capture_one_call(&path);
        let b = std::fs::read(&path).unwrap();
        // Walk the records: every frame is there, each with its header.
        let mut at = 24;
        let mut n = 0;
        while at < b.len() {
            let incl = u32_at(&b, at + 8) as usize;
            assert_eq!(&b[at + 18..at + 20], &[0x20, 0xfd]);
            at += 16 + incl;
            n += 1;
        }
        assert_eq!(at, b.len());
        assert_eq!(n, frames);
        assert!(frames >= 12, "SABME/UA, RESTART, 7 call messages and RRs: {frames}");
    }

    /// tshark must decode our capture as LAPD + Q.931 with no malformed packets.
    #[test]
    #[ignore = "needs tshark; run by .ci/interop"]
    fn tshark_decodes_the_capture() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("call.pcap");
        capture_one_call(&path);
        let out = std::process::Command::new("tshark")
            .arg("-r")
            .arg(&path)
            .arg("-V")
            .output()
            .expect("run tshark");
        assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("Malformed"), "malformed packet marks:\n{text}");
        assert!(!text.contains("Expert Info (Error"), "expert errors:\n{text}");
        assert!(text.contains("Link Access Procedure, Channel D (LAPD)"), "{text}");
        for m in [
            "SETUP (0x05)",
            "CALL PROCEEDING (0x02)",
            "ALERTING (0x01)",
            "CONNECT (0x07)",
            "CONNECT ACKNOWLEDGE (0x0f)",
            "DISCONNECT (0x45)",
            "RELEASE (0x4d)",
            "RELEASE COMPLETE (0x5a)",
            "RESTART (0x46)",
            "RESTART ACKNOWLEDGE (0x4e)",
        ] {
            assert!(text.contains(&format!("Message type: {m}")), "no {m} in:\n{text}");
        }
        // Direction and side are understood, so commands and responses are told apart: the
        // SABMEs are commands with P set, the UAs responses with F set.
        assert!(text.contains("[Direction: User->Network"), "{text}");
        assert!(text.contains("[Direction: Network->User"), "{text}");
        assert!(text.contains("Control field: U P, func=SABME"), "{text}");
        assert!(text.contains("Control field: U F, func=UA"), "{text}");
    }
}
