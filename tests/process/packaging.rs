//! What a packager installs: `todo --version` with its commit, completions, the man page, and
//! `deploy/todo.service`, checked by `systemd-analyze` (which `.ci/run` installs).

use std::process::Command;

fn todo(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_todo"))
        .args(args)
        .output()
        .expect("the todo binary runs");
    assert!(
        output.status.success(),
        "todo {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

#[test]
fn the_version_names_the_commit_and_completions_and_the_man_page_cover_the_commands() {
    let version = todo(&["--version"]);
    let commit = version
        .trim()
        .strip_prefix(concat!("todo ", env!("CARGO_PKG_VERSION"), " ("))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{version:?}"));
    assert!(
        commit == "unknown" || commit.chars().all(|c| c.is_ascii_hexdigit()),
        "{commit}"
    );
    for shell in ["bash", "zsh", "fish"] {
        let script = todo(&["completions", shell]);
        for command in ["serve", "login", "backup", "watch"] {
            assert!(
                script.contains(command),
                "{shell} completions lack {command}"
            );
        }
    }
    let page = todo(&["man"]);
    assert!(page.contains(".TH todo 1"), "{page}");
    assert!(page.contains("serve"), "{page}");
}

#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/todo.service"))
        .expect("deploy/todo.service");
    // Verified against the binary under test, where the unit expects the installed one.
    let unit = unit.replace("/usr/local/bin/todo", env!("CARGO_BIN_EXE_todo"));
    let path = dir.path().join("todo.service");
    std::fs::write(&path, unit).unwrap();
    let verify = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze runs (.ci/run installs systemd)");
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let security = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--threshold=20"])
        .arg(&path)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&security.stdout);
    assert!(security.status.success(), "{report}");
    let exposure: f64 = report
        .lines()
        .find_map(|line| line.split("exposure level for todo.service: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|level| level.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in {report}"));
    println!("systemd-analyze security: exposure {exposure}");
    assert!(exposure <= 2.0, "exposure {exposure}: {report}");
}
