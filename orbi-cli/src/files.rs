//! The files commands read and write. Reads are bounded (never more than a limit in memory;
//! a longer input is an error, never a silently truncated read); writes are atomic (a reader,
//! or the next start after a crash, sees the old file or the whole new one).

use std::{
    fs,
    io::{self, Read, Write},
    path::{Path, PathBuf},
};

use crate::CliError;

/// Appends at most `limit` bytes of `reader` to `bytes`; a longer input is an error.
pub fn read_bounded(reader: impl Read, limit: u64, bytes: &mut Vec<u8>) -> io::Result<()> {
    let read = reader.take(limit.saturating_add(1)).read_to_end(bytes)?;
    if read as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("larger than the {limit}-byte limit"),
        ));
    }
    Ok(())
}

/// The bytes of `path` (`-`: stdin), at most `limit`; errors name the path.
pub fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, CliError> {
    let mut bytes = Vec::new();
    open_input(path)
        .and_then(|input| read_bounded(input, limit, &mut bytes))
        .map_err(|err| read_error(path, err))?;
    Ok(bytes)
}

/// The first `limit` bytes of `path` (`-`: stdin), however long it is: for a reader that
/// judges the length itself (the pod engine rejects an artifact over its limit with its own
/// code), so reading one byte past its limit tells it enough.
pub fn read_prefix(path: &Path, limit: u64) -> Result<Vec<u8>, CliError> {
    let mut bytes = Vec::new();
    open_input(path)
        .and_then(|input| input.take(limit).read_to_end(&mut bytes))
        .map_err(|err| read_error(path, err))?;
    Ok(bytes)
}

/// `path` to read from: stdin for `-`, else the regular file ([`open_regular`]).
fn open_input(path: &Path) -> io::Result<Box<dyn Read>> {
    if path == Path::new("-") {
        Ok(Box::new(io::stdin().lock()))
    } else {
        Ok(Box::new(open_regular(path)?))
    }
}

fn read_error(path: &Path, err: io::Error) -> CliError {
    CliError::new(format!("cannot read {}: {err}", path.display()))
}

/// Opens `path` (symlinks followed) for reading if it is a regular file. A FIFO would block
/// the read until some writer came, a device might never end: those are refused (a pipe goes
/// to stdin, `-`). The open itself does not wait (`O_NONBLOCK`, which a regular file's reads
/// ignore), so a path swapped for a FIFO after any earlier check cannot block it either.
pub fn open_regular(path: &Path) -> io::Result<fs::File> {
    let file = orbi_pod::keyfile::open_without_waiting(path)?;
    let metadata = file.metadata()?;
    if metadata.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a directory",
        ));
    }
    if !metadata.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (pipe a stream to stdin with `-` instead)",
        ));
    }
    Ok(file)
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it into place and syncs
/// the directory, so the old file or the whole new one is there, never half of it, and the
/// rename itself survives a crash. The temporary file is removed when anything fails. It is
/// created exclusively under a random name, so nothing planted beside `path` (a symlink at a
/// guessable name) is followed; the new file gets the mode a plain create would (the umask's).
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomically_as(path, bytes, Existing::Replace)
}

/// What [`write_atomically_as`] and [`check_output`] do about a file already at the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Keep it: the write fails (`AlreadyExists`) and the file is untouched.
    Keep,
    /// Replace it whole.
    Replace,
}

impl Existing {
    /// `Replace` when the user gave `--force`.
    pub fn replaced_if(force: bool) -> Existing {
        if force {
            Existing::Replace
        } else {
            Existing::Keep
        }
    }
}

/// [`write_atomically`], keeping a file already at `path` unless `existing` is `Replace`
/// (the rename itself refuses to replace one, so a file that appears meanwhile is kept too).
pub fn write_atomically_as(path: &Path, bytes: &[u8], existing: Existing) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".orbi-").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let mut temp = builder.tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    match existing {
        Existing::Replace => temp.persist(path),
        Existing::Keep => temp.persist_noclobber(path),
    }
    .map_err(|error| error.error)?;
    fs::File::open(dir)?.sync_all()
}

/// Checks, before anything is dialled, that `path` (given as `flag`) can take a file: its
/// directory exists, it is not a directory itself, and it holds no file unless `existing`
/// lets it be replaced. Found out after a transfer, the work would be lost.
pub fn check_output(flag: &str, path: &Path, existing: Existing) -> Result<(), CliError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(CliError::new(format!(
            "{flag} {}: {} is not a directory",
            path.display(),
            dir.display()
        )));
    }
    if path.is_dir() {
        return Err(CliError::new(format!(
            "{flag} {}: is a directory",
            path.display()
        )));
    }
    // A symlink counts, dangling or not: writing through or over it is not what was asked.
    if existing == Existing::Keep && fs::symlink_metadata(path).is_ok() {
        return Err(CliError::new(format!(
            "{flag} {}: a file is already there (--force replaces it)",
            path.display()
        )));
    }
    Ok(())
}

/// The directories a server's start is about to make for its state, taken back if the start
/// fails (the port taken, a store that will not open): fixing the cause and starting again
/// then finds none half-made. A directory that already existed is never touched.
pub struct MadeDirs {
    /// The outermost directory of the path that did not exist, found before anything was made.
    outermost: Option<PathBuf>,
}

impl MadeDirs {
    /// Notes what creating `dir` would make; call it before anything creates `dir`.
    pub fn before_creating(dir: &Path) -> MadeDirs {
        MadeDirs {
            outermost: dir
                .ancestors()
                .take_while(|path| !path.as_os_str().is_empty() && !path.exists())
                .last()
                .map(Path::to_path_buf),
        }
    }

    /// Passes `started` through, removing what was made when it is an error.
    pub fn unless_started<T, E>(&self, started: Result<T, E>) -> Result<T, E> {
        if started.is_err()
            && let Some(made) = self.outermost.as_deref().filter(|made| made.exists())
            && let Err(err) = fs::remove_dir_all(made)
        {
            tracing::warn!(dir = %made.display(), %err, "cannot remove what a failed start made");
        }
        started
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_bounded_and_never_truncated() {
        let mut bytes = b"old".to_vec();
        bytes.clear();
        read_bounded(&b"12345"[..], 5, &mut bytes).unwrap();
        assert_eq!(bytes, b"12345");
        let err = read_bounded(&b"123456"[..], 5, &mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(err.to_string(), "larger than the 5-byte limit");
    }

    #[cfg(unix)]
    #[test]
    fn only_regular_files_are_read_and_a_fifo_never_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.json");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let (done, outcome) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || done.send(read_file(&path, 100).map_err(|e| e.to_string())));
        let error = outcome
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("a FIFO must not block the read")
            .unwrap_err();
        assert!(error.contains("not a regular file"), "{error}");
        let error = read_file(dir.path(), 100).unwrap_err().to_string();
        assert!(error.contains("is a directory"), "{error}");
        let error = read_file(Path::new("/dev/zero"), 100)
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a regular file"), "{error}");
        let file = dir.path().join("a.json");
        fs::write(&file, b"{}").unwrap();
        assert_eq!(read_file(&file, 100).unwrap(), b"{}");
    }

    #[test]
    fn atomic_writes_leave_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.json"]);
    }

    #[test]
    fn a_kept_file_is_not_replaced_and_no_temporary_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomically_as(&path, b"one", Existing::Keep).unwrap();
        let error = write_atomically_as(&path, b"two", Existing::Keep).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"one");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.json"]);
        write_atomically_as(&path, b"two", Existing::Replace).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
    }

    #[cfg(unix)]
    #[test]
    fn an_output_already_there_is_refused_unless_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("there");
        fs::write(&file, b"x").unwrap();
        // A dangling symlink is something there too.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &link).unwrap();
        for path in [&file, &link] {
            let error = check_output("--out", path, Existing::Keep)
                .unwrap_err()
                .to_string();
            assert_eq!(
                error,
                format!(
                    "--out {}: a file is already there (--force replaces it)",
                    path.display()
                )
            );
            assert!(check_output("--out", path, Existing::Replace).is_ok());
        }
        assert!(check_output("--out", &dir.path().join("new"), Existing::Keep).is_ok());
        assert_eq!(Existing::replaced_if(true), Existing::Replace);
        assert_eq!(Existing::replaced_if(false), Existing::Keep);
    }

    #[cfg(unix)]
    #[test]
    fn atomic_writes_follow_nothing_planted_beside_the_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let precious = dir.path().join("precious");
        fs::write(&precious, b"keep").unwrap();
        // Links at every name the old scheme would have used, and then some.
        for name in [
            format!(".x.json.{}.tmp", std::process::id()),
            ".x.json.tmp".to_owned(),
        ] {
            std::os::unix::fs::symlink(&precious, dir.path().join(name)).unwrap();
        }
        let path = dir.path().join("x.json");
        write_atomically(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(fs::read(&precious).unwrap(), b"keep");
        // The mode is the umask's, as for a plain create (not the temp file's 0600).
        let created = dir.path().join("plain");
        fs::write(&created, b"").unwrap();
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), mode(&created));
    }

    /// A failed start takes back the outermost directory it made, with what is inside, and
    /// nothing that already existed.
    #[test]
    fn a_failed_start_removes_the_outermost_directory_it_made() {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("a/b/c");
        let made = MadeDirs::before_creating(&data);
        fs::create_dir_all(&data).unwrap();
        fs::write(data.join("pod.sqlite"), b"x").unwrap();
        assert_eq!(
            made.unless_started(Err::<(), _>("port taken")),
            Err("port taken")
        );
        assert!(!root.path().join("a").exists());
        assert!(root.path().exists());

        fs::create_dir(root.path().join("kept")).unwrap();
        let existing = root.path().join("kept");
        let made = MadeDirs::before_creating(&existing);
        assert_eq!(made.unless_started(Err::<(), _>("store")), Err("store"));
        assert!(existing.is_dir());
        let made = MadeDirs::before_creating(&root.path().join("new"));
        fs::create_dir(root.path().join("new")).unwrap();
        assert_eq!(made.unless_started(Ok::<_, ()>(7)), Ok(7));
        assert!(root.path().join("new").is_dir());
    }

    #[test]
    fn read_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.json");
        std::fs::write(&path, b"123456").unwrap();
        assert_eq!(read_file(&path, 6).unwrap(), b"123456");
        let err = read_file(&path, 5).unwrap_err().to_string();
        assert!(
            err.contains("big.json") && err.contains("5-byte limit"),
            "{err}"
        );
        let missing = read_file(&dir.path().join("nope"), 5)
            .unwrap_err()
            .to_string();
        assert!(missing.contains("nope"), "{missing}");
    }
}
