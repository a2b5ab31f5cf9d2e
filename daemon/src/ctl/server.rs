//! The control socket server: accepts CLI clients on a Unix stream socket and hands each
//! request to the daemon's control loop through a channel.
//!
//! The server knows nothing of the daemon's internals: every request goes out as
//! `(CtlRequest, reply sender)` on a [`CtlRequests`] channel, and the answer that comes back
//! is written to the client. Each client is served on its own thread, so a slow or broken client
//! cannot hold up the others. Bad input from a client is answered with an error line and the
//! connection stays usable.

use super::proto::{CtlRequest, CtlResponse, MAX_LINE};
use crossbeam_channel::{Receiver, Sender};
use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A request with the channel its answer goes back on.
pub type CtlEnvelope = (CtlRequest, Sender<CtlResponse>);

/// The sending side the server hands requests to; the daemon's control loop receives them.
pub type CtlRequests = Sender<CtlEnvelope>;

/// How long a client waits for the daemon's answer before it gets an error.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Another daemon already serves this socket.
    #[error("another cardpbx daemon is already running on {0}")]
    AlreadyRunning(PathBuf),
    /// Something that is not a socket is in the way.
    #[error("{0} exists and is not a socket; remove it or set system.control_socket")]
    NotASocket(PathBuf),
    /// Creating, binding or setting up the socket failed.
    #[error("control socket {path}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

/// A bound control socket.
pub struct CtlServer {
    path: PathBuf,
    listener: Option<UnixListener>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl CtlServer {
    /// Bind the control socket at `path` (mode 0660, parent directory created if missing).
    ///
    /// A socket file left over from a daemon that died is removed, but only if nothing answers
    /// on it.
    ///
    /// # Errors
    /// [`ServerError::AlreadyRunning`] when another daemon answers on `path`,
    /// [`ServerError::NotASocket`] when a non-socket file is there, [`ServerError::Io`] otherwise.
    pub fn bind(path: &Path) -> Result<CtlServer, ServerError> {
        let io_err = |source| ServerError::Io { path: path.to_path_buf(), source };
        match std::fs::symlink_metadata(path) {
            Ok(meta) if !meta.file_type().is_socket() => {
                return Err(ServerError::NotASocket(path.to_path_buf()))
            }
            Ok(_) => match UnixStream::connect(path) {
                Ok(_) => return Err(ServerError::AlreadyRunning(path.to_path_buf())),
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                    std::fs::remove_file(path).map_err(io_err)?;
                }
                Err(e) => return Err(io_err(e)),
            },
            Err(e) if e.kind() == ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(io_err)?;
                }
            }
            Err(e) => return Err(io_err(e)),
        }
        let listener = UnixListener::bind(path).map_err(io_err)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io_err)?;
        Ok(CtlServer {
            path: path.to_path_buf(),
            listener: Some(listener),
            stop: Arc::new(AtomicBool::new(false)),
            accept: None,
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Start serving: a thread accepts clients and serves each on its own thread, sending
    /// every request to `requests`. Calling it again does nothing.
    ///
    /// # Errors
    /// When the accept thread cannot be spawned.
    pub fn serve(&mut self, requests: CtlRequests) -> io::Result<()> {
        let Some(listener) = self.listener.take() else {
            return Ok(());
        };
        let stop = Arc::clone(&self.stop);
        let handle = std::thread::Builder::new()
            .name("ctl-accept".into())
            .spawn(move || accept_loop(listener, requests, stop))?;
        self.accept = Some(handle);
        Ok(())
    }

    /// Stop accepting clients and remove the socket file. Clients already connected are
    /// served until they disconnect (their requests fail once the daemon is gone).
    pub fn shutdown(mut self) {
        self.stop_accepting();
    }

    fn stop_accepting(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.accept.take() {
            // Wake the blocking accept() so the thread sees the stop flag.
            let _ = UnixStream::connect(&self.path);
            let _ = handle.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for CtlServer {
    fn drop(&mut self) {
        self.stop_accepting();
    }
}

fn accept_loop(listener: UnixListener, requests: CtlRequests, stop: Arc<AtomicBool>) {
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else {
            // Transient accept failures (EMFILE, ECONNABORTED) must not end the server.
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let requests = requests.clone();
        let spawned = std::thread::Builder::new()
            .name("ctl-client".into())
            .spawn(move || serve_client(stream, &requests));
        if let Err(e) = spawned {
            tracing::warn!("control socket: cannot start a client thread: {e}");
        }
    }
}

/// One line read from a client.
enum Line {
    /// A complete line (newline removed), or the last unterminated bytes before end of file.
    Data(Vec<u8>),
    /// A line longer than [`MAX_LINE`]; it was read to its end and dropped.
    TooLong,
    /// The client closed the connection.
    Eof,
}

/// Read one line of at most [`MAX_LINE`] bytes without buffering more than that.
fn read_line(reader: &mut impl BufRead, buf: &mut Vec<u8>) -> io::Result<Line> {
    buf.clear();
    let mut too_long = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(if too_long {
                Line::TooLong
            } else if buf.is_empty() {
                Line::Eof
            } else {
                Line::Data(std::mem::take(buf))
            });
        }
        let (part, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (&chunk[..i], Some(i + 1)),
            None => (chunk, None),
        };
        if !too_long {
            if buf.len() + part.len() > MAX_LINE {
                too_long = true;
                buf.clear();
            } else {
                buf.extend_from_slice(part);
            }
        }
        let used = done.unwrap_or(chunk.len());
        reader.consume(used);
        if done.is_some() {
            return Ok(if too_long { Line::TooLong } else { Line::Data(std::mem::take(buf)) });
        }
    }
}

/// Serve one client until it disconnects.
fn serve_client(stream: UnixStream, requests: &CtlRequests) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        let response = match read_line(&mut reader, &mut buf) {
            Err(_) | Ok(Line::Eof) => return,
            Ok(Line::TooLong) => {
                CtlResponse::Error(format!("request line longer than {MAX_LINE} bytes"))
            }
            Ok(Line::Data(bytes)) => match std::str::from_utf8(&bytes) {
                Err(e) => CtlResponse::Error(format!(
                    "request is not valid UTF-8 (bad byte at offset {})",
                    e.valid_up_to()
                )),
                Ok(text) if text.trim().is_empty() => continue,
                Ok(text) => match CtlRequest::parse_line(text.trim()) {
                    Err(e) => CtlResponse::Error(e),
                    Ok(CtlRequest::Events) => {
                        follow_events(requests, &mut writer);
                        return;
                    }
                    Ok(req) => ask_daemon(requests, req),
                },
            },
        };
        if writer.write_all(response.to_line().as_bytes()).is_err() {
            return;
        }
    }
}

/// Events a client may fall behind by before it misses some (it sees a gap in `seq`).
pub const EVENT_BACKLOG: usize = 4096;

/// Subscribe to the daemon's event stream and write each event to the client until it goes
/// away or the daemon stops.
fn follow_events(requests: &CtlRequests, writer: &mut UnixStream) {
    let (tx, rx) = crossbeam_channel::bounded(EVENT_BACKLOG);
    if requests.send((CtlRequest::Events, tx)).is_err() {
        let _ = writer.write_all(
            CtlResponse::Error("the daemon is shutting down".into()).to_line().as_bytes(),
        );
        return;
    }
    for resp in rx {
        if writer.write_all(resp.to_line().as_bytes()).is_err() {
            return;
        }
    }
}

/// Hand a request to the daemon and wait for its answer.
fn ask_daemon(requests: &CtlRequests, req: CtlRequest) -> CtlResponse {
    let (tx, rx): (Sender<CtlResponse>, Receiver<CtlResponse>) = crossbeam_channel::bounded(1);
    let name = req.name();
    if requests.send((req, tx)).is_err() {
        return CtlResponse::Error("the daemon is shutting down".into());
    }
    match rx.recv_timeout(ANSWER_TIMEOUT) {
        Ok(resp) => resp,
        Err(crossbeam_channel::RecvTimeoutError::Timeout) => CtlResponse::Error(format!(
            "the daemon did not answer {:?} within {} s",
            name,
            ANSWER_TIMEOUT.as_secs()
        )),
        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
            CtlResponse::Error(format!("the daemon dropped the {name:?} request"))
        }
    }
}
