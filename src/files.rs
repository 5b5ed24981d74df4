//! Atomic file writes that replace only what is ours to replace.
//!
//! Checkpoints, plots and downloads are written to a temporary file beside
//! the destination, flushed to disk and renamed over it, so the destination
//! holds either its old contents or all of the new ones. Around that rename:
//!
//! - a symbolic link is written *through*: its final target gets the new
//!   contents and the link stays a link;
//! - a destination that exists but is not a regular file (a device such as
//!   `/dev/null`, a directory, a FIFO, a socket) is refused with an error:
//!   renaming over it would replace the node itself;
//! - an existing file keeps its permissions (and, where allowed, its owner):
//!   a 0600 checkpoint stays 0600;
//! - temporary names stay within the 255-byte file-name limit, however long
//!   the destination's name;
//! - temporary files that a killed run left beside the destination (their
//!   process no longer exists) are removed before a new one is made.
//!
//! [`check_destination`] runs the same checks (and proves the directory
//! writable) without writing, so a command line can refuse a bad `--save`
//! or `--plot` path before hours of training rather than after.
//!
//! A file the crate writes on its own account, not at a path the user named
//! (the autotune cache), goes through [`write_owned`]: the same rules, and
//! it replaces only a file it recognises as its own, so a link or a name
//! clash never lets it overwrite someone else's data. And every file the
//! crate reads whole goes through [`read_bounded`]: a size limit checked
//! before the first byte is read, so `/dev/zero` or a 3 GB file in a
//! cache's place costs nothing.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Most symbolic links followed from a destination (Linux's own limit).
const MAX_LINKS: usize = 40;
/// Longest file name most filesystems accept, in bytes.
const NAME_MAX: usize = 255;
/// Room kept for the `.PID.N.tmp` suffix: '.', 10 digits, '.', 20 digits, ".tmp".
const SUFFIX_MAX: usize = 36;
/// Where no process table can be read, a temporary file this old is stale.
const STALE_AGE: Duration = Duration::from_secs(3600);

/// Writes `bytes` to `path` atomically (see the module docs).
pub fn write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut temp = TempFile::create(path)?;
    temp.write_all(bytes)?;
    temp.commit()
}

/// Writes `bytes` to `path` as [`write`] does, but only where nothing is
/// there yet or where `is_ours` recognises what is there (read through
/// [`read_bounded`] with at most `max_existing` bytes): an existing file
/// that is not ours, or larger than that, is refused with an error and left
/// as it was, whether it is reached directly or through a link.
pub fn write_owned(
    path: &Path,
    bytes: &[u8],
    max_existing: u64,
    is_ours: impl Fn(&[u8]) -> bool,
) -> io::Result<()> {
    let mut temp = TempFile::create(path)?;
    match read_bounded(temp.destination(), max_existing) {
        Ok(old) if !is_ours(&old) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} holds something this program did not write; refusing to replace it",
                    temp.destination().display()
                ),
            ));
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    temp.write_all(bytes)?;
    temp.commit()
}

/// Reads the whole of `path`, which must be a regular file of at most `max`
/// bytes. Its type and size are checked before anything is read (so a
/// device such as `/dev/zero`, a FIFO or a huge file is refused at once),
/// and the read stops one byte past `max` in case the file grows meanwhile.
pub fn read_bounded(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    // Checked before opening: opening a FIFO would wait for a writer.
    let meta = fs::metadata(path)?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is {}, not a regular file",
                path.display(),
                describe(&meta)
            ),
        ));
    }
    let too_large = |len: u64| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{} is {len} bytes, more than the {max} bytes such a file may hold",
                path.display()
            ),
        )
    };
    if meta.len() > max {
        return Err(too_large(meta.len()));
    }
    let file = File::open(path)?;
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut io::Read::take(file, max.saturating_add(1)), &mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// Checks that [`write`] could replace `path` now: the parent directory
/// exists and accepts a new file, and `path` (through any symbolic links)
/// is missing or a regular file. Creates and removes one empty temporary
/// file to prove the directory writable, which also catches read-only
/// mounts and permissions that root bypasses for reads but not for writes.
pub fn check_destination(path: &Path) -> io::Result<()> {
    let temp = TempFile::create(path)?;
    drop(temp);
    Ok(())
}

/// `path` with every symbolic link resolved (the file a write should
/// change), without requiring the final target to exist.
pub fn resolve(path: &Path) -> io::Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&current)?;
                current = match current.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(current),
        }
    }
    Err(io::Error::other(format!(
        "more than {MAX_LINKS} symbolic links from {}; is there a loop?",
        path.display()
    )))
}

/// A file being written beside its destination: removed on drop unless
/// committed, so every early return leaves nothing behind.
pub struct TempFile {
    /// The resolved destination.
    dest: PathBuf,
    path: PathBuf,
    file: Option<File>,
}

impl TempFile {
    /// Resolves `dest`, refuses a non-regular destination, removes stale
    /// temporary files of `dest` and creates a new one with `dest`'s
    /// permissions.
    pub fn create(dest: &Path) -> io::Result<Self> {
        let dest = resolve(dest)?;
        let file_name = dest.file_name().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file")
        })?;
        let existing = match fs::metadata(&dest) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        if let Some(m) = &existing
            && !m.is_file()
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{} is {}, not a regular file; refusing to replace it",
                    dest.display(),
                    describe(m)
                ),
            ));
        }
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        match fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    format!("{} is not a directory", dir.display()),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("the directory {} does not exist", dir.display()),
                ));
            }
            Err(e) => return Err(e),
        }
        let stem = temp_stem(file_name);
        remove_stale(&dir, &stem);

        // Unique per process and call, so concurrent saves (two runs writing
        // the same checkpoint name) never share a temporary file.
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut attempt = 0;
        let (path, file) = loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let candidate = dir.join(format!(".{stem}.{}.{n}.tmp", std::process::id()));
            // `create_new` refuses to reuse a name, e.g. one a crashed run left.
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&candidate)
            {
                Ok(file) => break (candidate, file),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("cannot create a file in {}: {e}", dir.display()),
                    ));
                }
            }
        };
        let temp = TempFile {
            dest,
            path,
            file: Some(file),
        };
        if let (Some(m), Some(f)) = (&existing, &temp.file) {
            f.set_permissions(m.permissions())?;
            keep_owner(f, m);
        }
        Ok(temp)
    }

    /// Where the data will land (the destination with links resolved).
    pub fn destination(&self) -> &Path {
        &self.dest
    }

    /// Flushes the data to disk, renames the file over the destination and
    /// flushes the directory entry.
    pub fn commit(mut self) -> io::Result<()> {
        if let Some(f) = self.file.take() {
            // Data on disk before the rename makes it visible: otherwise a
            // crash could leave the new name pointing at a partial file.
            f.sync_all()?;
        }
        fs::rename(&self.path, &self.dest)?;
        // Renamed: nothing left for Drop to remove.
        self.path = PathBuf::new();
        if let Some(dir) = self.dest.parent() {
            sync_dir(if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            });
        }
        Ok(())
    }
}

impl Write for TempFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.file {
            Some(f) => f.write(buf),
            None => Err(io::Error::other("temporary file already committed")),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        self.file.take();
        if !self.path.as_os_str().is_empty() {
            // Best effort: the error that got us here is the one to report.
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// "a character device", "a directory", … for the refusal message.
fn describe(m: &fs::Metadata) -> &'static str {
    let t = m.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "not a regular file"
}

/// The destination's name as temporary names carry it: lossy UTF-8, cut
/// on a character boundary so that `.{stem}.{pid}.{n}.tmp` fits in
/// [`NAME_MAX`] bytes whatever the destination's name.
fn temp_stem(file_name: &OsStr) -> String {
    let name = file_name.to_string_lossy();
    let max = NAME_MAX - 1 - SUFFIX_MAX;
    let mut end = name.len().min(max);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

/// Removes `.{stem}.PID.N.tmp` files in `dir` whose process is gone (or,
/// where the process table cannot be read, that are over an hour old).
/// Best effort: a file that cannot be removed is left for the next save.
fn remove_stale(dir: &Path, stem: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let me = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| temp_pid(n, stem)) else {
            continue;
        };
        if pid == me || !is_stale(pid, &entry) {
            continue;
        }
        let _ = fs::remove_file(entry.path());
    }
}

/// The process id in `name` when it is one of `stem`'s temporary names.
fn temp_pid(name: &str, stem: &str) -> Option<u32> {
    let rest = name
        .strip_prefix('.')?
        .strip_prefix(stem)?
        .strip_prefix('.')?
        .strip_suffix(".tmp")?;
    let (pid, n) = rest.split_once('.')?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

fn is_stale(pid: u32, entry: &fs::DirEntry) -> bool {
    let proc = Path::new("/proc");
    if proc.join("self").exists() {
        return !proc.join(pid.to_string()).exists();
    }
    entry
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > STALE_AGE)
}

/// Gives the new file the old one's owner and group. Only root may, and
/// only root needs to: anyone else already owns what they create. Best
/// effort: a filesystem without owners keeps the file as created.
fn keep_owner(file: &File, old: &fs::Metadata) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(new) = file.metadata()
            && (new.uid() != old.uid() || new.gid() != old.gid())
        {
            let _ = std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid()));
        }
    }
    #[cfg(not(unix))]
    let _ = (file, old);
}

/// Flushes the directory so the rename itself survives a crash. Best effort:
/// some filesystems refuse to fsync a directory, and by now the file is
/// complete under its final name either way.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_fit_the_file_name_limit() {
        let long = "é".repeat(200); // 400 bytes
        let stem = temp_stem(OsStr::new(&long));
        let name = format!(".{stem}.{}.{}.tmp", u32::MAX, u64::MAX);
        assert!(name.len() <= NAME_MAX, "{} bytes", name.len());
        assert_eq!(
            temp_stem(OsStr::new("ckpt.safetensors")),
            "ckpt.safetensors"
        );
    }

    #[test]
    fn only_our_own_temp_names_are_recognised() {
        assert_eq!(temp_pid(".a.st.123.7.tmp", "a.st"), Some(123));
        assert_eq!(temp_pid(".a.st2.123.7.tmp", "a.st"), None);
        assert_eq!(temp_pid(".a.st.123.tmp", "a.st"), None);
        assert_eq!(temp_pid("a.st.123.7.tmp", "a.st"), None);
        assert_eq!(temp_pid(".a.st.x.7.tmp", "a.st"), None);
    }
}
