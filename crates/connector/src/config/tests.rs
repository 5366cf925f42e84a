use serde_json::json;

use super::*;

fn source(name: &str, kind: &str, settings: serde_json::Value) -> SourceConfig {
    SourceConfig {
        name: name.into(),
        kind: kind.into(),
        description: String::new(),
        settings: settings.as_object().cloned().unwrap_or_default(),
    }
}

#[test]
fn a_fresh_data_dir_has_the_simulated_default() {
    let dir = tempfile::tempdir().unwrap();
    let config = ConfigStore::new(dir.path()).load().unwrap();
    assert_eq!(config.version, CONFIG_VERSION);
    assert_eq!(config.sources.len(), 1);
    assert_eq!(config.sources[0].kind, "simulated");
    assert_eq!(config.sources[0].settings["sampleInterval"], "1s");
    assert!(
        !dir.path().join(CONFIG_FILE).exists(),
        "loading never writes"
    );
}

#[test]
fn saved_configuration_reads_back_and_leaves_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = ConfigStore::new(dir.path().join("nested"));
    let mut config = ConnectorConfig::default();
    config
        .add_source(source(
            "fast",
            "simulated",
            json!({"sampleInterval": "100ms", "seed": "3"}),
        ))
        .unwrap();
    store.save(&config).unwrap();
    assert_eq!(store.load().unwrap(), config);
    let names: Vec<String> = fs::read_dir(dir.path().join("nested"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [CONFIG_FILE]);
    let text = fs::read_to_string(store.path()).unwrap();
    assert!(text.contains("\"version\": 1"), "{text}");
}

#[test]
fn a_config_truncated_mid_write_is_reported_and_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let store = ConfigStore::new(dir.path());
    let mut config = ConnectorConfig::default();
    config.settings.display_name = Some("Line 1".into());
    store.save(&config).unwrap();
    let full = fs::read(store.path()).unwrap();
    fs::write(store.path(), &full[..full.len() / 2]).unwrap();

    let err = store.load().unwrap_err();
    assert_eq!(err.code(), "config_corrupt");
    let ConfigError::Corrupt {
        moved_to, reason, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert!(reason.contains("EOF"), "{reason}");
    assert_eq!(
        fs::read(moved_to).unwrap(),
        &full[..full.len() / 2],
        "the bad file is kept"
    );
    assert!(!store.path().exists());
    assert!(err.to_string().contains("moved to"), "{err}");

    // The connector carries on with the default, and saving does not touch the moved file.
    let (recovered, problem) = store.load_or_recover().unwrap();
    assert!(problem.is_none(), "already moved aside");
    store.save(&recovered).unwrap();
    assert!(moved_to.exists());
}

#[test]
fn load_or_recover_reports_corruption_and_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = ConfigStore::new(dir.path());
    fs::write(
        store.path(),
        b"{\"version\": 1, \"sources\": [{\"name\": 5}]}",
    )
    .unwrap();
    let (config, problem) = store.load_or_recover().unwrap();
    assert_eq!(config, ConnectorConfig::default());
    assert_eq!(problem.unwrap().code(), "config_corrupt");
}

#[test]
fn a_newer_format_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = ConfigStore::new(dir.path());
    fs::write(store.path(), b"{\"version\": 99, \"future\": true}").unwrap();
    let err = store.load().unwrap_err();
    assert_eq!(err.code(), "config_newer_version");
    assert!(store.path().exists(), "never moved or overwritten");
}

#[test]
fn adding_checks_names_kinds_and_fields() {
    let mut config = ConnectorConfig::default();
    let err = config
        .add_source(source("simulated", "simulated", json!({})))
        .unwrap_err();
    assert_eq!(err.field_errors()[0].field, "name");
    assert!(err.to_string().contains("already exists"), "{err}");

    let err = config
        .add_source(source(
            "bad name!",
            "simulated",
            json!({"seed": -1, "period": "0s"}),
        ))
        .unwrap_err();
    let fields: Vec<&str> = err
        .field_errors()
        .iter()
        .map(|e| e.field.as_str())
        .collect();
    assert_eq!(fields, ["name", "seed", "period"]);

    let err = config
        .add_source(source("x", "historian9000", json!({})))
        .unwrap_err();
    assert_eq!(err.code(), "unknown_kind");
    assert!(
        err.to_string().contains("known: simulated, csv, sqlite"),
        "{err}"
    );

    let err = config
        .add_source(source("x", "csv", json!({})))
        .unwrap_err();
    assert_eq!(err.field_errors()[0].field, "path");
    assert_eq!(err.field_errors()[0].message, "is required");
}

#[test]
fn removing_an_unknown_source_names_it() {
    let mut config = ConnectorConfig::default();
    let err = config.remove_source("nope").unwrap_err();
    assert_eq!(err.to_string(), "no data source named 'nope' is configured");
    assert_eq!(config.remove_source("simulated").unwrap().kind, "simulated");
    assert!(config.sources.is_empty());
}

#[test]
fn secret_settings_are_split_out_and_written_owner_only() {
    let mut config = ConnectorConfig::default();
    config.sources[0]
        .settings
        .insert("password".into(), json!("hunter2"));
    let secrets = split_secrets(&mut config, &|kind| {
        if kind == "simulated" {
            vec!["password".into()]
        } else {
            vec![]
        }
    });
    assert_eq!(secrets["simulated"]["password"], "hunter2");
    assert!(!serde_json::to_string(&config).unwrap().contains("hunter2"));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(SECRETS_FILE);
    write_atomically(&path, b"{}", true).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_save_clears_what_a_killed_save_left_behind_but_not_a_running_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = ConfigStore::new(dir.path());
    // No process has this id (Linux's highest is 2²²); process 1 always runs.
    let abandoned = dir.path().join(format!(".{CONFIG_FILE}.tmp-4000000000"));
    let in_progress = dir.path().join(format!(".{CONFIG_FILE}.tmp-1"));
    let unrelated = dir.path().join(".other.json.tmp-4000000000");
    for file in [&abandoned, &in_progress, &unrelated] {
        fs::write(file, b"{\"version\":").unwrap();
    }
    store.save(&ConnectorConfig::default()).unwrap();
    assert!(!abandoned.exists(), "a dead process's temp file is removed");
    assert!(
        in_progress.exists(),
        "a running process's save is left alone"
    );
    assert!(
        unrelated.exists(),
        "other files' temp files are theirs to clear"
    );
    assert_eq!(store.load().unwrap(), ConnectorConfig::default());
}

#[test]
fn a_renamed_source_keeps_its_place_and_stable_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = ConfigStore::new(dir.path());
    let mut config = ConnectorConfig::default();
    config
        .add_source(source("line-1", "simulated", json!({})))
        .unwrap();
    config
        .add_source(source("line-2", "simulated", json!({})))
        .unwrap();
    let key = config.source_key("line-1");
    assert!(key.starts_with("s_"), "{key}");
    assert_ne!(
        key,
        config.source_key("line-2"),
        "each source has its own key"
    );
    store.save(&config).unwrap();

    let mut config = store.load().unwrap();
    assert_eq!(config.source_key("line-1"), key, "the key is kept on disk");
    let (old, new) = config
        .replace_source("line-1", source("press-1", "simulated", json!({})))
        .unwrap();
    assert_eq!(
        (old.name.as_str(), new.name.as_str()),
        ("line-1", "press-1")
    );
    let names: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["simulated", "press-1", "line-2"],
        "same place in the list"
    );
    assert_eq!(
        config.source_key("press-1"),
        key,
        "the key follows the rename"
    );
    assert!(!config.source_keys.contains_key("line-1"));

    // A refused edit changes nothing.
    let before = config.clone();
    assert!(
        config
            .replace_source("press-1", source("line-2", "simulated", json!({})))
            .is_err()
    );
    assert_eq!(config, before);

    // A source from before keys were kept is known by a key made from its name, which it
    // keeps when renamed; a new source under a removed one's name gets a new key.
    let legacy = config.source_key("simulated");
    assert_eq!(legacy, "name:simulated");
    config
        .replace_source("simulated", source("demo", "simulated", json!({})))
        .unwrap();
    assert_eq!(config.source_key("demo"), legacy);
    config.remove_source("press-1").unwrap();
    config
        .add_source(source("press-1", "simulated", json!({})))
        .unwrap();
    assert_ne!(config.source_key("press-1"), key);
}
