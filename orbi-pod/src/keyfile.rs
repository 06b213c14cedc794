//! Ed25519 key files: one JSON object, written atomically with mode 0600, never logged.
//!
//! ```json
//! {"key/alg": "ed25519",
//!  "key/secret": "<unpadded base64url of the 32-byte secret seed>",
//!  "key/public": "z6Mk…",
//!  "node/id": "node:did:key:z6Mk…",
//!  "participant/id": "participant:did:key:z6Mk…"}
//! ```
//!
//! One key serves both the node and the participant role (distinct roles, same material, as in
//! the upstream MVP). The public members are redundant on purpose: reading checks that they
//! all derive from the secret, so a damaged or hand-edited file is refused rather than used.
//! On Unix a file readable by group or others is refused too, as ssh does.

use std::{
    fs,
    io::{Read, Write},
    path::Path,
};

use orbi_types::{Base64Url, KeyPair, b64};
use serde::Deserialize;
use zeroize::Zeroizing;

/// The largest key file read.
pub const MAX_KEY_FILE_BYTES: u64 = 4096;

/// Why a key file could not be read or written. Messages name the file, never the secret.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// Reading failed.
    #[error("cannot read key file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Writing failed (nothing was left behind under the target name).
    #[error("cannot write key file {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The target exists and overwriting was not asked for.
    #[error("key file {path} already exists; refusing to overwrite it")]
    Exists {
        /// The file.
        path: String,
    },
    /// Group or others may read the file.
    #[error("key file {path} has mode {mode:o}, readable by others; run `chmod 600 {path}`")]
    Permissions {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The path names a directory, a FIFO, a device or another non-regular file (opening a
    /// FIFO to read would wait for a writer forever).
    #[error("key file {path} is not a regular file")]
    NotAFile {
        /// The path.
        path: String,
    },
    /// The content is not a key file.
    #[error("key file {path} is malformed: {reason}")]
    Malformed {
        /// The file.
        path: String,
        /// What is wrong (never the secret).
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileDoc {
    #[serde(rename = "key/alg")]
    alg: String,
    #[serde(rename = "key/secret")]
    secret: String,
    #[serde(rename = "key/public")]
    public: String,
    #[serde(rename = "node/id")]
    node_id: String,
    #[serde(rename = "participant/id")]
    participant_id: String,
}

/// The key file text for `key`. The result holds the secret and is wiped on drop.
pub fn encode(key: &KeyPair) -> Zeroizing<String> {
    let secret = Zeroizing::new(b64::encode(&*Zeroizing::new(key.seed())));
    Zeroizing::new(format!(
        "{{\n  \"key/alg\": \"ed25519\",\n  \"key/secret\": \"{}\",\n  \"key/public\": \"{}\",\n  \
         \"node/id\": \"{}\",\n  \"participant/id\": \"{}\"\n}}\n",
        secret.as_str(),
        key.did_key(),
        key.node_id(),
        key.participant_id()
    ))
}

/// Parses key file text; `path` only labels errors.
pub fn decode(text: &[u8], path: &str) -> Result<KeyPair, KeyFileError> {
    let malformed = |reason: String| KeyFileError::Malformed {
        path: path.to_owned(),
        reason,
    };
    let doc: KeyFileDoc =
        serde_json::from_slice(text).map_err(|err| malformed(parse_problem(&err)))?;
    let secret = Zeroizing::new(doc.secret);
    // No value found in the file is quoted in an error: a secret pasted into the wrong member
    // would end up on the terminal.
    if doc.alg != "ed25519" {
        return Err(malformed(
            "key/alg is not ed25519, the only supported algorithm".into(),
        ));
    }
    let seed = Base64Url::parse(&secret)
        .ok()
        .and_then(|text| text.decode().ok())
        .map(Zeroizing::new)
        .and_then(|bytes| {
            <[u8; 32]>::try_from(bytes.as_slice())
                .ok()
                .map(Zeroizing::new)
        })
        .ok_or_else(|| {
            malformed("key/secret is not 43 unpadded base64url characters (32 bytes)".into())
        })?;
    let key = KeyPair::from_seed(&seed);
    for (field, stored, derived) in [
        ("key/public", &doc.public, key.did_key().to_string()),
        ("node/id", &doc.node_id, key.node_id().to_string()),
        (
            "participant/id",
            &doc.participant_id,
            key.participant_id().to_string(),
        ),
    ] {
        if *stored != derived {
            return Err(malformed(format!(
                "{field} does not belong to the secret key (expected {derived:?})"
            )));
        }
    }
    Ok(key)
}

/// What is wrong with text that did not parse as a key file, without any of its content:
/// serde_json quotes the values it met ("invalid type: string …", "unknown field …"), which
/// could be the secret. Only the names of missing members, which are ours, are kept.
fn parse_problem(err: &serde_json::Error) -> String {
    let at = format!("at line {} column {}", err.line(), err.column());
    let message = err.to_string();
    match err.classify() {
        serde_json::error::Category::Data => match message.strip_prefix("missing field ") {
            Some(rest) => format!(
                "missing member {}",
                rest.split(' ').next().unwrap_or_default()
            ),
            None => format!(
                "not a key file object (the members key/alg, key/secret, key/public, node/id \
                 and participant/id, each a string, and no others) {at}"
            ),
        },
        serde_json::error::Category::Syntax => format!("not valid JSON {at}"),
        serde_json::error::Category::Eof => format!("the JSON ends early {at}"),
        serde_json::error::Category::Io => "cannot be read".into(),
    }
}

/// Writes `key` to `path` with mode 0600: a temporary file in the same directory, synced, then
/// renamed into place (and the directory synced), so the target is never half-written.
/// Refuses an existing target unless `overwrite`.
pub fn write(path: &Path, key: &KeyPair, overwrite: bool) -> Result<(), KeyFileError> {
    let shown = path.display().to_string();
    let failed = |source: std::io::Error| KeyFileError::Write {
        path: shown.clone(),
        source,
    };
    if !overwrite && path.exists() {
        return Err(KeyFileError::Exists { path: shown });
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".orbi-key-")
        .tempfile_in(dir)
        .map_err(failed)?;
    restrict(temp.as_file()).map_err(failed)?;
    temp.write_all(encode(key).as_bytes()).map_err(failed)?;
    temp.as_file().sync_all().map_err(failed)?;
    if overwrite {
        temp.persist(path).map_err(|err| failed(err.error))?;
    } else {
        temp.persist_noclobber(path).map_err(|err| {
            if err.error.kind() == std::io::ErrorKind::AlreadyExists {
                KeyFileError::Exists {
                    path: shown.clone(),
                }
            } else {
                failed(err.error)
            }
        })?;
    }
    sync_dir(dir).map_err(failed)
}

/// Reads the key at `path`, refusing files others may read (Unix) and anything malformed.
pub fn read(path: &Path) -> Result<KeyPair, KeyFileError> {
    let shown = path.display().to_string();
    let failed = |source: std::io::Error| KeyFileError::Read {
        path: shown.clone(),
        source,
    };
    let file = open_without_waiting(path).map_err(failed)?;
    if !file.metadata().map_err(failed)?.is_file() {
        return Err(KeyFileError::NotAFile { path: shown });
    }
    check_private(&file, &shown)?;
    let mut text = Zeroizing::new(Vec::new());
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(failed)?;
    if text.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(KeyFileError::Malformed {
            path: shown,
            reason: format!("larger than {MAX_KEY_FILE_BYTES} bytes"),
        });
    }
    decode(&text, &shown)
}

/// Opens `path` for reading without waiting (`O_NONBLOCK`, which a regular file's reads
/// ignore): opening a FIFO would otherwise wait for a writer. Only a lease on a regular file (an
/// NFS delegation, a Samba oplock), which fails a non-blocking open at once, is waited for with
/// a blocking open. The caller still checks what it opened (key files and the CLI's inputs
/// read only regular files).
pub fn open_without_waiting(path: &Path) -> std::io::Result<fs::File> {
    open_without_waiting_with(path, |path, nonblocking| {
        let mut options = fs::File::options();
        options.read(true);
        #[cfg(unix)]
        if nonblocking {
            std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
        }
        #[cfg(not(unix))]
        let _ = nonblocking;
        options.open(path)
    })
}

/// [`open_without_waiting`] with the opening itself given (`open(path, nonblocking)`).
fn open_without_waiting_with(
    path: &Path,
    open: impl Fn(&Path, bool) -> std::io::Result<fs::File>,
) -> std::io::Result<fs::File> {
    match open(path, true) {
        Err(error)
            if error.kind() == std::io::ErrorKind::WouldBlock
                && fs::metadata(path).is_ok_and(|m| m.is_file()) =>
        {
            open(path, false)
        }
        opened => opened,
    }
}

#[cfg(unix)]
fn restrict(file: &fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn restrict(_: &fs::File) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn check_private(file: &fs::File, path: &str) -> Result<(), KeyFileError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = file
        .metadata()
        .map_err(|source| KeyFileError::Read {
            path: path.to_owned(),
            source,
        })?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions {
            path: path.to_owned(),
            mode: mode & 0o777,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_: &fs::File, _: &str) -> Result<(), KeyFileError> {
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn written_file_is_private_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let key = KeyPair::from_seed(&[0x2a; 32]);
        write(&path, &key, false).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(read(&path).unwrap().seed(), key.seed());
        // Only the key file is left in the directory: the temporary file was renamed.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(matches!(
            write(&path, &KeyPair::from_seed(&[1; 32]), false),
            Err(KeyFileError::Exists { .. })
        ));
        assert_eq!(read(&path).unwrap().seed(), key.seed());
        write(&path, &KeyPair::from_seed(&[1; 32]), true).unwrap();
        assert_eq!(read(&path).unwrap().seed(), [1; 32]);
    }

    #[cfg(unix)]
    #[test]
    fn readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        write(&path, &KeyPair::from_seed(&[3; 32]), false).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let err = read(&path).unwrap_err();
        assert!(matches!(err, KeyFileError::Permissions { mode: 0o644, .. }));
        assert!(err.to_string().contains("chmod 600"));
    }

    #[test]
    fn malformed_files_are_refused_without_echoing_the_secret() {
        let key = KeyPair::from_seed(&[0x2a; 32]);
        let good = encode(&key);
        let secret = b64::encode(&key.seed());
        let cases = [
            good.replace("\"ed25519\"", "\"rsa\""),
            good.replace(&secret, &format!("{secret}A")),
            good.replace(&secret, &secret[..42]),
            good.replace(
                &key.did_key().to_string(),
                "z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK",
            ),
            good.replace("\"node/id\"", "\"node/idx\""),
            good.replace('}', ", \"extra\": 1}"),
            good.replace(
                "\"key/alg\": \"ed25519\",",
                "\"key/alg\": \"ed25519\", \"key/alg\": \"ed25519\",",
            ),
            "[]".to_owned(),
        ];
        for case in cases {
            let err = decode(case.as_bytes(), "k.json").unwrap_err();
            assert!(matches!(err, KeyFileError::Malformed { .. }), "{case}");
            assert!(!err.to_string().contains(&secret), "{err}");
        }
    }

    #[test]
    fn malformed_files_never_echo_what_they_hold() {
        let key = KeyPair::from_seed(&[0x2a; 32]);
        let secret = b64::encode(&key.seed());
        let good = encode(&key);
        let cases = [
            (format!("\"{secret}\"\n"), "not a key file object"),
            (format!("[\"{secret}\"]"), "not a key file object"),
            (
                good.replace("\"key/alg\"", &format!("\"{secret}\"")),
                "not a key file object",
            ),
            (
                good.replace("\"ed25519\"", &format!("\"{secret}\"")),
                "key/alg is not ed25519",
            ),
            (
                good.replace(key.did_key().as_str(), &secret),
                "key/public does not belong",
            ),
            (
                good.replace(key.node_id().as_str(), &secret),
                "node/id does not belong",
            ),
            (good.replace("\"ed25519\"", "42"), "not a key file object"),
            (format!("{{\"key/secret\": \"{secret}\""), "ends early"),
            (
                format!("{{\"key/secret\": \"{secret}\" x"),
                "not valid JSON",
            ),
        ];
        for (case, expected) in cases {
            let err = decode(case.as_bytes(), "k.json").unwrap_err().to_string();
            assert!(!err.contains(&secret), "secret echoed: {err}");
            assert!(err.contains(expected), "{err:?} should say {expected:?}");
        }
        let missing = good.replace(",\n  \"participant/id\"", ",\n  \"x\"");
        let err = decode(missing.as_bytes(), "k.json")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a key file object"), "{err}");
        let no_node = format!(
            "{{\"key/alg\": \"ed25519\", \"key/secret\": \"{secret}\", \"key/public\": \"{}\", \
             \"participant/id\": \"{}\"}}",
            key.did_key(),
            key.participant_id()
        );
        let err = decode(no_node.as_bytes(), "k.json")
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("missing member `node/id`"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn only_a_regular_file_is_read_as_a_key() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("keys");
        fs::create_dir(&sub).unwrap();
        fs::set_permissions(&sub, fs::Permissions::from_mode(0o755)).unwrap();
        assert!(
            matches!(read(&sub), Err(KeyFileError::NotAFile { .. })),
            "{:?}",
            read(&sub)
        );
        let fifo = dir.path().join("fifo.key");
        let status = std::process::Command::new("mkfifo")
            .arg("-m")
            .arg("600")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        // Without the check this waits for a writer forever.
        let (done, result) = std::sync::mpsc::channel();
        std::thread::spawn(move || done.send(read(&fifo).map(|_| ())));
        let outcome = result
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("reading a FIFO as a key file must not block");
        assert!(
            matches!(outcome, Err(KeyFileError::NotAFile { .. })),
            "{outcome:?}"
        );
    }

    #[test]
    fn a_leased_key_file_is_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        fs::write(&path, b"x").unwrap();
        let tries = std::cell::RefCell::new(Vec::new());
        let leased = |path: &Path, nonblocking: bool| {
            tries.borrow_mut().push(nonblocking);
            if nonblocking {
                Err(std::io::Error::from(std::io::ErrorKind::WouldBlock))
            } else {
                fs::File::open(path)
            }
        };
        open_without_waiting_with(&path, leased).unwrap();
        assert_eq!(*tries.borrow(), [true, false]);
        tries.borrow_mut().clear();
        assert!(open_without_waiting_with(dir.path(), leased).is_err());
        assert_eq!(
            *tries.borrow(),
            [true],
            "a directory is never opened blocking"
        );
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let key = KeyPair::from_seed(&[0x2a; 32]);
        assert!(!format!("{key:?}").contains(&b64::encode(&key.seed())));
    }

    proptest! {
        #[test]
        fn any_seed_round_trips(seed in any::<[u8; 32]>()) {
            let key = KeyPair::from_seed(&seed);
            prop_assert_eq!(decode(encode(&key).as_bytes(), "k").unwrap().seed(), seed);
        }
    }
}
