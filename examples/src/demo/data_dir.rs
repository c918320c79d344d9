//! Where the SQLite files of a run go: the `--data-dir` flag, or a temporary directory that
//! leaves nothing behind.

use std::io;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The `--data-dir DIR` flag of the demo binaries, to flatten into their `clap` arguments so
/// every binary documents and parses it the same way.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DataDirArg {
    /// Directory for the SQLite files, created if missing and kept afterwards [default: a
    /// fresh temporary directory, removed at the end]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

impl DataDirArg {
    /// The directory the flag names, or a fresh temporary `cqrs-examples-<uuid>`.
    pub fn open(self) -> io::Result<DataDir> {
        DataDir::new(self.data_dir, "cqrs-examples")
    }
}

/// The directory holding a run's SQLite files: given by the user, or a fresh one under the
/// system's temp dir that is removed on drop so repeated runs leave nothing behind.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    temporary: bool,
}

impl DataDir {
    /// `given` (created if missing, kept on drop), or without it a new, empty directory
    /// `<temp_prefix>-<uuid>` under `std::env::temp_dir()`, removed on drop.
    pub fn new(given: Option<PathBuf>, temp_prefix: &str) -> io::Result<Self> {
        let (path, temporary) = match given {
            Some(path) => (path, false),
            None => {
                let name = format!("{temp_prefix}-{}", Uuid::new_v4());
                (std::env::temp_dir().join(name), true)
            }
        };
        std::fs::create_dir_all(&path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create data dir {}: {e}", path.display()),
            )
        })?;
        Ok(Self { path, temporary })
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        if self.temporary {
            // Best effort: a leftover temp dir is harmless, and drop cannot report.
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// A binary's arguments, as the demo binaries declare them.
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        data_dir: DataDirArg,
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("demo").chain(args.iter().copied()))
    }

    #[test]
    fn a_temporary_data_dir_is_removed_on_drop() {
        let dir = parse(&[]).unwrap().data_dir.open().unwrap();
        let path = dir.path().to_owned();
        assert!(path.is_dir());
        assert!(path.starts_with(std::env::temp_dir()));
        assert!(path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("cqrs-examples-"));
        drop(dir);
        assert!(!path.exists());
    }

    #[test]
    fn a_given_data_dir_is_created_and_kept() {
        let parent = tempfile::tempdir().unwrap();
        let wanted = parent.path().join("demo");
        let cli = parse(&["--data-dir", wanted.to_str().unwrap()]).unwrap();
        let dir = cli.data_dir.open().unwrap();
        assert_eq!(dir.path(), wanted);
        drop(dir);
        assert!(wanted.is_dir());
    }

    #[test]
    fn a_data_dir_that_cannot_be_created_is_named_in_the_error() {
        let parent = tempfile::tempdir().unwrap();
        let file = parent.path().join("a-file");
        std::fs::write(&file, "").unwrap();
        let err = DataDir::new(Some(file.join("below")), "x").unwrap_err();
        assert!(err.to_string().contains("a-file"), "{err}");
    }

    #[test]
    fn unknown_or_incomplete_flags_are_refused() {
        assert!(parse(&["--data-dir"]).is_err());
        assert!(parse(&["--db", "x"]).is_err());
        assert!(parse(&["--data-dir", "a", "b"]).is_err());
    }
}
