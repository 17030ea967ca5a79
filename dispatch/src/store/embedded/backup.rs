//! Online backups of the embedded store: every table copied, as one read transaction sees
//! it, into a new redb file in `backups/` beside the store's own, while the writer goes on
//! committing. The writer opens that transaction right after an fsync, before its next
//! commit, and redb keeps the pages a read transaction sees until it ends, so the copy is
//! consistent and durable (exactly the batches committed when the backup began, each whole,
//! and no lazy batch a crash could still take from the store's own file) without pausing
//! writes. The copy is a store file like the original: to restore one, stop
//! the service and put it in place of `dispatch.redb`.
//!
//! The copy is written under a hidden `.partial` name and renamed once it is synced, so a
//! file with the final name is always a complete backup, even after a crash mid-copy; the
//! next backup removes what such a crash left. Once the new backup is in place, the oldest
//! beyond the number to keep are removed: backups run on a schedule, and a disk they fill
//! would stop the store.

use super::{CREW_POSITIONS, CREW_TOKENS, EVENTS, FILE_NAME, IDEMPOTENCY, META, TICKET_EVENTS};
use crate::domain::Timestamp;
use crate::store::{Backup, StoreError};
use redb::{Database, Key, ReadTransaction, ReadableTable, TableDefinition, TableError, Value};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// The directory, inside the store's, that backups are written to.
pub const DIR_NAME: &str = "backups";

/// Rows copied per transaction into the backup, each committed with an fsync: bounds the
/// memory a large copy holds (redb keeps a transaction's pages until it is durable).
const ROWS_PER_COMMIT: u64 = 50_000;

/// The copy's page cache: it is written once and closed, not read.
const COPY_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// How many backups may share one second's name before the next is refused.
const NAMES_PER_SECOND: u32 = 100;

/// Free space a backup must leave on the disk, beyond its own size, for the store to go on
/// growing: a disk filled by a backup would stop the store's commits, and the service.
pub const SPACE_RESERVE_BYTES: u64 = 256 * 1024 * 1024;

/// Writes `snapshot` (the store as the writer left it durable: every batch committed before
/// the backup was asked for) into `store_dir/backups/`, named for `taken_at`, then removes the
/// oldest backups so that `keep` remain (none when `keep` is 0).
pub(super) fn write(
    snapshot: ReadTransaction,
    store_dir: &Path,
    taken_at: Timestamp,
    keep: u32,
) -> Result<Backup, StoreError> {
    let dir = store_dir.join(DIR_NAME);
    // Backups hold callers' phones and addresses: the directory is the service user's alone
    // (when this creates it; an operator's own choice of mode stays).
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| failed(format!("cannot create {}: {e}", dir.display())))?;
    // The copy holds at most what the store's file does.
    let store_bytes = std::fs::metadata(store_dir.join(FILE_NAME))
        .map_err(|e| failed(format!("cannot read the store's size: {e}")))?
        .len();
    let stats = rustix::fs::statvfs(&dir).map_err(|e| {
        failed(format!(
            "cannot read the free space of {}: {e}",
            dir.display()
        ))
    })?;
    room_for(store_bytes, stats.f_bavail.saturating_mul(stats.f_frsize)).map_err(failed)?;
    remove_partials(&dir)?;
    let path = free_name(&dir, taken_at)?;
    let partial = partial_name(&path);
    let copied = copy_all(&snapshot, &partial);
    drop(snapshot);
    let events = match copied {
        Ok(events) => events,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
    };
    std::fs::rename(&partial, &path)
        .map_err(|e| failed(format!("cannot name the backup {}: {e}", path.display())))?;
    // The rename is durable only once the directory is.
    sync_dir(&dir).map_err(|e| failed(format!("cannot sync {}: {e}", dir.display())))?;
    let bytes = std::fs::metadata(&path)
        .map_err(|e| failed(format!("cannot read {}: {e}", path.display())))?
        .len();
    let removed = remove_old(&dir, keep, &path);
    Ok(Backup {
        path,
        events,
        bytes,
        taken_at,
        removed,
    })
}

/// Removes the oldest backups in `dir` beyond the newest `keep`, never `written` (the backup
/// just taken, kept even when a clock set back gave it an older name), and never a file
/// whose name is not a backup's. Returns what it removed. A file that cannot be removed is
/// logged and left: the backup just taken is good, and the next one tries again.
fn remove_old(dir: &Path, keep: u32, written: &Path) -> Vec<PathBuf> {
    if keep == 0 {
        return Vec::new();
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "cannot list backups to remove old ones");
            return Vec::new();
        }
    };
    let mut older: Vec<(BackupName, PathBuf)> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path != written)
        .filter_map(|path| {
            let name = BackupName::parse(path.file_name()?.to_str()?)?;
            Some((name, path))
        })
        .collect();
    // Newest first; the one just written is the first kept.
    older.sort_by_key(|(name, _)| std::cmp::Reverse(*name));
    let mut removed = Vec::new();
    for (_, path) in older.into_iter().skip(keep as usize - 1) {
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(error) => {
                tracing::warn!(backup = %path.display(), %error, "cannot remove an old backup");
            }
        }
    }
    if !removed.is_empty()
        && let Err(error) = sync_dir(dir)
    {
        tracing::warn!(dir = %dir.display(), %error, "cannot sync the backups directory");
    }
    removed
}

/// Makes the names in `dir` (a rename, a removal) durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// When the newest backup in `store_dir/backups/` was taken, from its name; `None` when
/// there is none (or the directory cannot be read: nothing is known of a backup then).
pub(super) fn newest(store_dir: &Path) -> Option<Timestamp> {
    std::fs::read_dir(store_dir.join(DIR_NAME))
        .ok()?
        .filter_map(|entry| BackupName::parse(entry.ok()?.file_name().to_str()?))
        .max()
        .map(|name| name.taken_at)
}

/// What a backup's file name says of when it was taken: its second, then its place among
/// that second's backups (the first has no number, the next `-2`, `-3`…). Ordered by it;
/// the names alone would not be (`…Z-2.redb` sorts before `…Z.redb`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct BackupName {
    taken_at: Timestamp,
    n: u32,
}

impl BackupName {
    /// `dispatch-20261201T130509Z.redb` or `dispatch-20261201T130509Z-2.redb`; anything else
    /// (an operator's own file, a partial copy, a name whose date is no date) is `None`.
    fn parse(name: &str) -> Option<Self> {
        let stem = FILE_NAME.trim_end_matches(".redb");
        let rest = name.strip_prefix(stem)?.strip_prefix('-')?;
        let rest = rest.strip_suffix(".redb")?;
        let (stamp, n) = match rest.split_once("Z-") {
            Some((stamp, n)) => (stamp, n.parse::<u32>().ok().filter(|n| *n >= 2)?),
            None => (rest.strip_suffix('Z')?, 1),
        };
        let (date, time) = stamp.split_once('T')?;
        // Exactly as `free_name` writes them: strptime alone would take fewer digits.
        let digits = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_digit());
        if !(digits(date, 8) && digits(time, 6)) {
            return None;
        }
        // A date that is no date (a hand-made `…20251399T…`) is no backup's.
        let civil = jiff::civil::DateTime::strptime("%Y%m%dT%H%M%S", stamp).ok()?;
        let at = civil.to_zoned(jiff::tz::TimeZone::UTC).ok()?.timestamp();
        Some(BackupName {
            taken_at: Timestamp::from_millis(at.as_millisecond()),
            n,
        })
    }
}

/// Copies every table into a new database at `target`, durably; returns the events copied.
fn copy_all(snapshot: &ReadTransaction, target: &Path) -> Result<u64, StoreError> {
    let copy = redb::Builder::new()
        .set_cache_size(COPY_CACHE_BYTES)
        .create(target)
        .map_err(|e| failed(format!("cannot create {}: {e}", target.display())))?;
    copy_table(snapshot, &copy, META)?;
    let events = copy_table(snapshot, &copy, EVENTS)?;
    copy_table(snapshot, &copy, TICKET_EVENTS)?;
    copy_table(snapshot, &copy, IDEMPOTENCY)?;
    copy_table(snapshot, &copy, CREW_TOKENS)?;
    copy_table(snapshot, &copy, CREW_POSITIONS)?;
    Ok(events)
}

/// Copies one table, in chunks of [`ROWS_PER_COMMIT`] rows; returns the rows copied.
fn copy_table<K: Key + 'static, V: Value + 'static>(
    snapshot: &ReadTransaction,
    copy: &Database,
    table: TableDefinition<K, V>,
) -> Result<u64, StoreError> {
    let source = match snapshot.open_table(table) {
        Ok(source) => source,
        // `prepare` creates every table, but a table that is not there holds nothing to copy.
        Err(TableError::TableDoesNotExist(_)) => return Ok(0),
        Err(e) => return Err(failed(format!("cannot read table {table}: {e}"))),
    };
    let mut rows = source.iter().map_err(write_error)?;
    let mut copied = 0u64;
    loop {
        let txn = copy.begin_write().map_err(write_error)?;
        let mut chunk = 0;
        {
            let mut target = txn.open_table(table).map_err(write_error)?;
            while chunk < ROWS_PER_COMMIT {
                let Some(row) = rows.next() else { break };
                let (key, value) = row.map_err(write_error)?;
                target
                    .insert(key.value(), value.value())
                    .map_err(write_error)?;
                chunk += 1;
            }
        }
        txn.commit().map_err(write_error)?;
        copied += chunk;
        if chunk < ROWS_PER_COMMIT {
            return Ok(copied);
        }
    }
}

/// Refuses a backup that would leave less than [`SPACE_RESERVE_BYTES`] free.
fn room_for(store_bytes: u64, available_bytes: u64) -> Result<(), String> {
    let needed = store_bytes.saturating_add(SPACE_RESERVE_BYTES);
    if available_bytes < needed {
        return Err(format!(
            "not enough free space: a copy of {} MiB needs {} MiB free with the reserve the \
             store keeps to grow, and {} MiB are",
            store_bytes >> 20,
            needed >> 20,
            available_bytes >> 20
        ));
    }
    Ok(())
}

/// `dispatch-20261201T130509Z.redb`, or with `-2`, `-3`… when that second's name is taken.
fn free_name(dir: &Path, taken_at: Timestamp) -> Result<PathBuf, StoreError> {
    let stem = FILE_NAME.trim_end_matches(".redb");
    let stamp = jiff::Timestamp::from_millisecond(taken_at.as_millis())
        .map_err(|e| failed(format!("the backup's time is out of range: {e}")))?
        .strftime("%Y%m%dT%H%M%SZ")
        .to_string();
    (1..=NAMES_PER_SECOND)
        .map(|n| match n {
            1 => dir.join(format!("{stem}-{stamp}.redb")),
            n => dir.join(format!("{stem}-{stamp}-{n}.redb")),
        })
        .find(|path| !path.exists())
        .ok_or_else(|| failed(format!("{NAMES_PER_SECOND} backups already carry {stamp}")))
}

fn partial_name(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.partial"))
}

/// Removes what copies cut short by a crash left behind: partial files are never backups,
/// and backups run one at a time, so none is being written now.
fn remove_partials(dir: &Path) -> Result<(), StoreError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| failed(format!("cannot list {}: {e}", dir.display())))?;
    for entry in entries {
        let path = entry
            .map_err(|e| failed(format!("cannot list {}: {e}", dir.display())))?
            .path();
        let is_partial = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.') && n.ends_with(".partial"));
        if is_partial {
            std::fs::remove_file(&path)
                .map_err(|e| failed(format!("cannot remove {}: {e}", path.display())))?;
        }
    }
    Ok(())
}

fn write_error(e: impl Into<redb::Error>) -> StoreError {
    failed(e.into().to_string())
}

/// A backup that could not be written: the store itself is untouched and still working.
fn failed(reason: String) -> StoreError {
    StoreError::Unavailable(format!("the backup was not written: {reason}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_must_leave_the_reserve_free() {
        const MIB: u64 = 1 << 20;
        let store = 100 * MIB;
        assert!(room_for(store, store + SPACE_RESERVE_BYTES).is_ok());
        let refused = room_for(store, store + SPACE_RESERVE_BYTES - 1).unwrap_err();
        assert!(refused.contains("not enough free space"), "{refused}");
        assert!(room_for(u64::MAX - 1, u64::MAX - 1).is_err(), "no overflow");
    }

    #[test]
    fn backup_names_order_by_second_then_number() {
        let name = |s| BackupName::parse(s);
        let first = name("dispatch-20251201T130509Z.redb").expect("a backup");
        let second = name("dispatch-20251201T130509Z-2.redb").expect("a backup");
        let tenth = name("dispatch-20251201T130509Z-10.redb").expect("a backup");
        let later = name("dispatch-20251201T130510Z.redb").expect("a backup");
        assert!(first < second && second < tenth && tenth < later);
        for other in [
            "dispatch.redb",
            ".dispatch-20251201T130509Z.redb.partial",
            "dispatch-20251201T130509Z.redb.bak",
            "dispatch-20251201T130509Z-1.redb",
            "dispatch-20251201T130509Z-x.redb",
            "dispatch-2025120T130509Z.redb",
            "dispatch-20251201T13050aZ.redb",
            "notes-20251201T130509Z.redb",
            "dispatch-20251201T130509.redb",
            "dispatch-20251399T000000Z.redb",
            "dispatch-20251201T250000Z.redb",
        ] {
            assert_eq!(name(other), None, "{other}");
        }
    }

    #[test]
    fn old_backups_beyond_the_number_kept_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().expect("temp dir");
        let names = [
            "dispatch-20251130T020000Z.redb",
            "dispatch-20251201T020000Z.redb",
            "dispatch-20251201T020000Z-2.redb",
            "dispatch-20251202T020000Z.redb",
            "operator-copy.redb",
            "dispatch.redb",
        ];
        for name in names {
            std::fs::write(dir.path().join(name), b"x").expect("write");
        }
        let written = dir.path().join("dispatch-20251202T020000Z.redb");
        let removed = remove_old(dir.path(), 3, &written);
        let removed: Vec<_> = removed
            .iter()
            .filter_map(|p| p.file_name()?.to_str())
            .collect();
        assert_eq!(removed, ["dispatch-20251130T020000Z.redb"]);
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "dispatch-20251201T020000Z-2.redb",
                "dispatch-20251201T020000Z.redb",
                "dispatch-20251202T020000Z.redb",
                "dispatch.redb",
                "operator-copy.redb",
            ]
        );
        // Keeping one leaves only the one just written, even when it has the oldest name
        // (a clock set back).
        let written = dir.path().join("dispatch-20251201T020000Z.redb");
        assert_eq!(remove_old(dir.path(), 1, &written).len(), 2);
        assert!(written.exists());
        // 0 keeps everything.
        assert!(remove_old(dir.path(), 0, &written).is_empty());
    }

    #[test]
    fn the_newest_backup_is_read_from_the_names() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(newest(dir.path()), None, "no backups directory");
        let backups = dir.path().join(DIR_NAME);
        std::fs::create_dir(&backups).expect("mkdir");
        assert_eq!(newest(dir.path()), None, "an empty one");
        let at = Timestamp::from_millis(1_764_594_309_123); // 2025-12-01T13:05:09.123Z
        let path = free_name(&backups, at).expect("a name");
        std::fs::write(&path, b"x").expect("write");
        std::fs::write(
            backups.join(".dispatch-20301201T130509Z.redb.partial"),
            b"x",
        )
        .expect("write");
        std::fs::write(backups.join("dispatch-20201201T130509Z.redb"), b"x").expect("write");
        assert_eq!(
            newest(dir.path()),
            Some(Timestamp::from_millis(1_764_594_309_000)),
            "the newest, to the second its name carries"
        );
    }

    #[test]
    fn names_carry_the_second_and_never_repeat() {
        let dir = tempfile::tempdir().expect("temp dir");
        let at = Timestamp::from_millis(1_764_594_309_123); // 2025-12-01T13:05:09.123Z
        let first = free_name(dir.path(), at).expect("a name");
        assert_eq!(
            first.file_name().and_then(|n| n.to_str()),
            Some("dispatch-20251201T130509Z.redb")
        );
        std::fs::write(&first, b"taken").expect("write");
        let second = free_name(dir.path(), at).expect("a name");
        assert_eq!(
            second.file_name().and_then(|n| n.to_str()),
            Some("dispatch-20251201T130509Z-2.redb")
        );
        assert_eq!(
            partial_name(&second).file_name().and_then(|n| n.to_str()),
            Some(".dispatch-20251201T130509Z-2.redb.partial")
        );
    }
}
