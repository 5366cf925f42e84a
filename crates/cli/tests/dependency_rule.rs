//! The dependency rule, checked: every crate row of ARCHITECTURE.md's code map names what that
//! crate must not depend on, and this test reads the real graph (`cargo metadata`) and fails on
//! any forbidden edge, direct or through other crates. A crate's own tests and benchmarks count
//! too (its dev-dependencies, and what they depend on): a test that needs a forbidden crate
//! belongs where that edge is allowed (the connector ↔ hub end-to-end tests live in
//! `crates/cli/tests/connector_hub/`). And a crate the code map calls "dev-dependency only" (the
//! test kit, fault injection, benchmark timing) is never a normal or build dependency.
//!
//! The column is prose for people; the words it may use are the ones [`forbidden_crates`] knows,
//! so a new word there fails here until it means something checkable. A clause "its tests may
//! use A and B" lets the crate's own tests and benchmarks use those crates of ours
//! ([`tests_may_use`]).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/cli sits two levels below the workspace root")
        .to_path_buf()
}

/// One crate row of the code map: its path (`crates/hub`) and its "must not depend on" cell.
fn code_map_rows(architecture: &str) -> Vec<(String, String)> {
    architecture
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().strip_prefix('|')?.split('|').collect();
            let path = cells.first()?.trim().strip_prefix("`crates/")?;
            let path = format!("crates/{}", path.split('`').next()?);
            // The last cell is the column; the line ends with '|', so it is the one before.
            let forbidden = cells.iter().rev().nth(1)?.trim().to_owned();
            Some((path, forbidden))
        })
        .collect()
}

/// The crates a word of the column stands for; `None` for a word this test does not know.
fn forbidden_crates(word: &str, ours: &BTreeSet<String>, this: &str) -> Option<Vec<String>> {
    let word = word.split('(').next().unwrap_or(word).trim().to_lowercase();
    let names: Vec<String> = match word.as_str() {
        "" | "—" | "-" => Vec::new(),
        "anything else of ours" => ours.iter().filter(|n| *n != this).cloned().collect(),
        "any async runtime" => vec!["tokio".into(), "async-std".into(), "smol".into()],
        "tauri" => vec![
            "tauri".into(),
            "tauri-runtime".into(),
            "tauri-runtime-wry".into(),
        ],
        "gtk" => vec!["gtk".into(), "gtk-sys".into(), "gdk".into()],
        "webkit" => vec!["webkit2gtk".into(), "webkit2gtk-sys".into(), "wry".into()],
        "rusqlite" => vec!["rusqlite".into()],
        ours_short => {
            let name = format!("uplink-{ours_short}");
            if !ours.contains(&name) {
                return None;
            }
            vec![name]
        }
    };
    Some(names)
}

fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = Command::new(rustc)
        .arg("-vV")
        .output()
        .expect("rustc -vV runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .to_owned()
}

struct Graph {
    /// Package id → name.
    names: HashMap<String, String>,
    /// Package id → its normal (non-dev, non-build) dependencies' ids.
    normal_deps: HashMap<String, Vec<String>>,
    /// Package id → its dev-dependencies' ids.
    dev_deps: HashMap<String, Vec<String>>,
    /// Package id → its normal and build dependencies' ids (what ships with it).
    shipped_deps: HashMap<String, Vec<String>>,
    /// Workspace member manifest folder (relative to the root) → package id.
    members_by_path: HashMap<String, String>,
}

fn cargo_metadata(root: &Path) -> Graph {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // This machine's graph only: other platforms' crates need not be downloaded to check it.
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--offline"])
        .args(["--filter-platform", &host_triple(), "--manifest-path"])
        .arg(root.join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata is JSON");
    let mut names = HashMap::new();
    let mut members_by_path = HashMap::new();
    let members: BTreeSet<&str> = metadata["workspace_members"]
        .as_array()
        .expect("workspace_members")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for package in metadata["packages"].as_array().expect("packages") {
        let id = package["id"].as_str().expect("package id").to_owned();
        names.insert(
            id.clone(),
            package["name"].as_str().expect("name").to_owned(),
        );
        if members.contains(id.as_str()) {
            let manifest = Path::new(package["manifest_path"].as_str().expect("manifest_path"));
            let folder = manifest.parent().expect("manifest folder");
            if let Ok(relative) = folder.strip_prefix(root) {
                members_by_path.insert(relative.to_string_lossy().into_owned(), id);
            }
        }
    }
    let mut normal_deps = HashMap::new();
    let mut dev_deps = HashMap::new();
    let mut shipped_deps = HashMap::new();
    for node in metadata["resolve"]["nodes"].as_array().expect("resolve") {
        let id = node["id"].as_str().expect("node id").to_owned();
        let deps = node["deps"].as_array().expect("deps");
        let of_kind = |wanted: &dyn Fn(&Value) -> bool| -> Vec<String> {
            deps.iter()
                .filter(|dep| {
                    dep["dep_kinds"]
                        .as_array()
                        .is_some_and(|kinds| kinds.iter().any(|k| wanted(&k["kind"])))
                })
                .map(|dep| dep["pkg"].as_str().expect("dep pkg").to_owned())
                .filter(|pkg| *pkg != id)
                .collect()
        };
        let (normal, dev, shipped) = (
            of_kind(&|kind| kind.is_null()),
            of_kind(&|kind| kind == "dev"),
            of_kind(&|kind| kind != "dev"),
        );
        normal_deps.insert(id.clone(), normal);
        dev_deps.insert(id.clone(), dev);
        shipped_deps.insert(id, shipped);
    }
    Graph {
        names,
        normal_deps,
        dev_deps,
        shipped_deps,
        members_by_path,
    }
}

impl Graph {
    /// Every crate `id` depends on through normal dependencies, and through its own
    /// dev-dependencies (its tests and benchmarks) other than those `allowed_in_tests`, with
    /// the path that reaches it.
    fn reachable(
        &self,
        id: &str,
        allowed_in_tests: &BTreeSet<String>,
    ) -> HashMap<String, Vec<String>> {
        let mut seen: HashMap<String, Vec<String>> = HashMap::new();
        let root = vec![self.names[id].clone()];
        let mut stack: Vec<(String, Vec<String>)> = Vec::new();
        for (dep, label) in self.normal_deps[id].iter().map(|d| (d, "")).chain(
            self.dev_deps[id]
                .iter()
                .filter(|d| !allowed_in_tests.contains(&self.names[*d]))
                .map(|d| (d, " (dev)")),
        ) {
            let name = &self.names[dep];
            if seen.contains_key(name) {
                continue;
            }
            let mut path = root.clone();
            path.push(format!("{name}{label}"));
            seen.insert(name.clone(), path.clone());
            stack.push((dep.clone(), path));
        }
        while let Some((at, path)) = stack.pop() {
            for dep in self.normal_deps.get(&at).into_iter().flatten() {
                let name = &self.names[dep];
                if seen.contains_key(name) {
                    continue;
                }
                let mut next = path.clone();
                next.push(name.clone());
                seen.insert(name.clone(), next.clone());
                stack.push((dep.clone(), next));
            }
        }
        seen
    }
}

/// A column without its "its tests may use A and B" clause, and the crates that clause lets the
/// row's own tests and benchmarks use (as dev-dependencies; their own rows govern the rest).
fn tests_may_use(column: &str) -> (String, BTreeSet<String>) {
    const CLAUSE: &str = "its tests may use ";
    let mut kept = Vec::new();
    let mut allowed = BTreeSet::new();
    for part in column.split(';') {
        match part.trim().strip_prefix(CLAUSE) {
            Some(names) => allowed.extend(
                names
                    .split(" and ")
                    .map(|name| format!("uplink-{}", name.trim().trim_matches('`'))),
            ),
            None => kept.push(part),
        }
    }
    (kept.join(";"), allowed)
}

/// The code map rows whose crate is a dev-dependency only (their description says so).
fn dev_only_rows(architecture: &str) -> Vec<String> {
    architecture
        .lines()
        .filter(|line| line.to_lowercase().contains("dev-dependency only"))
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().strip_prefix('|')?.split('|').collect();
            let path = cells.first()?.trim().strip_prefix("`crates/")?;
            Some(format!("crates/{}", path.split('`').next()?))
        })
        .collect()
}

#[test]
fn no_crate_depends_on_what_architecture_md_forbids() {
    let root = workspace_root();
    let architecture =
        std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let rows = code_map_rows(&architecture);
    assert!(
        rows.len() >= 8,
        "the code map's crate rows were not found in ARCHITECTURE.md (found {rows:?})"
    );
    let graph = cargo_metadata(&root);
    let ours: BTreeSet<String> = graph
        .members_by_path
        .values()
        .map(|id| graph.names[id].clone())
        .collect();

    let mut violations = Vec::new();
    for (path, column) in &rows {
        let id = graph.members_by_path.get(path).unwrap_or_else(|| {
            panic!("ARCHITECTURE.md lists {path}, which is not a workspace member")
        });
        let this = &graph.names[id];
        let (column, allowed_in_tests) = tests_may_use(column);
        for name in &allowed_in_tests {
            assert!(
                ours.contains(name),
                "ARCHITECTURE.md lets the tests of {path} use {name}, not a crate of ours"
            );
        }
        let reachable = graph.reachable(id, &allowed_in_tests);
        for word in column.split([',', ';']) {
            let forbidden = forbidden_crates(word, &ours, this).unwrap_or_else(|| {
                panic!(
                    "ARCHITECTURE.md says {path} must not depend on '{}', a word this test \
                     cannot check: name a crate of ours, Tauri, GTK, WebKit, rusqlite, \
                     'anything else of ours' or 'any async runtime'",
                    word.trim()
                )
            });
            for name in forbidden {
                if let Some(chain) = reachable.get(&name) {
                    violations.push(format!(
                        "{path} must not depend on {} but does: {}",
                        word.trim(),
                        chain.join(" → ")
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "forbidden dependencies:\n{}",
        violations.join("\n")
    );
}

#[test]
fn dev_only_crates_are_never_shipped_with_another() {
    let root = workspace_root();
    let architecture =
        std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let dev_only = dev_only_rows(&architecture);
    assert!(
        dev_only.iter().any(|p| p == "crates/testkit"),
        "the code map names the test kit a dev-dependency only (found {dev_only:?})"
    );
    let graph = cargo_metadata(&root);
    let dev_only: BTreeSet<&String> = dev_only
        .iter()
        .map(|path| {
            let id = graph.members_by_path.get(path).unwrap_or_else(|| {
                panic!("ARCHITECTURE.md lists {path}, which is not a workspace member")
            });
            &graph.names[id]
        })
        .collect();
    let mut violations = Vec::new();
    for id in graph.members_by_path.values() {
        for dep in &graph.shipped_deps[id] {
            if dev_only.contains(&graph.names[dep]) {
                violations.push(format!(
                    "{} depends on {}, a dev-dependency only, outside its tests",
                    graph.names[id], graph.names[dep]
                ));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_code_map_parser_reads_each_crate_row() {
    let rows = code_map_rows(
        "| Path | What it is | Must not depend on |\n\
         |---|---|---|\n\
         | `crates/model` | The model. | anything else of ours; any async runtime |\n\
         | `ui/` | The UI. | remote content |\n\
         | `crates/hub` | The hub, with a | pipe? no. | connector, Tauri |\n",
    );
    assert_eq!(
        rows,
        vec![
            (
                "crates/model".to_owned(),
                "anything else of ours; any async runtime".to_owned()
            ),
            ("crates/hub".to_owned(), "connector, Tauri".to_owned()),
        ]
    );
    let ours: BTreeSet<String> = ["uplink-model", "uplink-hub", "uplink-connector"]
        .map(String::from)
        .into();
    assert_eq!(
        forbidden_crates("connector", &ours, "uplink-hub"),
        Some(vec!["uplink-connector".to_owned()])
    );
    assert_eq!(
        forbidden_crates(" rusqlite (sqlx only)", &ours, "uplink-hub"),
        Some(vec!["rusqlite".to_owned()])
    );
    assert_eq!(
        forbidden_crates("remote content", &ours, "uplink-hub"),
        None
    );
    assert_eq!(
        tests_may_use("anything else of ours; its tests may use tls and measure"),
        (
            "anything else of ours".to_owned(),
            ["uplink-measure", "uplink-tls"].map(String::from).into()
        )
    );
    assert_eq!(
        dev_only_rows(
            "| `crates/measure` | Timing. Dev-dependency only. | — |\n\
             | `crates/hub` | The hub. | connector |\n\
             | `crates/faults` | Faults (dev-dependency only). | hub |\n"
        ),
        vec!["crates/measure".to_owned(), "crates/faults".to_owned()]
    );
}
