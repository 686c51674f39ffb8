//! What offload tells retention (docs/FORMAT.md, "Retention"): which segments have a verified
//! copy elsewhere, which one is being read for an upload right now, and whether everything is
//! being offloaded. One set per data directory, shared by the store (recorder side) and the
//! offload thread; retention reads it only when a segment starts, never per frame.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Default)]
pub struct RetentionHints {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// First sequence numbers of segments with a verified copy.
    verified: HashSet<u64>,
    /// The segment an upload is reading (its first sequence number).
    pinned: Option<u64>,
    /// Offloading everything: unprotected footage already copied goes first.
    prefer_offloaded: bool,
}

impl RetentionHints {
    /// The hints of the store in `data_dir` (created empty the first time).
    pub fn for_dir(data_dir: &Path) -> Arc<RetentionHints> {
        static ALL: OnceLock<Mutex<HashMap<PathBuf, Arc<RetentionHints>>>> = OnceLock::new();
        let key = data_dir.canonicalize().unwrap_or_else(|_| data_dir.to_path_buf());
        let mut m = ALL.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        Arc::clone(m.entry(key).or_default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_verified(&self, first_seqs: impl IntoIterator<Item = u64>) {
        let mut i = self.lock();
        i.verified.clear();
        i.verified.extend(first_seqs);
    }
    pub fn add_verified(&self, first_seq: u64) {
        self.lock().verified.insert(first_seq);
    }
    pub fn is_verified(&self, first_seq: u64) -> bool {
        self.lock().verified.contains(&first_seq)
    }
    /// Pins a segment (an upload reads it) or unpins (`None`).
    pub fn pin(&self, first_seq: Option<u64>) {
        self.lock().pinned = first_seq;
    }
    pub fn pinned(&self) -> Option<u64> {
        self.lock().pinned
    }
    pub fn set_prefer_offloaded(&self, on: bool) {
        self.lock().prefer_offloaded = on;
    }

    /// Retention's choice among `segs` (oldest first) given which are protected: the index to
    /// take and whether it is protected footage without a verified copy (the last resort).
    ///
    /// 1. unprotected footage, oldest first (when offloading everything, copied footage first);
    /// 2. protected footage with a verified copy, oldest first;
    /// 3. protected footage never copied, oldest first;
    /// 4. the pinned segment, only when nothing else is left (recording never stops; the
    ///    upload notices and starts again).
    pub fn choose(&self, n: usize, first_seq: impl Fn(usize) -> u64, protected: impl Fn(usize) -> bool) -> Option<(usize, bool)> {
        let i = self.lock();
        let free = |k: usize| i.pinned != Some(first_seq(k));
        let ver = |k: usize| i.verified.contains(&first_seq(k));
        if i.prefer_offloaded
            && let Some(k) = (0..n).find(|&k| free(k) && !protected(k) && ver(k))
        {
            return Some((k, false));
        }
        if let Some(k) = (0..n).find(|&k| free(k) && !protected(k)) {
            return Some((k, false));
        }
        if let Some(k) = (0..n).find(|&k| free(k) && ver(k)) {
            return Some((k, false));
        }
        if let Some(k) = (0..n).find(|&k| free(k)) {
            return Some((k, true));
        }
        (n > 0).then(|| (0, protected(0) && !ver(0)))
    }

    /// Among protected segments (rule 1, the protected cap): verified copies first, then the
    /// oldest; the pinned one last.
    pub fn choose_protected(&self, n: usize, first_seq: impl Fn(usize) -> u64, protected: impl Fn(usize) -> bool) -> Option<(usize, bool)> {
        let i = self.lock();
        let free = |k: usize| i.pinned != Some(first_seq(k));
        let ver = |k: usize| i.verified.contains(&first_seq(k));
        (0..n)
            .find(|&k| protected(k) && free(k) && ver(k))
            .map(|k| (k, false))
            .or_else(|| (0..n).find(|&k| protected(k) && free(k)).map(|k| (k, true)))
            .or_else(|| (0..n).find(|&k| protected(k)).map(|k| (k, !ver(k))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_order() {
        let h = RetentionHints::default();
        // segments 0..4: 0 and 1 protected, 2 and 3 not
        let prot = |k: usize| k < 2;
        let seq = |k: usize| k as u64 * 10;
        assert_eq!(h.choose(4, seq, prot), Some((2, false)));
        h.pin(Some(20));
        assert_eq!(h.choose(4, seq, prot), Some((3, false)), "the pinned segment is skipped");
        h.set_prefer_offloaded(true);
        h.add_verified(30);
        assert_eq!(h.choose(4, seq, prot), Some((3, false)));
        h.pin(None);
        assert_eq!(h.choose(4, seq, prot), Some((3, false)), "copied footage first when offloading all");
        h.set_prefer_offloaded(false);
        assert_eq!(h.choose(4, seq, prot), Some((2, false)));
        // only protected left
        assert_eq!(h.choose(2, seq, prot), Some((0, true)), "last resort: never copied");
        h.add_verified(10);
        assert_eq!(h.choose(2, seq, prot), Some((1, false)), "a verified protected one before the older unverified one");
        h.pin(Some(10));
        assert_eq!(h.choose(2, seq, prot), Some((0, true)));
        h.pin(Some(0));
        assert_eq!(h.choose(1, seq, prot), Some((0, true)), "pinned, but nothing else is left");
        assert_eq!(h.choose(0, seq, prot), None);
        h.pin(None);
        assert_eq!(h.choose_protected(4, seq, prot), Some((1, false)));
        h.set_verified([]);
        assert_eq!(h.choose_protected(4, seq, prot), Some((0, true)));
    }
}
