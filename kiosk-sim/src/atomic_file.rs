//! Crash-safe file writes: a reader sees either the old content or the new, never a
//! torn file. Used for the card's PIN counter and for "printed" documents.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// A sibling temp name, unique per call, so two writers never share a temp file.
fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()))
}

fn write_temp(temp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Card files hold a key seed and the PIN; documents hold personal data.
        // Neither should be readable by other local users.
        options.mode(0o600);
    }
    let mut file = options.open(temp)?;
    file.write_all(bytes)?;
    // Data must be on disk before the rename makes it visible, or a crash could
    // publish an empty file under the final name.
    file.sync_all()
}

fn sync_parent(path: &Path) {
    // Makes the rename itself durable. Some file systems refuse fsync on a directory;
    // the rename is still atomic there, so a failure here is not worth failing for.
    if let Some(parent) = path.parent() {
        if let Ok(dir) = File::open(parent) {
            let _ = dir.sync_all();
        }
    }
}

/// Replaces `path` with `bytes` atomically (temp file in the same directory + rename).
pub(crate) fn replace(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = temp_sibling(path);
    let result = write_temp(&temp, bytes).and_then(|()| std::fs::rename(&temp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result?;
    sync_parent(path);
    Ok(())
}

/// Creates `path` with `bytes` atomically and fails with `AlreadyExists` if `path`
/// exists: the final name is bound with a hard link, which never overwrites.
pub(crate) fn create_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = temp_sibling(path);
    let result = write_temp(&temp, bytes).and_then(|()| std::fs::hard_link(&temp, path));
    let _ = std::fs::remove_file(&temp);
    result?;
    sync_parent(path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_overwrites_and_create_new_does_not() {
        let dir = std::env::temp_dir().join(format!("kiosk-atomic-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f.json");
        replace(&path, b"one").unwrap();
        replace(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let err = create_new(&path, b"three").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        create_new(&dir.join("g.pdf"), b"new").unwrap();
        // No temp files are left behind.
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["f.json", "g.pdf"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
