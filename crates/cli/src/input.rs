//! Local files the user names (`--milestones`, `dialtone metrics FILE`, or `-` for standard
//! input), read under a bound: a wrong path such as `/dev/zero` is an error, not a machine
//! out of memory.

use std::io::Read;
use std::path::Path;

use anyhow::Context;

/// Largest milestone log or metrics input read: a day of a busy app's JSONL is far less.
pub(crate) const MAX_LOG_BYTES: u64 = 1 << 30;

/// The bytes of `path` (`-`: standard input), refused past `max` bytes without reading
/// further. `what` names the input in errors.
pub(crate) fn read_limited(path: &Path, max: u64, what: &str) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let source: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            std::fs::File::open(path)
                .with_context(|| format!("cannot read {what} {}", path.display()))?,
        )
    };
    source
        .take(max + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {what} {}", path.display()))?;
    if bytes.len() as u64 > max {
        anyhow::bail!(
            "{what} {} is over the {max}-byte limit for it",
            path.display()
        );
    }
    Ok(bytes)
}

/// [`read_limited`] as text; invalid UTF-8 is replaced (U+FFFD), so a few bad bytes cost
/// the lines they are on, not the whole log.
pub(crate) fn read_text_limited(path: &Path, max: u64, what: &str) -> anyhow::Result<String> {
    let bytes = read_limited(path, max, what)?;
    Ok(String::from_utf8(bytes)
        .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endless_file_is_refused_at_the_bound() {
        let e = read_limited(Path::new("/dev/zero"), 1024, "--milestones").unwrap_err();
        assert!(e.to_string().contains("over the 1024-byte limit"), "{e}");
    }

    #[test]
    fn a_file_within_the_bound_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.jsonl");
        std::fs::write(&p, b"{}\n\xff\n").unwrap();
        assert_eq!(read_text_limited(&p, 16, "x").unwrap(), "{}\n\u{fffd}\n");
    }
}
