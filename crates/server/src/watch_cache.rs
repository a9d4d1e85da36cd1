//! The recent changes of the object store, read from the store once for every watch (as
//! kube-apiserver's watch cache does): a hundred watches cost one store read per batch of
//! writes, not a hundred, which matters most on etcd, where a read is a network round trip.
//!
//! One task follows the store: woken by every new revision ([`Shared::publish`]), it reads
//! the changes after the newest it holds and keeps the last [`CAPACITY`], each with its
//! watch line already serialised. A watch reads from here while its position is within the
//! cache; one that starts further back reads the store until it catches up.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use axum::body::Bytes;

use crate::kinds::ObjectKey;
use crate::objects::Filter;
use crate::{ObjectsError, Shared};

/// Changes kept: enough for the watches' bursts (an apply of a large estate); older ones
/// are read from the store.
const CAPACITY: usize = 8_192;

/// Changes read from the store at once.
const BATCH: usize = 500;

/// One change, as every watch sends it.
#[derive(Debug)]
struct Cached {
    revision: u64,
    key: ObjectKey,
    line: Bytes,
}

/// The changes after revision `from`, up to revision `head`.
#[derive(Debug, Default)]
struct Ring {
    changes: VecDeque<Cached>,
    from: u64,
    head: u64,
}

/// What a watch reads from the cache.
#[derive(Debug)]
pub struct Read {
    /// The lines of the changes its filter covers.
    pub lines: Vec<Bytes>,
    /// The revision read up to: the watch continues from there.
    pub read_to: u64,
}

/// The recent changes, shared by every watch.
#[derive(Debug)]
pub struct WatchCache {
    ring: RwLock<Ring>,
    /// The revision the cache holds changes up to; watches wait on it.
    head: tokio::sync::watch::Sender<u64>,
    /// Whether the task that follows the store runs.
    following: AtomicBool,
}

impl Default for WatchCache {
    fn default() -> Self {
        Self {
            ring: RwLock::new(Ring::default()),
            head: tokio::sync::watch::Sender::new(0),
            following: AtomicBool::new(false),
        }
    }
}

impl WatchCache {
    /// The changes after `after` that `filter` covers, from at most `limit` changes read;
    /// `None` when the cache does not reach back to `after` (read the store instead).
    pub fn read(&self, after: u64, filter: &Filter, limit: usize) -> Option<Read> {
        let ring = self.ring.read().ok()?;
        if after < ring.from || ring.head == 0 {
            return None;
        }
        let start = ring.changes.partition_point(|c| c.revision <= after);
        let scanned = ring.changes.range(start..).take(limit);
        let mut read_to = after.max(ring.head);
        let mut lines = Vec::new();
        let mut count = 0;
        for c in scanned {
            count += 1;
            if filter.matches(&c.key) {
                lines.push(c.line.clone());
            }
            if count == limit {
                read_to = c.revision;
            }
        }
        Some(Read { lines, read_to })
    }

    /// A receiver of the revision the cache is read up to.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.head.subscribe()
    }

    /// Wakes every watch (the service is stopping).
    pub fn wake_all(&self) {
        self.head.send_modify(|_| {});
    }

    /// Starts the task that follows the store, once. Call within a Tokio runtime.
    pub fn follow(shared: &Arc<Shared>) {
        if shared.watch_cache.following.swap(true, Ordering::SeqCst) {
            return;
        }
        let (shared, written) = (Arc::downgrade(shared), shared.revisions.subscribe());
        tokio::spawn(async move { run(&shared, written).await });
    }

    /// Adds the changes read after the newest held, up to `read_to`.
    fn push(&self, changes: Vec<crate::objects::Change>, read_to: u64) {
        let Ok(mut ring) = self.ring.write() else {
            return;
        };
        for c in changes {
            let line = crate::api::line(c.kind.as_str(), &c.object);
            ring.changes.push_back(Cached {
                revision: c.revision,
                key: c.key,
                line,
            });
        }
        while ring.changes.len() > CAPACITY {
            if let Some(old) = ring.changes.pop_front() {
                ring.from = old.revision;
            }
        }
        ring.head = ring.head.max(read_to);
        let head = ring.head;
        drop(ring);
        self.head.send_if_modified(|h| {
            let newer = head > *h;
            *h = head;
            newer
        });
    }

    /// Starts over at `revision`: what came before is the store's to answer.
    fn restart_at(&self, revision: u64) {
        if let Ok(mut ring) = self.ring.write() {
            *ring = Ring {
                changes: VecDeque::new(),
                from: revision,
                head: revision,
            };
        }
        self.head.send_replace(revision);
    }

    fn head(&self) -> u64 {
        self.ring.read().map_or(0, |r| r.head)
    }
}

/// What one step of following the store found.
enum Step {
    /// Read up to the newest revision written: wait for the next.
    CaughtUp,
    /// More to read at once.
    More,
    /// The store has not reached the revision announced yet (a replica reading behind
    /// etcd's leader): read again shortly.
    Behind,
    /// The store failed: try again shortly.
    Failed,
    /// The service stopped.
    Stopped,
}

/// Follows the store until the service stops. Holds the service only within a step, on
/// a blocking thread, so the task never keeps it alive, nor drops it (and the etcd
/// client's runtime with it) on an async worker.
async fn run(shared: &Weak<Shared>, mut written: tokio::sync::watch::Receiver<u64>) {
    loop {
        written.borrow_and_update();
        let newest = *written.borrow();
        let shared = shared.clone();
        let step = tokio::task::spawn_blocking(move || match shared.upgrade() {
            Some(shared) if !shared.closing.load(Ordering::SeqCst) => step(&shared, newest),
            _ => Step::Stopped,
        })
        .await
        .unwrap_or(Step::Stopped);
        match step {
            Step::CaughtUp => {
                if written.changed().await.is_err() {
                    return;
                }
            }
            Step::More => {}
            Step::Behind => tokio::time::sleep(Duration::from_millis(10)).await,
            Step::Failed => tokio::time::sleep(Duration::from_millis(200)).await,
            Step::Stopped => return,
        }
    }
}

/// Reads the changes after the newest the cache holds, into it (blocking).
fn step(shared: &Shared, newest: u64) -> Step {
    let cache = &shared.watch_cache;
    let after = cache.head();
    let read = shared.with_objects(|t| {
        if after == 0 {
            // The first read: hold what comes after now.
            return Ok((Vec::new(), t.revision()?, true));
        }
        let (changes, read_to) = t.changes_since(after, &Filter::default(), BATCH)?;
        Ok((changes, read_to, false))
    });
    match read {
        Ok((_, revision, true)) => {
            cache.restart_at(revision.max(1));
            Step::More
        }
        Ok((changes, read_to, false)) => {
            let step = match (changes.is_empty(), read_to >= newest) {
                (false, _) => Step::More,
                (true, true) => Step::CaughtUp,
                (true, false) => Step::Behind,
            };
            cache.push(changes, read_to);
            step
        }
        // Fell behind the store's compaction: the store answers older positions.
        Err(ObjectsError::Expired { .. }) => {
            cache.restart_at(0);
            Step::More
        }
        Err(e) => {
            tracing::warn!(error = %e, "the watch cache cannot read the store; retrying");
            Step::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::Resource;
    use crate::objects::{Change, ChangeType};

    fn change(revision: u64, resource: Resource, name: &str) -> Change {
        Change {
            kind: ChangeType::Modified,
            object: serde_json::json!({ "metadata": { "name": name } }),
            revision,
            key: ObjectKey::global(resource, name),
        }
    }

    #[test]
    fn a_watch_reads_what_its_filter_covers_after_its_position() {
        let cache = WatchCache::default();
        assert!(
            cache.read(0, &Filter::default(), 10).is_none(),
            "not following yet"
        );
        cache.restart_at(10);
        cache.push(
            vec![
                change(11, Resource::Cluster, "a"),
                change(12, Resource::Host, "h"),
                change(13, Resource::Cluster, "b"),
            ],
            14,
        );
        let clusters = Filter {
            resource: Some(Resource::Cluster),
            ..Filter::default()
        };
        let read = cache.read(11, &clusters, 10).expect("within the cache");
        assert_eq!((read.lines.len(), read.read_to), (1, 14));
        assert!(String::from_utf8_lossy(&read.lines[0]).contains("\"b\""));
        // A limit stops at the last change scanned; before the cache, the store answers.
        let read = cache
            .read(10, &Filter::default(), 2)
            .expect("within the cache");
        assert_eq!((read.lines.len(), read.read_to), (2, 12));
        assert!(cache.read(9, &Filter::default(), 10).is_none());
        assert_eq!(*cache.subscribe().borrow(), 14);
    }

    #[test]
    fn the_oldest_changes_leave_and_their_positions_go_to_the_store() {
        let cache = WatchCache::default();
        cache.restart_at(1);
        let many = (2..CAPACITY as u64 + 12).map(|r| change(r, Resource::Host, "h"));
        cache.push(many.collect(), CAPACITY as u64 + 11);
        assert!(cache.read(5, &Filter::default(), 1).is_none());
        let read = cache.read(11, &Filter::default(), BATCH).expect("kept");
        assert_eq!(read.lines.len(), BATCH);
    }
}
