//! The cap on open connections. Each connection holds a file descriptor (two under TLS, none
//! shared), and a process out of descriptors can neither accept nor open its database files,
//! so the server keeps its connections below the descriptor limit, with room to spare, and
//! answers a connection over the cap at once with a 503 instead of letting `accept` fail.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Descriptors kept free of connections: the database files and their WAL, the log, the
/// account connection, the connections refused over the cap while they are answered.
const RESERVED_FDS: u64 = 256;
/// The cap when the descriptor limit is unknown or unlimited.
const DEFAULT_CAP: u64 = 65_536;
/// The smallest cap the limit can lead to.
const MIN_CAP: u64 = 16;
/// How long a refused connection may take to read its 503.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

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

/// The connections open now, at most the cap.
#[derive(Clone)]
pub struct Connections(Arc<Semaphore>);

impl Connections {
    /// Room for `cap` connections.
    pub fn new(cap: usize) -> Connections {
        Connections(Arc::new(Semaphore::new(cap)))
    }

    /// A place for one more connection, held until the permit drops; `None` at the cap.
    pub fn admit(&self) -> Option<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().ok()
    }
}

/// Answers a connection over the cap with a 503 (a fixed answer: no request is read) and
/// closes it, so the client knows to come back rather than wait.
pub async fn refuse(mut stream: TcpStream) {
    let body = r#"{"error":{"code":"too_many_connections","message":"the server has as many connections open as it allows; retry shortly"}}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nx-content-type-options: nosniff\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    let write = async {
        stream.write_all(answer.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, write).await;
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
}
