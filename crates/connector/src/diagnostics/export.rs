//! "Export diagnostics": one zip a site can send to support, holding the status, the
//! configuration without its secrets, the local policy, the tail of the activity trail, recent
//! logs (the newest files of `DATA_DIR/logs/`, which every Uplink program writes through the
//! secret-redacting layer of `uplink-logs`) and a manifest of what was left out — and never the
//! credentials or secrets files.

use std::fs;
use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{Datelike, Timelike, Utc};
use serde_json::{Value, json};
use zip::CompressionMethod;
use zip::write::SimpleFileOptions;

use super::redact::{KnownSecrets, credential_secrets, redact_config};
use super::report::DiagnosticsExport;
use crate::activity::ACTIVITY_FILE;
use crate::config::{CONFIG_FILE, ConfigError, SECRETS_FILE, write_atomically};
use crate::credentials::CREDENTIALS_FILE;
use crate::kinds;
use crate::policy::POLICY_FILE;
use crate::runtime::STATUS_FILE;

/// At most this much of the end of the activity trail.
const ACTIVITY_TAIL_BYTES: u64 = 512 * 1024;
/// At most this much of the end of each log file.
const LOG_TAIL_BYTES: u64 = 1024 * 1024;
/// The newest log files taken.
const MAX_LOG_FILES: usize = 3;

/// Writes `uplink-diagnostics-<UTC time>.zip` into `out_dir` (created if needed; the file is
/// written whole or not at all, and readable by its owner only) from the connector's
/// `data_dir`, plus `extra` entries from the host (name, bytes; one named like a standard
/// entry, such as `status.json` with the live status, replaces it).
///
/// Every entry is scrubbed of each secret the data dir holds; `credentials.json` and the
/// secrets file are never included; `manifest.json` lists what was redacted.
///
/// ```
/// use uplink_connector::diagnostics::export_diagnostics;
///
/// let data = tempfile::tempdir().unwrap();
/// let out = data.path().join("diagnostics");
/// let export = export_diagnostics(data.path(), &out, &[("note.txt", b"hello".to_vec())]).unwrap();
/// assert!(export.path.ends_with(".zip"));
/// assert!(export.bytes > 0);
/// ```
///
/// # Errors
/// [`ConfigError::Io`] when the archive cannot be written.
pub fn export_diagnostics(
    data_dir: &Path,
    out_dir: &Path,
    extra: &[(&str, Vec<u8>)],
) -> Result<DiagnosticsExport, ConfigError> {
    let now = Utc::now();
    let mut secrets = KnownSecrets::default();
    let mut redacted: Vec<String> = vec![
        format!("{CREDENTIALS_FILE}: not included (the hub credential or refresh token)"),
        format!("{SECRETS_FILE}: not included (secret data source settings)"),
    ];
    let mut notes: Vec<String> = Vec::new();
    gather_secrets(data_dir, &mut secrets, &mut notes);

    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    match read_optional(&data_dir.join(STATUS_FILE)) {
        Some(bytes) => entries.push((STATUS_FILE.into(), bytes)),
        None => notes.push(format!("{STATUS_FILE}: not in the data dir")),
    }
    match read_optional(&data_dir.join(CONFIG_FILE)) {
        Some(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(mut config) => {
                let secret_fields = |kind: &str| {
                    kinds::schema(kind)
                        .ok()
                        .map(|s| s.secret_fields().map(str::to_owned).collect())
                };
                for field in redact_config(&mut config, &secret_fields, &mut secrets) {
                    redacted.push(format!("{CONFIG_FILE}: {field} removed"));
                }
                let pretty = serde_json::to_vec_pretty(&config).expect("JSON value serialises");
                entries.push((CONFIG_FILE.into(), pretty));
            }
            Err(_) => notes.push(format!(
                "{CONFIG_FILE}: not included, it is not readable JSON (so its secrets cannot be told apart)"
            )),
        },
        None => notes.push(format!(
            "{CONFIG_FILE}: not in the data dir (the built-in default configuration is in use)"
        )),
    }
    if let Some(bytes) = read_optional(&data_dir.join(POLICY_FILE)) {
        entries.push((POLICY_FILE.into(), bytes));
    }
    if let Some(tail) = read_tail(&data_dir.join(ACTIVITY_FILE), ACTIVITY_TAIL_BYTES) {
        entries.push((ACTIVITY_FILE.into(), tail));
    }
    for log in recent_logs(data_dir) {
        if let (Some(tail), Some(name)) = (read_tail(&log, LOG_TAIL_BYTES), log.file_name()) {
            let name = format!("logs/{}", name.to_string_lossy());
            // Logs are written through the redacting layer already; a line from before it, or
            // from another program, is scrubbed of token-shaped text here all the same.
            let text = String::from_utf8_lossy(&tail);
            let scrubbed = uplink_logs::redact::scrub(&text);
            if scrubbed != text {
                redacted.push(format!("{name}: token-shaped text replaced by <redacted>"));
            }
            entries.push((name, scrubbed.into_owned().into_bytes()));
        }
    }
    for (name, bytes) in extra {
        let Some(name) = entry_name(name) else {
            notes.push(format!(
                "an extra entry named {name:?} was left out: not a plain relative name"
            ));
            continue;
        };
        entries.retain(|(existing, _)| *existing != name);
        entries.push((name, bytes.clone()));
    }

    // The last line of defence: no known secret leaves, whatever file it slipped into.
    for (name, bytes) in &mut entries {
        let (clean, count) = secrets.scrub(bytes);
        if count > 0 {
            redacted.push(format!(
                "{name}: {count} occurrence(s) of a secret replaced by ***"
            ));
            *bytes = clean;
        }
    }
    let manifest = json!({
        "product": "Uplink connector",
        "version": env!("CARGO_PKG_VERSION"),
        "platform": {
            "os": std::env::consts::OS,
            "arch": std::env::consts::ARCH,
            "family": std::env::consts::FAMILY,
        },
        "createdAt": now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "dataDir": data_dir.display().to_string(),
        "entries": entries.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        "redacted": redacted,
        "notes": notes,
    });
    let manifest = serde_json::to_vec_pretty(&manifest).expect("JSON value serialises");
    let (manifest, _) = secrets.scrub(&manifest);
    entries.insert(0, ("manifest.json".into(), manifest));

    let archive = zip_entries(&entries, now).map_err(|source| ConfigError::Io {
        action: "build the diagnostics archive for",
        path: out_dir.to_owned(),
        source,
    })?;
    fs::create_dir_all(out_dir).map_err(|source| ConfigError::Io {
        action: "create",
        path: out_dir.to_owned(),
        source,
    })?;
    let path = free_name(out_dir, &now.format("%Y%m%dT%H%M%SZ").to_string());
    write_atomically(&path, &archive, true)?;
    tracing::info!(path = %path.display(), bytes = archive.len(), "diagnostics exported");
    Ok(DiagnosticsExport {
        path: path.display().to_string(),
        bytes: archive.len() as u64,
    })
}

/// The secrets the data dir holds: the credential or refresh token, and secret settings.
fn gather_secrets(data_dir: &Path, secrets: &mut KnownSecrets, notes: &mut Vec<String>) {
    if let Some(bytes) = read_optional(&data_dir.join(CREDENTIALS_FILE)) {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(credentials) => credential_secrets(&credentials, secrets),
            Err(_) => notes.push(format!("{CREDENTIALS_FILE} is not readable JSON")),
        }
    }
    if let Some(bytes) = read_optional(&data_dir.join(SECRETS_FILE)) {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(values) => secrets.add_all(&values),
            Err(_) => notes.push(format!("{SECRETS_FILE} is not readable JSON")),
        }
    }
}

fn read_optional(path: &Path) -> Option<Vec<u8>> {
    fs::read(path).ok()
}

/// The last `max` bytes of a file, from the start of a line.
fn read_tail(path: &Path, max: u64) -> Option<Vec<u8>> {
    let mut file = fs::File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    let start = len.saturating_sub(max);
    file.seek(SeekFrom::Start(start)).ok()?;
    let mut bytes = Vec::with_capacity((len - start) as usize);
    file.read_to_end(&mut bytes).ok()?;
    if start > 0
        && let Some(newline) = bytes.iter().position(|b| *b == b'\n')
    {
        bytes.drain(..=newline);
    }
    Some(bytes)
}

/// The newest log files in the data dir and its `logs/` folder (`*.log`, `*.log.<date>`).
fn recent_logs(data_dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<(SystemTime, PathBuf)> = [data_dir.to_owned(), data_dir.join("logs")]
        .iter()
        .filter_map(|dir| fs::read_dir(dir).ok())
        .flatten()
        .flatten()
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            (name.ends_with(".log") || name.contains(".log."))
                && entry.file_type().map(|t| t.is_file()).unwrap_or(false)
        })
        .filter_map(|entry| {
            let modified = entry.metadata().ok()?.modified().ok()?;
            Some((modified, entry.path()))
        })
        .collect();
    logs.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
    logs.into_iter()
        .take(MAX_LOG_FILES)
        .map(|(_, p)| p)
        .collect()
}

/// A host's entry name, if it is a plain relative path.
fn entry_name(name: &str) -> Option<String> {
    let plain = !name.is_empty()
        && !name.starts_with('/')
        && !name.contains('\\')
        && name
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && name != "manifest.json"
        && name != CREDENTIALS_FILE
        && name != SECRETS_FILE;
    plain.then(|| name.to_owned())
}

/// `uplink-diagnostics-<stamp>.zip`, or with `-2`, `-3`… when one was already made this second.
fn free_name(out_dir: &Path, stamp: &str) -> PathBuf {
    let mut path = out_dir.join(format!("uplink-diagnostics-{stamp}.zip"));
    let mut n = 2;
    while path.exists() {
        path = out_dir.join(format!("uplink-diagnostics-{stamp}-{n}.zip"));
        n += 1;
    }
    path
}

fn zip_entries(
    entries: &[(String, Vec<u8>)],
    now: chrono::DateTime<Utc>,
) -> std::io::Result<Vec<u8>> {
    let mut options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .unix_permissions(0o600);
    if let Ok(time) = zip::DateTime::from_date_and_time(
        now.year().clamp(1980, 2107) as u16,
        now.month() as u8,
        now.day() as u8,
        now.hour() as u8,
        now.minute() as u8,
        now.second().min(58) as u8,
    ) {
        options = options.last_modified_time(time);
    }
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, bytes) in entries {
        writer
            .start_file(name.as_str(), options)
            .map_err(std::io::Error::other)?;
        writer.write_all(bytes)?;
    }
    Ok(writer.finish().map_err(std::io::Error::other)?.into_inner())
}
