//! The cap on open connections. Each connection holds a file descriptor (two under TLS, none
//! shared), and a process out of descriptors can neither accept nor open its database files,
//! so the server keeps its connections below the descriptor limit, with room to spare, and
//! answers a connection over the cap at once with a 503 instead of letting `accept` fail.
//! Under TLS the 503 goes through a handshake, so a browser shows it rather than a broken
//! connection. The refusals themselves are bounded (`REFUSALS_AT_ONCE`): past that a flood's
//! connections are closed unanswered, and the descriptors they hold stay within the reserve.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

/// Descriptors kept free of connections: the database files and their WAL, the log, the
/// account connection, the connections refused over the cap while they are answered.
const RESERVED_FDS: u64 = 256;
/// The cap when the descriptor limit is unknown or unlimited.
const DEFAULT_CAP: u64 = 65_536;
/// The smallest cap the limit can lead to.
const MIN_CAP: u64 = 16;
/// How long a refused connection may take to read its 503, a TLS handshake included.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);
/// How much of a refused request's head is read before the answer, at most.
const MAX_HEAD_READ: usize = 16 * 1024;
/// Connections over the cap being answered at once: a quarter of `RESERVED_FDS`.
const REFUSALS_AT_ONCE: usize = 64;

/// The cap: `configured`, or the soft descriptor limit (`ulimit -n`) less `RESERVED_FDS`.
pub fn cap(configured: Option<usize>) -> usize {
    if let Some(cap) = configured {
        return cap;
    }
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given, which lives for the call.
    let known = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    let soft = match known && limit.rlim_cur != libc::RLIM_INFINITY {
        true => limit.rlim_cur,
        false => DEFAULT_CAP + RESERVED_FDS,
    };
    let cap = soft
        .saturating_sub(RESERVED_FDS)
        .clamp(MIN_CAP, DEFAULT_CAP);
    usize::try_from(cap).unwrap_or(usize::MAX)
}

/// The connections open now, at most the cap, and those being refused.
#[derive(Clone)]
pub struct Connections {
    open: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
}

impl Connections {
    /// Room for `cap` connections.
    pub fn new(cap: usize) -> Connections {
        Connections {
            open: Arc::new(Semaphore::new(cap)),
            refusing: Arc::new(Semaphore::new(REFUSALS_AT_ONCE)),
        }
    }

    /// A place for one more connection, held until the permit drops; `None` at the cap.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.open.clone().try_acquire_owned().ok()
    }

    /// A place to answer one more connection over the cap; `None` when `REFUSALS_AT_ONCE`
    /// are being answered already, and the connection is to be closed as it is.
    pub fn refusal(&self) -> Option<OwnedSemaphorePermit> {
        self.refusing.clone().try_acquire_owned().ok()
    }
}

/// Answers a connection over the cap with a 503, after the TLS handshake when `tls` is set,
/// and closes it, so the client knows to come back rather than wait. The request head is
/// read first (and ignored): an HTTP client takes an answer that comes before its request
/// for a broken connection. `_refusal` is its place among the refusals, given back at the
/// end.
pub async fn refuse(stream: TcpStream, tls: Option<TlsAcceptor>, _refusal: OwnedSemaphorePermit) {
    let answer = async {
        match tls {
            None => refuse_request(stream).await,
            Some(acceptor) => refuse_request(acceptor.accept(stream).await?).await,
        }
    };
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, answer).await;
}

async fn refuse_request(mut stream: impl AsyncRead + AsyncWrite + Unpin) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(1024);
    while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < MAX_HEAD_READ {
        if stream.read_buf(&mut head).await? == 0 {
            return Ok(());
        }
    }
    let body = r#"{"error":{"code":"too_many_connections","message":"the server has as many connections open as it allows; retry shortly"}}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(answer.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_follows_the_descriptor_limit_unless_configured() {
        assert_eq!(cap(Some(10)), 10);
        let derived = cap(None);
        assert!(
            (MIN_CAP as usize..=DEFAULT_CAP as usize).contains(&derived),
            "{derived}"
        );
    }

    #[test]
    fn admission_stops_at_the_cap_and_resumes_when_a_connection_ends() {
        let connections = Connections::new(2);
        let first = connections.admit().unwrap();
        let _second = connections.admit().unwrap();
        assert!(connections.admit().is_none());
        drop(first);
        assert!(connections.admit().is_some());
    }

    #[test]
    fn refusals_are_bounded_too() {
        let connections = Connections::new(1);
        let refusals: Vec<_> = (0..REFUSALS_AT_ONCE)
            .map(|_| connections.refusal().unwrap())
            .collect();
        assert!(connections.refusal().is_none());
        drop(refusals);
        assert!(connections.refusal().is_some());
    }
}
