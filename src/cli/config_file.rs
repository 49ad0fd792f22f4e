//! `todo serve --config FILE` (or `TODO_CONFIG`): the server's flags in a TOML file, with the
//! flags' own names (`max-in-flight = 4096` or `max_in_flight = 4096`).
//!
//! The file's values are added to the command line as flags, for each flag that neither the
//! command line nor its `TODO_*` environment variable gave, and the whole is parsed again: a
//! flag beats the environment, which beats the file, which beats the default; and every value
//! passes the same parser, with the same messages, as the flag's.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::parser::ValueSource;
use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};

use super::Cli;

/// A flag of `todo serve` that a configuration file may set.
#[derive(Debug)]
struct Flag {
    /// clap's id, the field's name.
    id: String,
    /// The long name, without `--`.
    long: String,
    /// Whether it takes no value (`--metrics-public`): `true` adds it, `false` leaves it out.
    is_switch: bool,
}

/// Parses the command line; for `todo serve --config FILE`, once more with the file's values.
/// Usage errors exit as clap's own do; a bad file is an error naming it and the key.
pub fn parse() -> anyhow::Result<Cli> {
    let args = super::argv::hoist_client_flags(std::env::args_os().collect());
    let matches = Cli::command().get_matches_from(&args);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let Some(serve) = matches.subcommand_matches("serve") else {
        return Ok(cli);
    };
    let Some(file) = serve.get_one::<PathBuf>("config") else {
        return Ok(cli);
    };
    let mut args = args;
    for (flag, value) in values_from(file)? {
        let given = serve.value_source(&flag.id);
        if matches!(
            given,
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        match (flag.is_switch, value.as_str()) {
            (true, "true") => args.push(format!("--{}", flag.long).into()),
            (true, "false") => {}
            (true, _) => bail!("{} in {} must be true or false", flag.long, file.display()),
            (false, _) => args.push(format!("--{}={value}", flag.long).into()),
        }
    }
    Ok(Cli::parse_from(args))
}

/// The flags of `serve` that a file may set: all but `--config` and `--help`.
fn serve_flags() -> Vec<Flag> {
    let command = Cli::command();
    let Some(serve) = command.find_subcommand("serve") else {
        return Vec::new();
    };
    serve
        .get_arguments()
        .filter_map(|argument| {
            let long = argument.get_long()?;
            let is_switch = matches!(argument.get_action(), ArgAction::SetTrue);
            let excluded = matches!(long, "config" | "help");
            (!excluded).then(|| Flag {
                id: argument.get_id().as_str().to_owned(),
                long: long.to_owned(),
                is_switch,
            })
        })
        .collect()
}

/// The flags `file` sets, with their values as text; an unknown key, a table or an array is
/// an error naming it.
fn values_from(file: &Path) -> anyhow::Result<Vec<(Flag, String)>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the configuration file {}", file.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", file.display()))?;
    let mut known = serve_flags();
    let names: Vec<String> = known.iter().map(|flag| flag.long.clone()).collect();
    let mut values = Vec::new();
    for (key, value) in table {
        let long = key.replace('_', "-");
        let Some(index) = known.iter().position(|flag| flag.long == long) else {
            bail!(
                "unknown key {key:?} in {}; the keys are the flags of `todo serve`: {}",
                file.display(),
                names.join(", ")
            );
        };
        let value = match value {
            toml::Value::String(text) => text,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(x) => x.to_string(),
            toml::Value::Boolean(flag) => flag.to_string(),
            _ => bail!(
                "{key} in {} must be a string, a number or true/false",
                file.display()
            ),
        };
        values.push((known.swap_remove(index), value));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_with(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), text).unwrap();
        file
    }

    #[test]
    fn keys_are_the_serve_flags_in_either_spelling() {
        let file = file_with("max-in-flight = 64\nmetrics_public = true\naddr = \":5455\"\n");
        let mut values: Vec<(String, bool, String)> = values_from(file.path())
            .unwrap()
            .into_iter()
            .map(|(flag, value)| (flag.long, flag.is_switch, value))
            .collect();
        values.sort();
        assert_eq!(
            values,
            [
                ("addr".to_owned(), false, ":5455".to_owned()),
                ("max-in-flight".to_owned(), false, "64".to_owned()),
                ("metrics-public".to_owned(), true, "true".to_owned()),
            ]
        );
    }

    #[test]
    fn unknown_keys_tables_and_bad_toml_are_errors_that_say_which() {
        let unknown = values_from(file_with("max_inflight = 1").path()).unwrap_err();
        assert!(format!("{unknown:#}").contains("unknown key \"max_inflight\""));
        assert!(format!("{unknown:#}").contains("max-in-flight"));
        let table = values_from(file_with("[addr]\nport = 1").path()).unwrap_err();
        assert!(format!("{table:#}").contains("addr in"));
        let broken = values_from(file_with("addr = ").path()).unwrap_err();
        assert!(format!("{broken:#}").contains("not valid TOML"));
        let config_itself = values_from(file_with("config = \"x\"").path()).unwrap_err();
        assert!(format!("{config_itself:#}").contains("unknown key"));
    }
}
