//! The control socket client the CLI uses to talk to a running daemon.

use super::proto::{CtlData, CtlRequest, CtlResponse};
use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the client waits for an answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

/// Why talking to the daemon failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing at the socket path.
    #[error("cardpbx daemon is not running (no socket at {0})")]
    NotRunning(PathBuf),
    /// The socket is there but this user may not open it.
    #[error("permission denied on {path}: add yourself to group {group} (then log in again)")]
    PermissionDenied {
        /// The socket path.
        path: PathBuf,
        /// The socket's group, which may open it.
        group: String,
    },
    /// The socket file is there but no daemon listens.
    #[error("socket {0} exists but nothing answers (stale): the daemon is not running")]
    Stale(PathBuf),
    /// The daemon answered with an error.
    #[error("daemon: {0}")]
    Daemon(String),
    /// The daemon's answer could not be understood.
    #[error("{0}")]
    Protocol(String),
    /// The daemon closed the connection without answering.
    #[error("the daemon closed the connection without answering")]
    Closed,
    /// No answer in time.
    #[error("the daemon did not answer within {} s", CLIENT_TIMEOUT.as_secs())]
    Timeout,
    /// Another I/O error.
    #[error("control socket {path}: {source}")]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl ClientError {
    /// Whether the error means the daemon could not be reached at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            ClientError::NotRunning(_)
                | ClientError::PermissionDenied { .. }
                | ClientError::Stale(_)
        )
    }
}

/// A connection to the daemon's control socket.
pub struct CtlClient {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl CtlClient {
    /// Connect to the daemon at `path`.
    ///
    /// # Errors
    /// [`ClientError::NotRunning`], [`ClientError::PermissionDenied`] (naming the socket's
    /// group), [`ClientError::Stale`], or [`ClientError::Io`].
    pub fn connect(path: &Path) -> Result<CtlClient, ClientError> {
        let stream = UnixStream::connect(path).map_err(|e| connect_error(path, e))?;
        let io_err = |source| ClientError::Io { path: path.to_path_buf(), source };
        stream.set_read_timeout(Some(CLIENT_TIMEOUT)).map_err(io_err)?;
        stream.set_write_timeout(Some(CLIENT_TIMEOUT)).map_err(io_err)?;
        let writer = stream.try_clone().map_err(io_err)?;
        Ok(CtlClient { path: path.to_path_buf(), reader: BufReader::new(stream), writer })
    }

    /// Send a request and return the daemon's data.
    ///
    /// # Errors
    /// [`ClientError::Daemon`] when the daemon refused it; I/O, timeout and protocol errors.
    pub fn request(&mut self, req: CtlRequest) -> Result<CtlData, ClientError> {
        let line = self.request_line(&req.to_line())?;
        match CtlResponse::parse_line(req, &line).map_err(ClientError::Protocol)? {
            CtlResponse::Ok(data) => Ok(data),
            CtlResponse::Error(e) => Err(ClientError::Daemon(e)),
        }
    }

    /// Send a streaming request (`events`) and hand every answer's data to `f` until `f`
    /// returns `false` or the daemon closes the connection. No timeout applies while waiting.
    ///
    /// # Errors
    /// [`ClientError::Daemon`] when the daemon refused it; I/O and protocol errors; an error
    /// `f` returned (as [`ClientError::Io`]).
    pub fn follow(
        &mut self,
        req: CtlRequest,
        mut f: impl FnMut(CtlData) -> io::Result<bool>,
    ) -> Result<(), ClientError> {
        let io_err = |path: &Path, source| ClientError::Io { path: path.to_path_buf(), source };
        self.reader.get_ref().set_read_timeout(None).map_err(|e| io_err(&self.path, e))?;
        self.writer.write_all(req.to_line().as_bytes()).map_err(|e| io_err(&self.path, e))?;
        loop {
            let line = match self.read_answer() {
                Ok(l) => l,
                Err(ClientError::Closed) => return Ok(()),
                Err(e) => return Err(e),
            };
            match CtlResponse::parse_line(req.clone(), &line).map_err(ClientError::Protocol)? {
                CtlResponse::Ok(data) => {
                    if !f(data).map_err(|e| io_err(&self.path, e))? {
                        return Ok(());
                    }
                }
                CtlResponse::Error(e) => return Err(ClientError::Daemon(e)),
            }
        }
    }

    /// Send one raw line (a newline is added if missing) and return the answer line as sent by
    /// the daemon, without its newline. For scripts and tests.
    ///
    /// # Errors
    /// I/O, timeout, or [`ClientError::Closed`].
    pub fn request_line(&mut self, line: &str) -> Result<String, ClientError> {
        let io_err = |source| ClientError::Io { path: self.path.clone(), source };
        let mut out = line.as_bytes().to_vec();
        if !line.ends_with('\n') {
            out.push(b'\n');
        }
        self.writer.write_all(&out).map_err(io_err)?;
        self.read_answer()
    }

    /// Send raw bytes (which may be invalid UTF-8 or lack a newline) without waiting.
    ///
    /// # Errors
    /// I/O errors.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.writer
            .write_all(bytes)
            .map_err(|source| ClientError::Io { path: self.path.clone(), source })
    }

    /// Read one answer line, without its newline.
    ///
    /// # Errors
    /// I/O, timeout, or [`ClientError::Closed`].
    pub fn read_answer(&mut self) -> Result<String, ClientError> {
        let mut answer = String::new();
        match self.reader.read_line(&mut answer) {
            Ok(0) => Err(ClientError::Closed),
            Ok(_) => Ok(answer.trim_end_matches('\n').to_string()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(ClientError::Timeout)
            }
            Err(source) => Err(ClientError::Io { path: self.path.clone(), source }),
        }
    }
}

/// Turn a failed connect into the error a technician can act on.
fn connect_error(path: &Path, e: io::Error) -> ClientError {
    match e.kind() {
        ErrorKind::NotFound => ClientError::NotRunning(path.to_path_buf()),
        ErrorKind::ConnectionRefused => ClientError::Stale(path.to_path_buf()),
        ErrorKind::PermissionDenied => {
            ClientError::PermissionDenied { path: path.to_path_buf(), group: socket_group(path) }
        }
        _ => ClientError::Io { path: path.to_path_buf(), source: e },
    }
}

/// The name of the group owning the socket (or its directory), for the permission hint.
fn socket_group(path: &Path) -> String {
    let meta = std::fs::metadata(path)
        .or_else(|_| std::fs::metadata(path.parent().unwrap_or(Path::new("/"))));
    match meta {
        Ok(m) => match nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(m.gid())) {
            Ok(Some(g)) => g.name,
            _ => format!("with gid {}", m.gid()),
        },
        Err(_) => "cardpbx".to_string(),
    }
}
