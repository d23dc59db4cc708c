//! Zone file watching with inotify (the `notify` crate): directories holding zone files are
//! watched, and after a short quiet period every changed file is re-parsed off the query
//! path and swapped in; a broken file keeps its old zone (logged with file:line).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use tokio_util::sync::CancellationToken;

use crate::error::DnsError;
use crate::server::Core;

/// Changes arriving within this window are handled as one reload.
const QUIET: Duration = Duration::from_millis(150);
/// How often the thread looks at the shutdown token.
const TICK: Duration = Duration::from_millis(500);

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
        .spawn(move || {
            loop {
                let mut dirty = match rx.recv_timeout(TICK) {
                    Ok(WatchMsg::Fs(event)) => relevant(&event),
                    Ok(WatchMsg::Resync) => {
                        sync_watches(&core, &mut watcher, &mut watched);
                        false
                    }
                    Err(RecvTimeoutError::Timeout) => false,
                    Err(RecvTimeoutError::Disconnected) => break,
                };
                if shutdown.is_cancelled() {
                    break;
                }
                if !dirty {
                    continue;
                }
                // Let the editor finish (write, rename, chmod) before reading.
                while let Ok(msg) = rx.recv_timeout(QUIET) {
                    if let WatchMsg::Fs(event) = msg {
                        dirty |= relevant(&event);
                    }
                }
                tracing::debug!("zone files changed, reloading");
                core.reload_files();
                sync_watches(&core, &mut watcher, &mut watched);
            }
        })
        .map_err(|source| DnsError::Io {
            path: PathBuf::from("dns-zone-watch thread"),
            source,
        })?;
    Ok(tx)
}

fn relevant(event: &notify::Result<Event>) -> bool {
    match event {
        Ok(event) => matches!(
            event.kind,
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) | EventKind::Any
        ),
        Err(e) => {
            tracing::warn!("zone watcher: {e}");
            false
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
