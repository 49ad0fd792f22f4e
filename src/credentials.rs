//! The tokens `todo login` keeps: one per server, in `$XDG_CONFIG_HOME/todo/credentials`
//! (`~/.config/todo/credentials` without it), readable by the user alone.
//!
//! The file is JSON, `{"SERVER URL": "TOKEN"}`, replaced atomically (written beside and
//! renamed), so a crash never leaves half a file and two logins never mix their writes.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::PathBuf;

use anyhow::Context;

/// The file's name inside the configuration directory.
const FILE_NAME: &str = "credentials";

/// The saved tokens, by server URL.
#[derive(Debug, Default)]
pub struct Credentials {
    path: PathBuf,
    tokens: BTreeMap<String, String>,
}

impl Credentials {
    /// Reads the file; a missing file is an empty store.
    pub fn load() -> anyhow::Result<Credentials> {
        let path = config_dir()?.join(FILE_NAME);
        let tokens = match fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{} is not a credentials file", path.display()))?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot read {}", path.display()));
            }
        };
        Ok(Credentials { path, tokens })
    }

    /// The token saved for `server`.
    pub fn token(&self, server: &str) -> Option<&str> {
        self.tokens.get(server).map(String::as_str)
    }

    /// Saves `token` for `server`, replacing the one before.
    pub fn save(&mut self, server: &str, token: &str) -> anyhow::Result<()> {
        self.tokens.insert(server.to_owned(), token.to_owned());
        self.write()
    }

    /// Forgets the token of `server`; whether there was one.
    pub fn forget(&mut self, server: &str) -> anyhow::Result<bool> {
        let had = self.tokens.remove(server).is_some();
        if had {
            self.write()?;
        }
        Ok(had)
    }

    /// Where the tokens are kept.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    fn write(&self) -> anyhow::Result<()> {
        let dir = self
            .path
            .parent()
            .context("credentials path has no directory")?;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let temporary = self.path.with_extension("new");
        let text = serde_json::to_string_pretty(&self.tokens)?;
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .with_context(|| format!("cannot write {}", temporary.display()))?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temporary, &self.path)
            .with_context(|| format!("cannot replace {}", self.path.display()))?;
        Ok(())
    }
}

/// `$XDG_CONFIG_HOME/todo`, else `$HOME/.config/todo`.
fn config_dir() -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .context("neither XDG_CONFIG_HOME nor HOME is set; cannot keep credentials")?;
            PathBuf::from(home).join(".config")
        }
    };
    Ok(base.join("todo"))
}
