//! Which `uplink hub serve` processes serve a data folder: one file per process under
//! `DATA_DIR/serving/`, named by its PID, saying whether it joined a backplane. Several
//! processes may serve one folder only as replicas of one cluster (each with `--backplane`):
//! two lone hubs on one folder would each hold some connectors' links and answer the others'
//! queries with "offline".

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

const FOLDER: &str = "serving";
const CLUSTERED: &str = "backplane\n";
const ALONE: &str = "alone\n";

/// This process's mark; removed when dropped (a killed process's mark is ignored, its PID
/// no longer running).
#[derive(Debug)]
pub struct ServingMark {
    path: PathBuf,
}

impl Drop for ServingMark {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Marks `data_dir` as served by this process, `clustered` when it joins a backplane; refuses
/// when another running hub serves it and either of the two serves alone.
pub fn claim(data_dir: &Path, clustered: bool) -> anyhow::Result<ServingMark> {
    let folder = data_dir.join(FOLDER);
    std::fs::create_dir_all(&folder)
        .with_context(|| format!("cannot create {}", folder.display()))?;
    let me = std::process::id();
    for entry in std::fs::read_dir(&folder)? {
        let entry = entry?;
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        if !serves_a_hub(pid) {
            let _ = std::fs::remove_file(entry.path());
            continue;
        }
        let other_clustered = std::fs::read_to_string(entry.path()).is_ok_and(|s| s == CLUSTERED);
        if !(clustered && other_clustered) {
            bail!(
                "another hub (process {pid}) already serves {}; several hubs may serve one data folder only as replicas of one cluster, each with --backplane (docs/cluster.md)",
                data_dir.display()
            );
        }
    }
    let path = folder.join(me.to_string());
    uplink_files::write_atomically(
        &path,
        if clustered { CLUSTERED } else { ALONE }.as_bytes(),
        uplink_files::Access::owner_only(false),
    )
    .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(ServingMark { path })
}

/// Whether `pid` is a live `uplink hub` process: not gone, not a zombie awaiting its parent,
/// and not another program that was given the PID of a hub that died.
fn serves_a_hub(pid: u32) -> bool {
    if !uplink_files::process_is_running(pid) {
        return false;
    }
    let proc = Path::new("/proc").join(pid.to_string());
    let zombie = std::fs::read_to_string(proc.join("stat")).is_ok_and(|stat| {
        // The state follows the command name in parentheses, which may itself hold spaces.
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    });
    let a_hub = std::fs::read(proc.join("cmdline"))
        .map(|cmdline| cmdline.split(|b| *b == 0).any(|arg| arg == b"hub"))
        // Where the system does not say, count it as a hub: never share a folder by mistake.
        .unwrap_or(true);
    !zombie && a_hub
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark_of(dir: &Path, pid: u32, what: &str) {
        std::fs::create_dir_all(dir.join(FOLDER)).unwrap();
        std::fs::write(dir.join(FOLDER).join(pid.to_string()), what).unwrap();
    }

    /// Another running process whose command line names `hub`, as a serving hub's does.
    struct OtherHub(std::process::Child);

    impl OtherHub {
        fn start() -> Self {
            // `hub` is the shell's $0, so it is on the command line. Two commands, so the
            // shell waits for `sleep` rather than becoming it (and losing `hub`).
            let child = std::process::Command::new("sh")
                .args(["-c", "sleep 30; exit 0", "hub"])
                .spawn()
                .unwrap();
            // Until the fork has exec'd the shell, its command line is still this test's.
            let cmdline = format!("/proc/{}/cmdline", child.id());
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while !std::fs::read(&cmdline)
                .is_ok_and(|line| line.split(|b| *b == 0).any(|arg| arg == b"hub"))
            {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the stand-in hub never ran"
                );
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Self(child)
        }

        fn pid(&self) -> u32 {
            self.0.id()
        }
    }

    impl Drop for OtherHub {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn replicas_share_a_folder_only_when_all_joined_a_backplane() {
        let dir = tempfile::tempdir().unwrap();
        let other = OtherHub::start();
        mark_of(dir.path(), other.pid(), CLUSTERED);
        let mark = claim(dir.path(), true).expect("a second replica of the cluster");
        let refused = claim(dir.path(), false).unwrap_err().to_string();
        assert!(refused.contains("--backplane"), "{refused}");
        drop(mark);
        assert!(
            !dir.path()
                .join(FOLDER)
                .join(std::process::id().to_string())
                .exists()
        );

        mark_of(dir.path(), other.pid(), ALONE);
        assert!(claim(dir.path(), true).is_err(), "a lone hub serves it");
    }

    #[test]
    fn a_dead_hubs_mark_is_swept() {
        let dir = tempfile::tempdir().unwrap();
        // PIDs are below 2^22 on Linux.
        mark_of(dir.path(), 4_194_999, ALONE);
        let _mark = claim(dir.path(), false).expect("the dead hub's mark does not count");
        assert!(!dir.path().join(FOLDER).join("4194999").exists());
    }

    #[test]
    fn a_killed_hub_not_yet_reaped_and_a_reused_pid_do_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let mut zombie = OtherHub::start();
        zombie.0.kill().unwrap();
        // Killed but not waited for: a zombie until its parent reaps it.
        while std::fs::read_to_string(format!("/proc/{}/stat", zombie.pid()))
            .is_ok_and(|s| !s.rsplit_once(')').unwrap().1.trim_start().starts_with('Z'))
        {
            std::thread::yield_now();
        }
        mark_of(dir.path(), zombie.pid(), ALONE);
        // This test process runs, but it is no hub.
        mark_of(dir.path(), std::os::unix::process::parent_id(), ALONE);
        let _mark = claim(dir.path(), false).expect("neither is a hub serving the folder");
        let _ = zombie.0.wait();
    }
}
