//! Zone file watching with inotify (the `notify` crate): directories holding zone files are
//! watched, and once every changed file has settled (no event, and the same size and
//! modification time, for `zone_settle_ms`) the zones are re-parsed off the query path and
//! swapped in; a broken file keeps its old zone (logged with file:line). A file written in
//! several steps is thus read when the writer is done, not half-way.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio_util::sync::CancellationToken;

use crate::error::DnsError;
use crate::server::Core;

/// How often the thread looks at the shutdown token.
const TICK: Duration = Duration::from_millis(500);
/// Files still changing after this long are read anyway (a log that keeps growing in the
/// zones directory must not stop reloads for good).
const MAX_SETTLE: Duration = Duration::from_secs(60);

/// Messages to the watcher thread.
pub(crate) enum WatchMsg {
    /// A file-system event.
    Fs(notify::Result<Event>),
    /// The configuration changed: watch the directories it needs now.
    Resync,
}

/// Starts the watcher thread; it stops when `shutdown` is cancelled.
pub(crate) fn spawn_watcher(
    core: Arc<Core>,
    shutdown: CancellationToken,
) -> Result<Sender<WatchMsg>, DnsError> {
    let (tx, rx) = channel();
    let fs_tx = tx.clone();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = fs_tx.send(WatchMsg::Fs(event));
    })?;
    let mut watched = HashSet::new();
    sync_watches(&core, &mut watcher, &mut watched);
    std::thread::Builder::new()
        .name("dns-zone-watch".into())
        .spawn(move || loop {
            let mut changed = HashSet::new();
            match rx.recv_timeout(TICK) {
                Ok(WatchMsg::Fs(event)) => note(&event, &mut changed),
                Ok(WatchMsg::Resync) => sync_watches(&core, &mut watcher, &mut watched),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if shutdown.is_cancelled() {
                break;
            }
            if changed.is_empty() {
                continue;
            }
            let interval = Duration::from_millis(core.inputs().config.zone_settle_ms);
            if !settle(&rx, &mut changed, interval, &shutdown) {
                break;
            }
            tracing::debug!(
                files = changed.len(),
                "zone files changed and settled, reloading"
            );
            core.reload_files();
            sync_watches(&core, &mut watcher, &mut watched);
        })
        .map_err(|source| DnsError::Io {
            path: PathBuf::from("dns-zone-watch thread"),
            source,
        })?;
    Ok(tx)
}

/// Adds the paths of a create, modify or remove event to `changed`.
fn note(event: &notify::Result<Event>, changed: &mut HashSet<PathBuf>) {
    match event {
        Ok(event)
            if matches!(
                event.kind,
                EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) | EventKind::Any
            ) =>
        {
            changed.extend(event.paths.iter().cloned());
        }
        Ok(_) => {}
        Err(e) => tracing::warn!("zone watcher: {e}"),
    }
}

/// Size and modification time of each file (`None`: missing).
fn stats(files: &HashSet<PathBuf>) -> HashMap<PathBuf, Option<(u64, SystemTime)>> {
    files
        .iter()
        .map(|f| {
            let stat = std::fs::metadata(f)
                .ok()
                .and_then(|m| Some((m.len(), m.modified().ok()?)));
            (f.clone(), stat)
        })
        .collect()
}

/// Waits until, for a whole `interval`, no event arrived and no changed file's size or
/// modification time moved (at most [`MAX_SETTLE`]); false if the watcher is shutting down.
/// Configuration resyncs arriving meanwhile are covered by the resync after the reload.
fn settle(
    rx: &Receiver<WatchMsg>,
    changed: &mut HashSet<PathBuf>,
    interval: Duration,
    shutdown: &CancellationToken,
) -> bool {
    let started = Instant::now();
    let mut before = stats(changed);
    loop {
        if shutdown.is_cancelled() {
            return false;
        }
        if started.elapsed() > MAX_SETTLE {
            tracing::warn!("zone files still changing after {MAX_SETTLE:?}; reading them anyway");
            return true;
        }
        match rx.recv_timeout(interval) {
            Ok(WatchMsg::Fs(event)) => {
                note(&event, changed);
                before = stats(changed);
            }
            Ok(WatchMsg::Resync) => {}
            Err(RecvTimeoutError::Disconnected) => return false,
            Err(RecvTimeoutError::Timeout) => {
                let now = stats(changed);
                if now == before {
                    return true;
                }
                before = now;
            }
        }
    }
}

/// Watches the zones directory (recursively) and the directory of every file read outside it.
fn sync_watches(
    core: &Core,
    watcher: &mut RecommendedWatcher,
    watched: &mut HashSet<(PathBuf, bool)>,
) {
    let (zones_dir, files) = {
        let inputs = core.inputs();
        (inputs.zones_dir(), inputs.watched_files())
    };
    let mut wanted: HashSet<(PathBuf, bool)> = HashSet::new();
    wanted.insert((zones_dir.clone(), true));
    for file in files {
        if !file.starts_with(&zones_dir) {
            if let Some(dir) = file.parent() {
                wanted.insert((dir.to_path_buf(), false));
            }
        }
    }
    for (dir, recursive) in watched.difference(&wanted) {
        let _ = watcher.unwatch(dir);
        tracing::debug!(dir = %dir.display(), recursive, "no longer watching");
    }
    for (dir, recursive) in wanted.difference(watched) {
        let mode = if *recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        if let Err(e) = watcher.watch(Path::new(dir), mode) {
            tracing::warn!(dir = %dir.display(), "cannot watch zone directory: {e}");
        }
    }
    *watched = wanted;
}
