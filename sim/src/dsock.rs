//! External D-channel socket: another program as the far end of a span's D-channel.
//!
//! The format is the one `/work/shared/peers/pri_peer` speaks: a Unix `SOCK_SEQPACKET` socket
//! where one message carries one LAPD frame — address, control and information octets, with
//! no flags, no bit stuffing and no FCS. Message boundaries are the frame boundaries.
//!
//! [`DChannelSocket`] either listens on a path (accepting one peer at a time, and the next
//! one after that peer closed) or connects to a listening peer. Everything is non-blocking:
//! [`DChannelSocket::try_recv`] returns `Ok(None)` when no frame is waiting, and
//! [`DChannelSocket::poll_event`] reports peers coming and going (for a span, the D-channel's
//! "physical layer" is up while a peer is connected). Nothing here allocates after
//! construction, so it may be driven from a tick.

use nix::errno::Errno;
use nix::sys::socket::{
    accept4, bind, connect, listen, recv, send, socket, socketpair, AddressFamily, Backlog,
    MsgFlags, SockFlag, SockType, UnixAddr,
};
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// Largest frame carried: LAPD N201 (260 information octets) + address and control (4),
/// with room to spare. Longer messages are truncated and counted.
pub const MAX_FRAME: usize = 512;

/// A socket descriptor that is closed when dropped. `accept4` hands out raw descriptors; this
/// owns them without `unsafe`.
#[derive(Debug)]
struct Fd(RawFd);

impl Fd {
    fn from_owned(fd: OwnedFd) -> Self {
        Fd(fd.into_raw_fd())
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        let _ = nix::unistd::close(self.0);
    }
}

/// A peer came or went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DSockEvent {
    /// A peer is connected: frames can flow.
    Connected,
    /// The peer closed its end (or the connection failed); nothing is sent until another
    /// peer connects (listen mode only).
    Disconnected,
}

/// Counters of a D-channel socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DSockStats {
    /// Frames received.
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Frames dropped because no peer was connected (or the peer went away while sending).
    pub dropped_out: u64,
    /// Received messages longer than [`MAX_FRAME`] or the caller's buffer (truncated).
    pub truncated_in: u64,
    /// Peers accepted or connected.
    pub connects: u64,
    /// Peers that went away.
    pub disconnects: u64,
}

#[derive(Debug)]
enum Mode {
    Listen { listener: OwnedFd, path: PathBuf },
    Connect,
}

/// One end of an external D-channel (see the module documentation).
#[derive(Debug)]
pub struct DChannelSocket {
    mode: Mode,
    peer: Option<Fd>,
    /// A `Connected` event not yet reported.
    connected_pending: bool,
    /// A `Disconnected` event not yet reported.
    disconnected_pending: bool,
    stats: DSockStats,
}

fn errno_io(e: Errno, what: &str, path: &Path) -> io::Error {
    io::Error::new(io::Error::from(e).kind(), format!("{what} {}: {e}", path.display()))
}

fn seqpacket() -> nix::Result<OwnedFd> {
    socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
}

/// Whether something accepts connections on `path` right now. Linux lists listening Unix
/// sockets with their bound path in `/proc/net/unix` (flag `__SO_ACCEPTCON`, 0x10000); looking
/// there does not disturb the listener. Without that file, a test connection decides (the
/// listener then sees a peer come and go).
fn live_listener(path: &Path) -> bool {
    if let Ok(table) = std::fs::read_to_string("/proc/net/unix") {
        let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        return table.lines().skip(1).any(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let listening = cols
                .get(3)
                .and_then(|f| u32::from_str_radix(f, 16).ok())
                .is_some_and(|f| f & 0x1_0000 != 0);
            listening && cols.get(7).is_some_and(|p| Path::new(p) == path || Path::new(p) == abs)
        });
    }
    let Ok(addr) = UnixAddr::new(path) else {
        return false;
    };
    let Ok(fd) = seqpacket() else {
        return false;
    };
    match connect(fd.as_raw_fd(), &addr) {
        Ok(()) => true,
        // A full backlog still means someone is listening.
        Err(Errno::EAGAIN) => true,
        Err(_) => false,
    }
}

impl DChannelSocket {
    /// Listens on `path` for one peer at a time. A stale socket file (nobody listening) is
    /// removed first; a path used by a live listener, or by something that is not a socket,
    /// is an error. The socket file is removed again when this is dropped.
    ///
    /// # Errors
    /// The path is in use, or the socket cannot be created, bound or listened on.
    pub fn listen(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!("{} exists and is not a socket", path.display()),
                ));
            }
            if live_listener(path) {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("{} is in use by another listener", path.display()),
                ));
            }
            std::fs::remove_file(path).map_err(|e| {
                io::Error::new(e.kind(), format!("remove stale {}: {e}", path.display()))
            })?;
        }
        let addr = UnixAddr::new(path).map_err(|e| errno_io(e, "socket address", path))?;
        let fd = seqpacket().map_err(|e| errno_io(e, "socket for", path))?;
        bind(fd.as_raw_fd(), &addr).map_err(|e| errno_io(e, "bind", path))?;
        listen(&fd, Backlog::new(1).expect("1 is a valid backlog"))
            .map_err(|e| errno_io(e, "listen", path))?;
        Ok(DChannelSocket {
            mode: Mode::Listen { listener: fd, path: path.to_path_buf() },
            peer: None,
            connected_pending: false,
            disconnected_pending: false,
            stats: DSockStats::default(),
        })
    }

    /// Connects to a peer listening on `path`.
    ///
    /// # Errors
    /// Nobody listens there (`ConnectionRefused` / `NotFound`), or the socket cannot be created.
    pub fn connect(path: impl AsRef<Path>) -> io::Result<Self> {
        let path = path.as_ref();
        let addr = UnixAddr::new(path).map_err(|e| errno_io(e, "socket address", path))?;
        let fd = seqpacket().map_err(|e| errno_io(e, "socket for", path))?;
        connect(fd.as_raw_fd(), &addr).map_err(|e| errno_io(e, "connect", path))?;
        Ok(Self::connected(Fd::from_owned(fd)))
    }

    /// Two connected ends (a socketpair), for tests and in-process use.
    ///
    /// # Errors
    /// The socketpair cannot be created.
    pub fn pair() -> io::Result<(Self, Self)> {
        let (a, b) = socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        Ok((Self::connected(Fd::from_owned(a)), Self::connected(Fd::from_owned(b))))
    }

    fn connected(fd: Fd) -> Self {
        DChannelSocket {
            mode: Mode::Connect,
            peer: Some(fd),
            connected_pending: true,
            disconnected_pending: false,
            stats: DSockStats { connects: 1, ..DSockStats::default() },
        }
    }

    /// The path listened on (listen mode).
    pub fn listen_path(&self) -> Option<&Path> {
        match &self.mode {
            Mode::Listen { path, .. } => Some(path),
            Mode::Connect => None,
        }
    }

    /// Whether a peer is connected.
    pub fn is_connected(&self) -> bool {
        self.peer.is_some()
    }

    /// Whether this end can ever carry frames again: a connecting end whose peer closed
    /// cannot; a listening end always can (the next peer).
    pub fn is_finished(&self) -> bool {
        matches!(self.mode, Mode::Connect) && self.peer.is_none()
    }

    /// The counters.
    pub fn stats(&self) -> DSockStats {
        self.stats
    }

    /// The peer is gone: drop it and report it once.
    fn lose_peer(&mut self) {
        if self.peer.take().is_some() {
            self.stats.disconnects += 1;
            self.disconnected_pending = true;
            self.connected_pending = false;
        }
    }

    /// In listen mode without a peer, accepts a waiting one. Returns whether one is connected.
    fn accept_peer(&mut self) -> io::Result<bool> {
        if self.peer.is_some() {
            return Ok(true);
        }
        let Mode::Listen { listener, path } = &self.mode else {
            return Ok(false);
        };
        match accept4(listener.as_raw_fd(), SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC) {
            Ok(fd) => {
                self.peer = Some(Fd(fd));
                self.stats.connects += 1;
                self.connected_pending = true;
                Ok(true)
            }
            Err(Errno::EAGAIN | Errno::EINTR | Errno::ECONNABORTED) => Ok(false),
            Err(e) => Err(errno_io(e, "accept on", path)),
        }
    }

    /// What changed since the last call: a peer connected or went away. In listen mode this
    /// also accepts a waiting peer when none is connected. A `Disconnected` is always
    /// reported before the next `Connected`.
    ///
    /// # Errors
    /// `accept` failed for another reason than "nobody waiting".
    pub fn poll_event(&mut self) -> io::Result<Option<DSockEvent>> {
        if self.disconnected_pending {
            self.disconnected_pending = false;
            return Ok(Some(DSockEvent::Disconnected));
        }
        self.accept_peer()?;
        if self.connected_pending {
            self.connected_pending = false;
            return Ok(Some(DSockEvent::Connected));
        }
        Ok(None)
    }

    /// Receives one frame into `buf` without waiting: `Ok(Some(len))`, or `Ok(None)` when no
    /// frame is waiting or no peer is connected. When the peer has closed, the loss is noted
    /// (see [`poll_event`](Self::poll_event)) and `Ok(None)` returned. A message longer than
    /// `buf` is truncated to `buf.len()` and counted.
    ///
    /// # Errors
    /// A receive error other than "would block" or a connection reset.
    pub fn try_recv(&mut self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let Some(fd) = &self.peer else {
            return Ok(None);
        };
        match recv(fd.0, buf, MsgFlags::MSG_TRUNC | MsgFlags::MSG_DONTWAIT) {
            // A SOCK_SEQPACKET read of 0 octets is the peer's end of file.
            Ok(0) => {
                self.lose_peer();
                Ok(None)
            }
            Ok(n) => {
                self.stats.frames_in += 1;
                if n > buf.len() {
                    self.stats.truncated_in += 1;
                }
                Ok(Some(n.min(buf.len())))
            }
            Err(Errno::EAGAIN | Errno::EINTR) => Ok(None),
            Err(Errno::ECONNRESET | Errno::ENOTCONN | Errno::EPIPE) => {
                self.lose_peer();
                Ok(None)
            }
            Err(e) => Err(io::Error::from(e)),
        }
    }

    /// Sends one frame. Without a connected peer the frame is dropped (and counted); a peer
    /// that went away is noted as in [`try_recv`](Self::try_recv). Returns whether the frame
    /// was handed to the peer.
    ///
    /// # Errors
    /// A send error other than the peer going away; a full socket buffer is reported as
    /// `WouldBlock` (the frame is dropped: LAPD retransmits).
    pub fn send(&mut self, frame: &[u8]) -> io::Result<bool> {
        let Some(fd) = &self.peer else {
            self.stats.dropped_out += 1;
            return Ok(false);
        };
        match send(fd.0, frame, MsgFlags::MSG_NOSIGNAL | MsgFlags::MSG_DONTWAIT) {
            Ok(_) => {
                self.stats.frames_out += 1;
                Ok(true)
            }
            Err(Errno::EPIPE | Errno::ECONNRESET | Errno::ENOTCONN) => {
                self.stats.dropped_out += 1;
                self.lose_peer();
                Ok(false)
            }
            Err(e) => {
                self.stats.dropped_out += 1;
                Err(io::Error::from(e))
            }
        }
    }

    /// Drops the connected peer (it sees end of file); a listening end then waits for the
    /// next one.
    pub fn disconnect(&mut self) {
        self.lose_peer();
    }
}

impl Drop for DChannelSocket {
    fn drop(&mut self) {
        if let Mode::Listen { path, .. } = &self.mode {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain_events(s: &mut DChannelSocket) -> Vec<DSockEvent> {
        let mut v = Vec::new();
        while let Some(e) = s.poll_event().unwrap() {
            v.push(e);
        }
        v
    }

    fn recv_one(s: &mut DChannelSocket) -> Option<Vec<u8>> {
        let mut buf = [0u8; MAX_FRAME];
        // The peer's message is already queued in the kernel when send returned.
        s.try_recv(&mut buf).unwrap().map(|n| buf[..n].to_vec())
    }

    #[test]
    fn pair_keeps_frame_boundaries_both_ways() {
        let (mut a, mut b) = DChannelSocket::pair().unwrap();
        assert_eq!(drain_events(&mut a), vec![DSockEvent::Connected]);
        assert!(a.send(&[0x00, 0x01, 0x7f]).unwrap());
        assert!(a.send(&[0x02, 0x01, 0x00, 0x00, 0x08, 0x02, 0x00, 0x01, 0x05]).unwrap());
        assert_eq!(recv_one(&mut b).unwrap(), vec![0x00, 0x01, 0x7f]);
        assert_eq!(
            recv_one(&mut b).unwrap(),
            vec![0x02, 0x01, 0x00, 0x00, 0x08, 0x02, 0x00, 0x01, 0x05]
        );
        assert_eq!(recv_one(&mut b), None);
        assert!(b.send(&[0x02, 0x01, 0x73]).unwrap());
        assert_eq!(recv_one(&mut a).unwrap(), vec![0x02, 0x01, 0x73]);
        assert_eq!(a.stats().frames_out, 2);
        assert_eq!(b.stats().frames_in, 2);
    }

    #[test]
    fn peer_close_is_detected_and_sending_then_drops() {
        let (mut a, b) = DChannelSocket::pair().unwrap();
        drain_events(&mut a);
        drop(b);
        assert_eq!(recv_one(&mut a), None);
        assert!(!a.is_connected());
        assert!(a.is_finished());
        assert_eq!(drain_events(&mut a), vec![DSockEvent::Disconnected]);
        assert!(!a.send(&[1, 2, 3]).unwrap());
        assert_eq!(a.stats().dropped_out, 1);
        assert_eq!(a.stats().disconnects, 1);
    }

    #[test]
    fn send_to_closed_peer_notes_the_loss() {
        let (mut a, b) = DChannelSocket::pair().unwrap();
        drop(b);
        assert!(!a.send(&[1, 2, 3]).unwrap());
        assert!(!a.is_connected());
        assert_eq!(drain_events(&mut a), vec![DSockEvent::Disconnected]);
    }

    #[test]
    fn long_message_is_truncated_and_counted() {
        let (mut a, mut b) = DChannelSocket::pair().unwrap();
        a.send(&[7u8; 40]).unwrap();
        let mut small = [0u8; 16];
        assert_eq!(b.try_recv(&mut small).unwrap(), Some(16));
        assert_eq!(b.stats().truncated_in, 1);
    }

    #[test]
    fn listener_accepts_one_peer_then_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        let mut l = DChannelSocket::listen(&path).unwrap();
        assert_eq!(l.listen_path(), Some(path.as_path()));
        assert_eq!(drain_events(&mut l), vec![]);
        assert!(!l.is_connected());
        assert!(!l.send(&[1, 2, 3]).unwrap());

        let mut c1 = DChannelSocket::connect(&path).unwrap();
        assert_eq!(drain_events(&mut l), vec![DSockEvent::Connected]);
        assert!(l.is_connected());
        c1.send(&[0xaa, 0x01, 0x7f]).unwrap();
        assert_eq!(recv_one(&mut l).unwrap(), vec![0xaa, 0x01, 0x7f]);
        l.send(&[0xbb]).unwrap();
        assert_eq!(recv_one(&mut c1).unwrap(), vec![0xbb]);

        drop(c1);
        assert_eq!(recv_one(&mut l), None);
        assert!(!l.is_finished(), "a listener waits for the next peer");
        assert_eq!(drain_events(&mut l), vec![DSockEvent::Disconnected]);

        let mut c2 = DChannelSocket::connect(&path).unwrap();
        assert_eq!(drain_events(&mut l), vec![DSockEvent::Connected]);
        c2.send(&[0xcc, 0x03]).unwrap();
        assert_eq!(recv_one(&mut l).unwrap(), vec![0xcc, 0x03]);
        assert_eq!(l.stats().connects, 2);
        assert_eq!(l.stats().disconnects, 1);

        drop(l);
        assert!(!path.exists(), "the socket file is removed with the listener");
    }

    #[test]
    fn local_disconnect_lets_the_listener_take_the_next_peer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        let mut l = DChannelSocket::listen(&path).unwrap();
        let mut c = DChannelSocket::connect(&path).unwrap();
        drain_events(&mut l);
        l.disconnect();
        assert_eq!(drain_events(&mut l), vec![DSockEvent::Disconnected]);
        assert_eq!(recv_one(&mut c), None);
        assert!(c.is_finished());
    }

    #[test]
    fn stale_socket_file_is_replaced_but_a_live_listener_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.sock");
        let live = DChannelSocket::listen(&path).unwrap();
        let err = DChannelSocket::listen(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains("in use"), "{err}");
        // Looking did not disturb the live listener: no peer came and went.
        let mut live = live;
        assert_eq!(drain_events(&mut live), vec![]);
        assert_eq!(live.stats().connects, 0);
        drop(live);
        // A stale socket file: bound, then closed without removing it.
        let stale = dir.path().join("stale.sock");
        {
            let fd = seqpacket().unwrap();
            bind(fd.as_raw_fd(), &UnixAddr::new(&stale).unwrap()).unwrap();
        }
        assert!(stale.exists());
        let mut l = DChannelSocket::listen(&stale).unwrap();
        let _c = DChannelSocket::connect(&stale).unwrap();
        assert_eq!(drain_events(&mut l), vec![DSockEvent::Connected]);
    }

    #[test]
    fn a_regular_file_is_never_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "keep me").unwrap();
        let err = DChannelSocket::listen(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
    }

    #[test]
    fn connecting_to_nobody_fails() {
        let dir = tempfile::tempdir().unwrap();
        assert!(DChannelSocket::connect(dir.path().join("none.sock")).is_err());
    }
}
