//! The command line of users and access: `todo user` works on storage directly (also while a
//! server runs on it); `login`, `logout`, `token`, `share`, `unshare`, `members` and `link`
//! are clients of a running server.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;

use super::failure::InvalidInput;
use crate::accounts::{self, AccountError, Role, UserName, hash_password, store};
use crate::client::{Client, ListRef, server_url};
use crate::config::DatabaseConfig;
use crate::credentials::Credentials;
use crate::database::StorageError;
use crate::database::storage::Storage;
use crate::web::accounts::TokenBody;

use super::ClientArgs;

/// Where `todo user` finds the accounts: the server's storage.
#[derive(Debug, Args)]
pub struct StorageArgs {
    /// Directory of the embedded SQLite database (the server's --data-dir).
    #[arg(long, env = "TODO_DATA_DIR", default_value = "todo-data")]
    pub data_dir: PathBuf,
    /// The PostgreSQL database instead (the server's --database-url).
    #[arg(long, env = "TODO_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `todo user ...`: accounts, on storage directly.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Make an account. The first one is an admin and takes over the lists made before any
    /// account existed.
    Add {
        #[command(flatten)]
        storage: StorageArgs,
        /// The user name: 1 to 64 characters, no spaces, and of ASCII punctuation only -_.@+.
        name: String,
        /// Let the user manage accounts and read metrics.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Show every account.
    List {
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Remove an account with its lists, tokens, shares and links (asks first).
    Rm {
        #[command(flatten)]
        storage: StorageArgs,
        /// The user name.
        name: String,
        /// Do not ask; needed when standard input is not a terminal.
        #[arg(long)]
        yes: bool,
    },
    /// Set a new password; the user's sessions end.
    Passwd {
        #[command(flatten)]
        storage: StorageArgs,
        /// The user name.
        name: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// `todo token ...`: API tokens of the signed-in user.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a token and print it (it is shown only now).
    Create {
        #[command(flatten)]
        client: ClientArgs,
        /// What the token is for.
        name: String,
        /// Make it stop working after this long, such as 30d or 12h.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<Duration>,
    },
    /// Show your tokens (not the tokens themselves).
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke a token at once.
    Revoke {
        #[command(flatten)]
        client: ClientArgs,
        /// The token's id, from `todo token list`.
        id: i64,
    },
}

impl TokenCommand {
    /// The client flags it was given.
    pub(super) fn client(&self) -> &ClientArgs {
        match self {
            TokenCommand::Create { client, .. }
            | TokenCommand::List { client }
            | TokenCommand::Revoke { client, .. } => client,
        }
    }
}

/// `todo link ...`: share links of one of your lists.
#[derive(Debug, Subcommand)]
pub enum LinkCommand {
    /// Make a link that opens LIST to anyone holding it, and print its URL.
    Create {
        #[command(flatten)]
        client: ClientArgs,
        /// The list.
        list: String,
        /// What the link allows.
        #[arg(long, default_value = "read", value_parser = parse_role)]
        role: Role,
    },
    /// Show the links of LIST (not their secrets).
    List {
        #[command(flatten)]
        client: ClientArgs,
        /// The list.
        list: String,
    },
    /// Revoke a link at once.
    Revoke {
        #[command(flatten)]
        client: ClientArgs,
        /// The list.
        list: String,
        /// The link's id, from `todo link list`.
        id: i64,
    },
}

impl LinkCommand {
    /// The client flags it was given.
    pub(super) fn client(&self) -> &ClientArgs {
        match self {
            LinkCommand::Create { client, .. }
            | LinkCommand::List { client, .. }
            | LinkCommand::Revoke { client, .. } => client,
        }
    }
}

/// `--role`: read or write.
pub fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text).map_err(|error| error.to_string())
}

/// Runs a `todo user` command on storage and returns what it prints. Blocking: it runs
/// outside the async runtime, as the PostgreSQL backend brings its own.
pub fn user(command: UserCommand) -> anyhow::Result<String> {
    match command {
        UserCommand::Add {
            storage,
            name,
            admin,
            password_stdin,
        } => {
            let name = UserName::parse(&name)?;
            let password = new_password(password_stdin)?;
            let hash = hash_password(&password)?;
            let (user, adopted) = open(&storage)?.transaction(true, |steps| {
                store::create_user(steps, &name, &hash, admin, accounts::now())
            })?;
            if storage.json {
                let body =
                    json!({"name": user.name, "admin": user.admin, "adopted_lists": adopted});
                return Ok(format!("{body}\n"));
            }
            let role = if user.admin { "admin" } else { "user" };
            let mut text = format!("created {role} {}\n", user.name);
            if adopted > 0 {
                text += &format!(
                    "{} now owns the {adopted} list(s) made before accounts existed\n",
                    user.name
                );
            }
            Ok(text)
        }
        UserCommand::List { storage } => {
            let users = open(&storage)?.transaction(false, store::users)?;
            if storage.json {
                let users: Vec<_> = users
                    .iter()
                    .map(|user| json!({"name": user.name, "admin": user.admin}))
                    .collect();
                return Ok(format!("{}\n", serde_json::Value::from(users)));
            }
            let mut text = String::new();
            for user in users {
                let admin = if user.admin { "  admin" } else { "" };
                text += &format!("{}{admin}\n", user.name);
            }
            Ok(text)
        }
        UserCommand::Rm { storage, name, yes } => {
            let name = UserName::parse(&name)?;
            let question = format!("remove {name} with their lists, tokens, shares and links?");
            if !yes && !super::confirm(&question)? {
                let message = format!("{name} not removed (answer yes, or pass --yes)");
                return Err(InvalidInput::new(message).into());
            }
            let user =
                open(&storage)?.transaction(true, |steps| store::remove_user(steps, &name))?;
            Ok(format!(
                "removed {} with their lists, tokens and shares\n",
                user.name
            ))
        }
        UserCommand::Passwd {
            storage,
            name,
            password_stdin,
        } => {
            let name = UserName::parse(&name)?;
            let password = new_password(password_stdin)?;
            let hash = hash_password(&password)?;
            open(&storage)?.transaction(true, |steps| store::set_password(steps, &name, &hash))?;
            Ok(format!(
                "changed the password of {name}; their sessions ended\n"
            ))
        }
    }
}

/// Storage as `todo serve` would open it, without its lock: SQLite in WAL mode lets this
/// connection write while a server runs on the same file.
fn open(args: &StorageArgs) -> anyhow::Result<Storage> {
    let config = DatabaseConfig {
        data_dir: args.data_dir.clone(),
        database_url: args.database_url.clone(),
        ..DatabaseConfig::default()
    };
    if config.database_url.is_none() {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create {}", config.data_dir.display()))?;
    }
    let storage = Storage::open(&config).map_err(|error: StorageError| {
        anyhow::anyhow!("cannot open the accounts' storage: {error}")
    })?;
    Ok(storage)
}

/// A new password, from standard input or typed twice at a prompt, checked.
fn new_password(from_stdin: bool) -> anyhow::Result<String> {
    let password = if from_stdin {
        password_from_stdin()?
    } else {
        let first =
            rpassword::prompt_password("new password: ").context("cannot read a password")?;
        let again = rpassword::prompt_password("again: ").context("cannot read a password")?;
        anyhow::ensure!(first == again, "the passwords differ");
        first
    };
    accounts::check_password(&password).map_err(|error: AccountError| anyhow::anyhow!(error))?;
    Ok(password)
}

/// The first line of standard input, without its line ending.
fn password_from_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let line = line.strip_suffix('\n').unwrap_or(&line);
    Ok(line.strip_suffix('\r').unwrap_or(line).to_owned())
}

/// A client of `args.server` with the token to send: `--token` (or `TODO_TOKEN`), else the
/// one `todo login` saved for that server.
pub fn connect(args: &ClientArgs) -> anyhow::Result<Client> {
    let token = match args.token.as_ref().filter(|token| !token.is_empty()) {
        Some(token) => Some(token.clone()),
        None => Credentials::load()?
            .token(&server_url(&args.server))
            .map(str::to_owned),
    };
    Client::new(&args.server, token, args.ca_cert.as_deref())
}

/// `todo login`: asks for the password, logs in, and saves the session token.
pub async fn login(
    client: ClientArgs,
    user: Option<String>,
    password_stdin: bool,
) -> anyhow::Result<String> {
    let user = match user {
        Some(user) => user,
        None => std::env::var("USER").context("give the user name: todo login NAME")?,
    };
    let password = if password_stdin {
        password_from_stdin()?
    } else {
        rpassword::prompt_password(format!("password for {user}: "))
            .context("cannot read a password")?
    };
    let server = Client::new(&client.server, None, client.ca_cert.as_deref())?;
    let session = server.login(&user, &password).await?;
    let mut credentials = Credentials::load()?;
    credentials.save(server.server(), &session.token)?;
    let until = session.expires_at.unwrap_or_default();
    Ok(format!(
        "logged in to {} as {user} until {until}; the token is in {}\n",
        server.server(),
        credentials.path().display()
    ))
}

/// `todo logout`: revokes the saved session on the server and forgets it here.
pub async fn logout(client: ClientArgs) -> anyhow::Result<String> {
    let server = connect(&client)?;
    let revoked = server.logout().await;
    let mut credentials = Credentials::load()?;
    let forgot = credentials.forget(server.server())?;
    match (revoked, forgot) {
        (Ok(()), _) => Ok(format!("logged out of {}\n", server.server())),
        (Err(error), true) => Ok(format!(
            "forgot the token of {}; the server did not revoke it: {error}\n",
            server.server()
        )),
        (Err(error), false) => Err(error.into()),
    }
}

/// `todo token ...`.
pub async fn token(command: TokenCommand) -> anyhow::Result<String> {
    match command {
        TokenCommand::Create {
            client,
            name,
            expires_in,
        } => {
            let expires_at = expires_in
                .map(|after| {
                    let after =
                        chrono::Duration::from_std(after).context("--expires-in is too long")?;
                    let at = chrono::Utc::now() + after;
                    anyhow::Ok(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                })
                .transpose()?;
            let token = connect(&client)?.create_token(&name, expires_at).await?;
            match client.json {
                true => Ok(format!("{}\n", serde_json::to_string(&token)?)),
                false => Ok(format!("{}\n", token.token)),
            }
        }
        TokenCommand::List { client } => {
            let tokens = connect(&client)?.tokens().await?;
            match client.json {
                true => Ok(format!("{}\n", serde_json::to_string(&tokens)?)),
                false => Ok(tokens_table(&tokens)),
            }
        }
        TokenCommand::Revoke { client, id } => {
            connect(&client)?.revoke_token(id).await?;
            Ok(format!("revoked token {id}\n"))
        }
    }
}

fn tokens_table(tokens: &[TokenBody]) -> String {
    let mut text = format!(
        "{:>4}  {:<20}  {:<20}  {:<20}  NAME\n",
        "ID", "CREATED", "EXPIRES", "LAST USED"
    );
    for token in tokens {
        let never = || "-".to_owned();
        text += &format!(
            "{:>4}  {:<20}  {:<20}  {:<20}  {}\n",
            token.id,
            token.created_at,
            token.expires_at.clone().unwrap_or_else(never),
            token.last_used_at.clone().unwrap_or_else(never),
            token.name
        );
    }
    text
}

/// `todo share LIST USER --role R`.
pub async fn share(
    client: ClientArgs,
    list: String,
    user: String,
    role: Role,
) -> anyhow::Result<String> {
    let list = ListRef::parse(&list)?;
    let member = connect(&client)?.share(&list, &user, role).await?;
    Ok(format!(
        "{} may now {} {}\n",
        member.user,
        member.role.as_str(),
        list
    ))
}

/// `todo unshare LIST USER`.
pub async fn unshare(client: ClientArgs, list: String, user: String) -> anyhow::Result<String> {
    let list = ListRef::parse(&list)?;
    connect(&client)?.unshare(&list, &user).await?;
    Ok(format!("{user} no longer shares {}\n", list))
}

/// `todo members LIST`.
pub async fn members(client: ClientArgs, list: String) -> anyhow::Result<String> {
    let list = ListRef::parse(&list)?;
    let members = connect(&client)?.members(&list).await?;
    if client.json {
        return Ok(format!("{}\n", serde_json::to_string(&members)?));
    }
    if members.is_empty() {
        // Said on stderr, as an empty list's entries are: stdout stays the (empty) table.
        eprintln!("{list}: shared with nobody");
    }
    Ok(members
        .iter()
        .map(|member| format!("{}  {}\n", member.user, member.role.as_str()))
        .collect())
}

/// `todo link ...`.
pub async fn link(command: LinkCommand) -> anyhow::Result<String> {
    match command {
        LinkCommand::Create { client, list, role } => {
            let list = ListRef::parse(&list)?;
            let server = connect(&client)?;
            let link = server.create_link(&list, role).await?;
            let path = link.path.as_deref().unwrap_or_default();
            let url = format!("{}{path}", server.server());
            match client.json {
                true => Ok(format!(
                    "{}\n",
                    json!({"id": link.id, "role": link.role, "url": url})
                )),
                false => Ok(format!("{url}\n")),
            }
        }
        LinkCommand::List { client, list } => {
            let list = ListRef::parse(&list)?;
            let links = connect(&client)?.links(&list).await?;
            if client.json {
                return Ok(format!("{}\n", serde_json::to_string(&links)?));
            }
            if links.is_empty() {
                eprintln!("{list}: no links");
                return Ok(String::new());
            }
            let header = format!("{:>4}  {:<5}  CREATED\n", "ID", "ROLE");
            Ok(links.iter().fold(header, |table, link| {
                let row = format!(
                    "{:>4}  {:<5}  {}\n",
                    link.id,
                    link.role.as_str(),
                    link.created_at
                );
                table + &row
            }))
        }
        LinkCommand::Revoke { client, list, id } => {
            let list = ListRef::parse(&list)?;
            connect(&client)?.revoke_link(&list, id).await?;
            Ok(format!("revoked link {id}\n"))
        }
    }
}
