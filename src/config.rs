//! Configuration: a flat JSON object, parsed with serde-json-core into fixed-size fields.
//!
//! STUB: to be implemented (see the config/clock/logger task).

// TEMPORARY (replaced by the config branch).
pub fn write_atomic(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(d) = path.parent() {
        std::fs::File::open(if d.as_os_str().is_empty() { std::path::Path::new(".") } else { d })?.sync_all()?;
    }
    Ok(())
}
