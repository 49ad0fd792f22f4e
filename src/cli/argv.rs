//! Client flags before the subcommand: `todo --server URL lists` means `todo lists --server
//! URL`. Each client subcommand takes the flags itself (so its `--help` lists them); this
//! moves the ones written before the subcommand to just after it, the innermost one for
//! nested commands (`todo --json token list`), and clap then parses as usual: the same flag
//! both before and after is refused as any flag given twice is.

use std::ffi::OsString;

use clap::{Args, CommandFactory};

use super::{Cli, ClientArgs};

/// `args` (with the program name first) with the client flags that precede the subcommand
/// moved to after it. Anything else before the subcommand (`--help`, an unknown flag) stops
/// the move, and clap reports it as it would have.
pub fn hoist_client_flags(args: Vec<OsString>) -> Vec<OsString> {
    let mut rest = args.into_iter();
    let mut out: Vec<OsString> = rest.next().into_iter().collect();
    let flags = client_flags();
    let mut hoisted = Vec::new();
    let mut rest = rest.peekable();
    while let Some(takes_value) = rest.peek().and_then(|arg| takes_value(&flags, arg)) {
        hoisted.extend(rest.next());
        if takes_value {
            hoisted.extend(rest.next());
        }
    }
    let mut command = Cli::command();
    for name in rest.by_ref() {
        let found = command.find_subcommand(&name).cloned();
        out.push(name);
        match found {
            Some(sub) if sub.has_subcommands() => command = sub,
            _ => break,
        }
    }
    out.extend(hoisted);
    out.extend(rest);
    out
}

/// The long names of `ClientArgs`' flags, each with whether it takes a value, read from
/// clap's own definition so that a flag added there can come first too.
fn client_flags() -> Vec<(String, bool)> {
    let command = ClientArgs::augment_args(clap::Command::new("client"));
    command
        .get_arguments()
        .filter_map(|argument| {
            let long = argument.get_long()?;
            Some((format!("--{long}"), argument.get_action().takes_values()))
        })
        .collect()
}

/// `None` unless `arg` is one of `flags` (`--server` or `--server=URL`); else whether the
/// next argument is its value.
fn takes_value(flags: &[(String, bool)], arg: &OsString) -> Option<bool> {
    let arg = arg.to_str()?;
    let (name, inline_value) = match arg.split_once('=') {
        Some((name, _)) => (name, true),
        None => (arg, false),
    };
    let (_, takes) = flags.iter().find(|(flag, _)| flag == name)?;
    Some(*takes && !inline_value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hoisted(line: &str) -> String {
        let args = line.split(' ').map(OsString::from).collect();
        let out = hoist_client_flags(args);
        let out: Vec<_> = out.iter().map(|arg| arg.to_string_lossy()).collect();
        out.join(" ")
    }

    #[test]
    fn client_flags_before_the_subcommand_move_after_it() {
        assert_eq!(
            hoisted("todo --server h:1 lists"),
            "todo lists --server h:1"
        );
        assert_eq!(
            hoisted("todo --json --token=t add a today x"),
            "todo add --json --token=t a today x"
        );
    }

    #[test]
    fn nested_subcommands_get_them_after_the_innermost_one() {
        assert_eq!(
            hoisted("todo --server h:1 token list"),
            "todo token list --server h:1"
        );
    }

    #[test]
    fn flags_after_the_subcommand_stay_where_they_are() {
        assert_eq!(
            hoisted("todo --server a lists --json"),
            "todo lists --server a --json"
        );
        assert_eq!(hoisted("todo lists --json"), "todo lists --json");
    }

    #[test]
    fn anything_else_before_the_subcommand_is_left_for_clap() {
        assert_eq!(hoisted("todo --help"), "todo --help");
        assert_eq!(hoisted("todo --verbose lists"), "todo --verbose lists");
        assert_eq!(hoisted("todo --json"), "todo --json");
    }
}
