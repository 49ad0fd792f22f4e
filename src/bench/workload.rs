//! What the simulated clients ask for: the workloads, the book's lists and dates, and a small
//! deterministic random number generator, so that a run can be repeated request for request.

use std::fmt;
use std::str::FromStr;

/// The dates the book's load script writes to and reads from: 2018-12-01 to 2018-12-31.
pub const DATES: [&str; 31] = [
    "2018-12-01",
    "2018-12-02",
    "2018-12-03",
    "2018-12-04",
    "2018-12-05",
    "2018-12-06",
    "2018-12-07",
    "2018-12-08",
    "2018-12-09",
    "2018-12-10",
    "2018-12-11",
    "2018-12-12",
    "2018-12-13",
    "2018-12-14",
    "2018-12-15",
    "2018-12-16",
    "2018-12-17",
    "2018-12-18",
    "2018-12-19",
    "2018-12-20",
    "2018-12-21",
    "2018-12-22",
    "2018-12-23",
    "2018-12-24",
    "2018-12-25",
    "2018-12-26",
    "2018-12-27",
    "2018-12-28",
    "2018-12-29",
    "2018-12-30",
    "2018-12-31",
];

/// The title of every entry the benchmark adds, as in the book's script.
pub const TITLE: &str = "some title";

/// One in this many requests of the mixed workload is a write (the book's 20 %).
const MIXED_WRITE_ONE_IN: u64 = 5;

/// What every list the benchmark writes is named with, so that it never writes into a list
/// of the server's users.
pub const LIST_PREFIX: &str = "bench-";

/// The name of list number `index` (counting from 0): `bench-1`, `bench-2`, ...
pub fn list_name(index: usize) -> String {
    format!("{LIST_PREFIX}{}", index + 1)
}

/// Which requests the clients send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// The book's load: 80 % reads of one day, 20 % durable adds.
    Mixed,
    /// Reads of one day only.
    Read,
    /// Durable adds only: each waits for its commit.
    Write,
    /// Adds as casts: each returns once queued.
    WriteAsync,
    /// `GET /healthz` only: the HTTP stack and a storage ping, without a list actor.
    Healthz,
    /// Subscribers follow lists' event streams while writers add entries (`bench::watch`).
    Watch,
}

/// The kind of one request, which keeps its own latency histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Read the entries of one list on one date.
    Read,
    /// Add an entry and wait until it is committed.
    Write,
    /// Add an entry as a cast.
    WriteAsync,
    /// `GET /healthz`.
    Healthz,
}

/// One request: its kind, the list (by index) and the date (by index into `DATES`).
#[derive(Debug, Clone, Copy)]
pub struct Op {
    /// What to do.
    pub kind: OpKind,
    /// Which list, from 0.
    pub list: usize,
    /// Which date of `DATES`.
    pub date: usize,
}

impl OpKind {
    /// Every kind, in report order.
    pub const ALL: [OpKind; 4] = [
        OpKind::Read,
        OpKind::Write,
        OpKind::WriteAsync,
        OpKind::Healthz,
    ];

    /// The kind's position in `ALL`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The kind's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Read => "read",
            OpKind::Write => "write",
            OpKind::WriteAsync => "write-async",
            OpKind::Healthz => "healthz",
        }
    }
}

impl Workload {
    /// The workload's name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Mixed => "mixed",
            Workload::Read => "read",
            Workload::Write => "write",
            Workload::WriteAsync => "write-async",
            Workload::Healthz => "healthz",
            Workload::Watch => "watch",
        }
    }

    /// The next request of a client, drawn from `rng` over `n_lists` lists.
    pub fn next_op(self, rng: &mut XorShift, n_lists: usize) -> Op {
        let list = rng.below(n_lists as u64) as usize;
        let date = rng.below(DATES.len() as u64) as usize;
        let kind = match self {
            Workload::Mixed if rng.below(MIXED_WRITE_ONE_IN) == 0 => OpKind::Write,
            Workload::Mixed | Workload::Read => OpKind::Read,
            // A watch run's requests are its writers' adds.
            Workload::Write | Workload::Watch => OpKind::Write,
            Workload::WriteAsync => OpKind::WriteAsync,
            Workload::Healthz => OpKind::Healthz,
        };
        Op { kind, list, date }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = String;

    fn from_str(text: &str) -> Result<Workload, String> {
        match text {
            "mixed" => Ok(Workload::Mixed),
            "read" => Ok(Workload::Read),
            "write" => Ok(Workload::Write),
            "write-async" => Ok(Workload::WriteAsync),
            "healthz" => Ok(Workload::Healthz),
            "watch" => Ok(Workload::Watch),
            _ => Err(format!(
                "unknown workload {text:?}: expected mixed, read, write, write-async, healthz or watch"
            )),
        }
    }
}

/// xorshift64*: tiny, fast, and the same sequence for the same seed on every machine.
/// Not for anything but picking benchmark requests.
#[derive(Debug, Clone)]
pub struct XorShift {
    state: u64,
}

impl XorShift {
    /// A generator for one client; different `stream`s of one `seed` give unrelated sequences.
    pub fn new(seed: u64, stream: u64) -> XorShift {
        // splitmix64 spreads nearby seeds apart and never yields the forbidden zero state twice
        // in a row; the `| 1` rules it out entirely.
        let mut mixed = seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        XorShift {
            state: (mixed ^ (mixed >> 31)) | 1,
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..bound` (`bound` > 0), with a bias too small to matter here.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_requests() {
        let draw = |seed| {
            let mut rng = XorShift::new(seed, 3);
            (0..100)
                .map(|_| Workload::Mixed.next_op(&mut rng, 1_000))
                .map(|op| (op.kind, op.list, op.date))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }

    #[test]
    fn mixed_is_about_one_write_in_five() {
        let mut rng = XorShift::new(1, 0);
        let n_writes = (0..100_000)
            .filter(|_| Workload::Mixed.next_op(&mut rng, 10).kind == OpKind::Write)
            .count();
        assert!((19_000..21_000).contains(&n_writes), "{n_writes} writes");
    }

    #[test]
    fn draws_stay_in_range() {
        let mut rng = XorShift::new(0, 0);
        for _ in 0..10_000 {
            let op = Workload::Read.next_op(&mut rng, 3);
            assert!(op.list < 3 && op.date < DATES.len());
        }
        assert_eq!(list_name(0), "bench-1");
    }
}
