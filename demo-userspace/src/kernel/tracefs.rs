//! Makes sure tracefs is mounted and checks tracepoint formats against what the eBPF side assumes.

use std::{
    fs,
    path::{Path, PathBuf},
};

use nix::mount::{MsFlags, mount};

/// Where tracefs lives on current kernels.
const TRACEFS: &str = "/sys/kernel/tracing";
/// The older place, under debugfs, which aya also looks at.
const DEBUGFS_TRACING: &str = "/sys/kernel/debug/tracing";

/// Failures to reach or understand tracefs.
#[derive(Debug, thiserror::Error)]
pub enum TracefsError {
    #[error(
        "tracefs is not mounted and mounting it at {TRACEFS} failed ({0}); mount it with `mount -t tracefs nodev {TRACEFS}` or run demo with CAP_SYS_ADMIN"
    )]
    MountFailed(nix::Error),
    #[error(
        "this kernel has no tracepoint {category}:{name} ({path} is missing); demo needs a kernel with the exceptions tracepoints (x86-64)"
    )]
    MissingTracepoint {
        category: String,
        name: String,
        path: PathBuf,
    },
    #[error("read the format of tracepoint {category}:{name}: {source}")]
    ReadFormat {
        category: String,
        name: String,
        source: std::io::Error,
    },
    #[error(
        "tracepoint {category}:{name} has field `{field}` at offset {found:?}, but the eBPF programs read offset {expected}"
    )]
    FieldMismatch {
        category: String,
        name: String,
        field: String,
        expected: usize,
        found: Option<usize>,
    },
}

/// Returns the tracing directory, mounting tracefs first when no tracing directory is there.
pub fn ensure_mounted() -> Result<PathBuf, TracefsError> {
    for dir in [TRACEFS, DEBUGFS_TRACING] {
        if Path::new(dir).join("events").is_dir() {
            return Ok(PathBuf::from(dir));
        }
    }
    log::info!("tracefs is not mounted; mounting it at {TRACEFS}");
    mount(
        Some("nodev"),
        TRACEFS,
        Some("tracefs"),
        MsFlags::empty(),
        None::<&str>,
    )
    .map_err(TracefsError::MountFailed)?;
    Ok(PathBuf::from(TRACEFS))
}

/// Checks that tracepoint `category:name` exists and has each `(field, offset)` where expected.
pub fn check_fields(
    tracing: &Path,
    category: &str,
    name: &str,
    expected: &[(&str, usize)],
) -> Result<(), TracefsError> {
    let path = tracing
        .join("events")
        .join(category)
        .join(name)
        .join("format");
    if !path.exists() {
        return Err(TracefsError::MissingTracepoint {
            category: category.to_owned(),
            name: name.to_owned(),
            path,
        });
    }
    let format = fs::read_to_string(&path).map_err(|source| TracefsError::ReadFormat {
        category: category.to_owned(),
        name: name.to_owned(),
        source,
    })?;
    for &(field, offset) in expected {
        let found = field_offset(&format, field);
        if found != Some(offset) {
            return Err(TracefsError::FieldMismatch {
                category: category.to_owned(),
                name: name.to_owned(),
                field: field.to_owned(),
                expected: offset,
                found,
            });
        }
    }
    Ok(())
}

/// Finds the offset of `field` in a tracepoint format file, whose lines look like
/// `field:unsigned long address;<TAB>offset:8;<TAB>size:8;<TAB>signed:0;`.
fn field_offset(format: &str, field: &str) -> Option<usize> {
    format.lines().find_map(|line| {
        let declaration = line.trim().strip_prefix("field:")?;
        let (declaration, rest) = declaration.split_once(';')?;
        let declared_name = declaration.rsplit([' ', '*']).next()?;
        if declared_name != field {
            return None;
        }
        let offset = rest.trim().strip_prefix("offset:")?;
        offset.split(';').next()?.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE_FAULT_USER: &str = "name: page_fault_user
ID: 118
format:
	field:unsigned short common_type;	offset:0;	size:2;	signed:0;
	field:unsigned char common_flags;	offset:2;	size:1;	signed:0;
	field:unsigned char common_preempt_count;	offset:3;	size:1;	signed:0;
	field:int common_pid;	offset:4;	size:4;	signed:1;

	field:unsigned long address;	offset:8;	size:8;	signed:0;
	field:unsigned long ip;	offset:16;	size:8;	signed:0;
	field:unsigned long error_code;	offset:24;	size:8;	signed:0;

print fmt: \"address=%ps ip=%ps error_code=0x%lx\"
";

    #[test]
    fn reads_field_offsets_from_a_format_file() {
        assert_eq!(field_offset(PAGE_FAULT_USER, "address"), Some(8));
        assert_eq!(field_offset(PAGE_FAULT_USER, "ip"), Some(16));
        assert_eq!(field_offset(PAGE_FAULT_USER, "error_code"), Some(24));
        assert_eq!(field_offset(PAGE_FAULT_USER, "common_pid"), Some(4));
        assert_eq!(field_offset(PAGE_FAULT_USER, "missing"), None);
    }

    #[test]
    fn reports_a_missing_tracepoint_and_a_moved_field() {
        let dir = std::env::temp_dir().join(format!("demo-tracefs-{}", std::process::id()));
        let event = dir.join("events/exceptions/page_fault_user");
        fs::create_dir_all(&event).unwrap();
        fs::write(event.join("format"), PAGE_FAULT_USER).unwrap();
        assert!(check_fields(&dir, "exceptions", "page_fault_user", &[("ip", 16)]).is_ok());
        let moved = check_fields(&dir, "exceptions", "page_fault_user", &[("ip", 12)]);
        assert!(matches!(
            moved,
            Err(TracefsError::FieldMismatch {
                found: Some(16),
                ..
            })
        ));
        let missing = check_fields(&dir, "exceptions", "nope", &[]);
        assert!(matches!(
            missing,
            Err(TracefsError::MissingTracepoint { .. })
        ));
        fs::remove_dir_all(dir).unwrap();
    }
}
