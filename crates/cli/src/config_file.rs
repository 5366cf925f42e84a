//! `--config FILE`: the flags of `uplink hub serve` and `uplink connector run` kept in a TOML
//! file, one key per flag (`listen = "0.0.0.0:8443"`, `max-connectors = 5000`; `_` may stand for
//! `-`). A flag on the command line, or its environment variable, overrides the file's key.
//!
//! The file becomes command-line arguments before clap reads them, so a key is checked exactly
//! as its flag is, and every flag is a key without a second list to keep in step.
//! `uplink hub config check FILE` names the key and line of each problem.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::ArgAction;
use clap::error::ErrorKind;

/// The commands that take `--config`, as the words that name them.
const CONFIGURABLE: [&[&str]; 4] = [
    &["hub"],
    &["hub", "serve"],
    &["connector"],
    &["connector", "run"],
];

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyProblem {
    /// The key, when the problem is one key's.
    pub key: Option<String>,
    /// Its line, counting from 1.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.line, &self.key) {
            (Some(line), Some(key)) => write!(f, "line {line}: {key}: {}", self.message),
            (Some(line), None) => write!(f, "line {line}: {}", self.message),
            (None, Some(key)) => write!(f, "{key}: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

/// `argv` with the keys of the `--config` file it names turned into flags of the command it
/// runs, placed before the command's own flags; `argv` unchanged without `--config`.
///
/// # Errors
/// The file cannot be read or has problems (all of them, one per line), or `--config` was given
/// to a command that does not take it.
pub fn expand(argv: Vec<OsString>, root: &clap::Command) -> anyhow::Result<Vec<OsString>> {
    let Some(file) = config_path(&argv) else {
        return Ok(argv);
    };
    let (path, insert_at) = command_path(&argv, root);
    let words: Vec<&str> = path.iter().map(String::as_str).collect();
    if !CONFIGURABLE.contains(&words.as_slice()) {
        bail!("--config applies to `uplink hub serve` and `uplink connector run` only");
    }
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read the configuration file {}", file.display()))?;
    let mut target = find(root, &words);
    let mut extra: Vec<OsString> = Vec::new();
    if words == ["connector"] {
        // `uplink connector` runs by default; the file's keys are `run`'s.
        extra.push("run".into());
        target = find(root, &["connector", "run"]);
    }
    let name = if words == ["connector"] {
        "connector run".to_owned()
    } else {
        words.join(" ")
    };
    let (flags, problems) = flags_from(&text, &target, &name);
    if !problems.is_empty() {
        let listed: Vec<String> = problems.iter().map(ToString::to_string).collect();
        bail!(
            "the configuration file {} has problems:\n{}",
            file.display(),
            listed.join("\n")
        );
    }
    let given = &argv[insert_at..];
    for (long, values) in flags {
        let overridden = given.iter().any(|word| {
            let word = word.to_string_lossy();
            word == format!("--{long}") || word.starts_with(&format!("--{long}="))
        });
        let from_env = target
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()))
            .and_then(|a| a.get_env())
            .is_some_and(|name| std::env::var_os(name).is_some());
        if overridden || from_env {
            continue;
        }
        extra.extend(values);
    }
    let mut expanded = argv[..insert_at].to_vec();
    expanded.extend(extra);
    expanded.extend_from_slice(given);
    Ok(expanded)
}

/// Checks `text` as a configuration file of `uplink hub serve`: every problem, each with its key
/// and line where it has one.
pub fn check(text: &str, root: &clap::Command) -> Vec<KeyProblem> {
    let serve = find(root, &["hub", "serve"]);
    let (flags, mut problems) = flags_from(text, &serve, "hub serve");
    if problems.is_empty() {
        let mut argv: Vec<OsString> = vec!["serve".into()];
        argv.extend(flags.into_iter().flat_map(|(_, values)| values));
        if let Err(error) = serve.clone().try_get_matches_from(argv) {
            problems.push(KeyProblem {
                key: None,
                line: None,
                message: first_line(&error.to_string()),
            });
        }
    }
    problems
}

/// The `--config` value in `argv`, wherever it is.
fn config_path(argv: &[OsString]) -> Option<PathBuf> {
    let mut words = argv.iter().skip(1);
    while let Some(word) = words.next() {
        let text = word.to_string_lossy();
        if text == "--config" {
            return words.next().map(PathBuf::from);
        }
        if let Some(value) = text.strip_prefix("--config=") {
            return Some(PathBuf::from(value));
        }
    }
    None
}

/// The subcommand words in `argv` (`["hub", "serve"]`) and the index just after the last.
fn command_path(argv: &[OsString], root: &clap::Command) -> (Vec<String>, usize) {
    let mut current = root.clone();
    let mut path = Vec::new();
    let mut after = 1.min(argv.len());
    for (index, word) in argv.iter().enumerate().skip(1) {
        let word = word.to_string_lossy();
        if word.starts_with('-') {
            continue;
        }
        if let Some(sub) = current.find_subcommand(word.as_ref()).cloned() {
            path.push(word.into_owned());
            after = index + 1;
            current = sub;
        }
    }
    (path, after)
}

fn find(root: &clap::Command, words: &[&str]) -> clap::Command {
    // Built first, so that the global flags (`--log-level`, `--log-format`) are the
    // subcommand's too, and keys of the file.
    let mut current = root.clone();
    current.build();
    for word in words {
        current = current
            .find_subcommand(word)
            .cloned()
            .unwrap_or_else(|| panic!("no subcommand {word}"));
    }
    current.build();
    current
}

/// The file's keys as flags of `command`, in file order, and the problems met.
fn flags_from(
    text: &str,
    command: &clap::Command,
    name: &str,
) -> (Vec<(String, Vec<OsString>)>, Vec<KeyProblem>) {
    let table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(error) => {
            let line = error
                .span()
                .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
            let problem = KeyProblem {
                key: None,
                line,
                message: format!("not TOML: {}", first_line(error.message())),
            };
            return (Vec::new(), vec![problem]);
        }
    };
    let mut flags = Vec::new();
    let mut problems = Vec::new();
    for (key, value) in &table {
        let long = key.replace('_', "-");
        let problem = |message: String| KeyProblem {
            key: Some(key.clone()),
            line: line_of(text, key),
            message,
        };
        let Some(arg) = command
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()) && long != "config" && long != "help")
        else {
            problems.push(problem(format!(
                "not a setting of `uplink {name}` (its flags are its keys; see `uplink {name} --help`)"
            )));
            continue;
        };
        let switch = matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse);
        let values: Vec<String> = match value {
            toml::Value::Boolean(on) if switch => {
                if *on {
                    flags.push((long.clone(), vec![OsString::from(format!("--{long}"))]));
                }
                continue;
            }
            toml::Value::String(text) => vec![text.clone()],
            toml::Value::Integer(n) => vec![n.to_string()],
            toml::Value::Float(n) => vec![n.to_string()],
            toml::Value::Boolean(b) => vec![b.to_string()],
            toml::Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    toml::Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .collect(),
            other => {
                problems.push(problem(format!(
                    "a {} cannot be a flag's value",
                    other.type_str()
                )));
                continue;
            }
        };
        // Each key alone, as its flag: a value its flag would refuse is this key's problem;
        // rules between flags (one requires another) are checked on the whole file after.
        let mut alone: Vec<OsString> = vec![command.get_name().into()];
        for value in &values {
            alone.push(format!("--{long}").into());
            alone.push(value.into());
        }
        if let Err(error) = command.clone().try_get_matches_from(alone)
            && matches!(
                error.kind(),
                ErrorKind::InvalidValue | ErrorKind::ValueValidation | ErrorKind::ArgumentConflict
            )
        {
            problems.push(problem(first_line(&error.to_string())));
            continue;
        }
        let mut words = Vec::new();
        for value in values {
            words.push(OsString::from(format!("--{long}")));
            words.push(OsString::from(value));
        }
        flags.push((long, words));
    }
    (flags, problems)
}

/// The line a top-level key is set on.
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            let rest = line
                .strip_prefix(key)
                .or_else(|| line.strip_prefix(&format!("\"{key}\"")))
                .or_else(|| line.strip_prefix(&format!("'{key}'")));
            rest.is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|index| index + 1)
}

fn first_line(text: &str) -> String {
    text.lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .to_owned()
}

/// Reads and checks `path` for `uplink hub config check`.
pub fn check_file(path: &Path, root: &clap::Command) -> anyhow::Result<Vec<KeyProblem>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
    Ok(check(&text, root))
}
