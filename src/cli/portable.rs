//! `todo export` and `todo import`: lists as JSON Lines, through the API with the caller's
//! rights, so that data moves between servers and between SQLite and PostgreSQL.
//!
//! The first line names the format and its version; then each list is one line (its owner
//! when it is not the caller's own, its name, id counter and version) followed by one line per
//! entry, with every field and its id. An import sends each list in one request, which the
//! server applies in one commit, keeping ids and the id counter; importing the same dump twice
//! changes nothing. An admin's `--all` export holds every list with its owner, and its import
//! puts each back under that owner (whose account must exist on the target).

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

use crate::client::{ClientError, ListRef};
use crate::web::body::{DumpBody, EntryBody};

use super::{ClientArgs, connect};

/// The `format` of the first line.
const FORMAT: &str = "todo-export";
/// The version of the format this build writes and reads.
const FORMAT_VERSION: u32 = 1;

/// The first line of an export.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
}

/// Every line after the first.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Line {
    /// A list; its entries follow.
    List {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
        list: String,
        next_id: u64,
        version: u64,
    },
    /// One entry of the list named.
    Entry {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
        list: String,
        #[serde(flatten)]
        entry: EntryBody,
    },
}

/// The owner and the name of a list as the API addresses it (`LIST` or `OWNER:LIST`).
fn owner_and_name(address: &str) -> (Option<String>, String) {
    match address.split_once(':') {
        Some((owner, list)) => (Some(owner.to_owned()), list.to_owned()),
        None => (None, address.to_owned()),
    }
}

/// The API's address of a list of an export.
fn address(owner: &Option<String>, list: &str) -> String {
    match owner {
        Some(owner) => format!("{owner}:{list}"),
        None => list.to_owned(),
    }
}

/// Writes the named lists; every list of the caller's own when none is named; with `all`
/// (an admin), every list on the server with its owner.
pub async fn export(client: &ClientArgs, lists: Vec<String>, all: bool) -> anyhow::Result<String> {
    let server = connect(client)?;
    let names = match (all, lists.is_empty()) {
        (true, _) => server.lists(true).await?,
        (false, true) => server
            .lists(false)
            .await?
            .into_iter()
            .filter(|name| !name.contains(':'))
            .collect(),
        (false, false) => lists,
    };
    let header = Header {
        format: FORMAT.to_owned(),
        version: FORMAT_VERSION,
    };
    let mut text = format!("{}\n", serde_json::to_string(&header)?);
    for name in names {
        let dump = server.dump(&ListRef::parse(&name)?).await?;
        let (owner, list) = owner_and_name(&name);
        let line = Line::List {
            owner: owner.clone(),
            list: list.clone(),
            next_id: dump.next_id,
            version: dump.version,
        };
        text.push_str(&serde_json::to_string(&line)?);
        text.push('\n');
        for entry in dump.entries {
            let line = Line::Entry {
                owner: owner.clone(),
                list: list.clone(),
                entry,
            };
            text.push_str(&serde_json::to_string(&line)?);
            text.push('\n');
        }
    }
    Ok(text)
}

/// Imports every list of an export (`file`, or standard input), one request per list; reports
/// each, and fails, after trying them all, if any was not imported.
pub async fn import(client: &ClientArgs, file: Option<PathBuf>) -> anyhow::Result<String> {
    let text = match &file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
            text
        }
    };
    let lists = parse(&text)?;
    let server = connect(client)?;
    let mut report = String::new();
    let mut failed = 0;
    for (name, dump) in &lists {
        match server.import(&ListRef::parse(name)?, dump).await {
            Ok(done) if done.unchanged => report.push_str(&format!("{name}: unchanged\n")),
            Ok(done) => report.push_str(&format!("{name}: imported {} entries\n", done.imported)),
            Err(error @ ClientError::Server { .. }) => {
                failed += 1;
                report.push_str(&format!("{name}: not imported: {error}\n"));
            }
            // The server is gone: the lists after this one were not tried.
            Err(error) => bail!("{report}{name}: {error}"),
        }
    }
    if failed > 0 {
        // What was done goes out as usual; the failure, and the exit status, come after it.
        print!("{report}");
        bail!("{failed} of {} lists were not imported", lists.len());
    }
    Ok(report)
}

/// The lists of an export, in order, each with its entries.
fn parse(text: &str) -> anyhow::Result<Vec<(String, DumpBody)>> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty());
    let (_, first) = lines.next().context("the export is empty")?;
    let header: Header = serde_json::from_str(first)
        .ok()
        .filter(|header: &Header| header.format == FORMAT)
        .context("this is not a todo export: its first line names no `todo-export` format")?;
    if header.version != FORMAT_VERSION {
        bail!(
            "this export has format version {}; this todo reads version {FORMAT_VERSION}",
            header.version
        );
    }
    let mut lists: Vec<(String, DumpBody)> = Vec::new();
    for (index, line) in lines {
        let number = index + 1;
        let line: Line = serde_json::from_str(line)
            .with_context(|| format!("line {number} is not a list or an entry"))?;
        match line {
            Line::List {
                owner,
                list,
                next_id,
                version,
            } => {
                let list = address(&owner, &list);
                if lists.iter().any(|(name, _)| *name == list) {
                    bail!("line {number}: list {list:?} appears twice");
                }
                let dump = DumpBody {
                    next_id,
                    version,
                    entries: Vec::new(),
                };
                lists.push((list, dump));
            }
            Line::Entry { owner, list, entry } => match lists.last_mut() {
                Some((name, dump)) if *name == address(&owner, &list) => dump.entries.push(entry),
                _ => bail!("line {number}: an entry of {list:?} is not under its list's line"),
            },
        }
    }
    Ok(lists)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_is_read_back_list_by_list() {
        let text = r#"{"format":"todo-export","version":1}
{"type":"list","list":"work","next_id":4,"version":5}
{"type":"entry","list":"work","id":1,"date":"2026-12-03","title":"a, \"b\"","done":false}
{"type":"entry","list":"work","id":3,"date":"2026-12-04","title":"c","done":true,"order":2}
{"type":"list","list":"home","next_id":1,"version":0}
{"type":"list","owner":"bob","list":"home","next_id":3,"version":2}
{"type":"entry","owner":"bob","list":"home","id":2,"date":"2026-12-03","title":"b","done":false}
"#;
        let lists = parse(text).unwrap();
        assert_eq!(lists.len(), 3);
        assert_eq!(
            lists[2].0, "bob:home",
            "bob's list, not the caller's own home"
        );
        assert_eq!(lists[2].1.entries.len(), 1);
        assert_eq!(lists[0].0, "work");
        assert_eq!(lists[0].1.next_id, 4);
        assert_eq!(lists[0].1.entries.len(), 2);
        assert_eq!(lists[0].1.entries[0].title, "a, \"b\"");
        assert_eq!(lists[0].1.entries[1].order, Some(2));
        assert!(lists[1].1.entries.is_empty());
    }

    #[test]
    fn what_is_not_an_export_says_where() {
        for (text, says) in [
            ("", "empty"),
            (
                "{\"format\":\"other\",\"version\":1}\n",
                "not a todo export",
            ),
            ("{\"format\":\"todo-export\",\"version\":9}\n", "version 9"),
            (
                "{\"format\":\"todo-export\",\"version\":1}\n{\"type\":\"entry\",\"list\":\"a\",\"id\":1,\"date\":\"2026-12-03\",\"title\":\"x\",\"done\":false}\n",
                "line 2",
            ),
            (
                "{\"format\":\"todo-export\",\"version\":1}\nnot json\n",
                "line 2 is not",
            ),
        ] {
            let error = parse(text).unwrap_err();
            assert!(format!("{error:#}").contains(says), "{text:?}: {error:#}");
        }
    }
}
