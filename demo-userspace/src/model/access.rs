//! Decodes the x86 page-fault error code into the access that faulted and why.

use serde::Serialize;

/// The x86 page-fault error code pushed by the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ErrorCode(pub u64);

/// What the faulting instruction tried to do.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Read,
    Write,
    /// An instruction fetch.
    Exec,
    /// The source could not tell (the perf-event source).
    Unknown,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Exec => "exec",
            Self::Unknown => "unknown",
        }
    }
}

/// Which privilege level the CPU was at.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    User,
    Kernel,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Kernel => "kernel",
        }
    }
}

impl ErrorCode {
    const PROTECTION: u64 = 1 << 0;
    const WRITE: u64 = 1 << 1;
    const USER: u64 = 1 << 2;
    const RESERVED: u64 = 1 << 3;
    const INSTRUCTION: u64 = 1 << 4;
    const PROTECTION_KEY: u64 = 1 << 5;
    const SHADOW_STACK: u64 = 1 << 6;

    /// False when the fault's source could not see the error code; only the mode is known then.
    pub fn known(self) -> bool {
        self.0 & demo_common::ERROR_CODE_UNKNOWN == 0
    }

    /// True when the page was present, so the fault was a protection fault (e.g. copy on write).
    pub fn present(self) -> bool {
        self.known() && self.0 & Self::PROTECTION != 0
    }

    pub fn access(self) -> Access {
        if !self.known() {
            Access::Unknown
        } else if self.0 & Self::INSTRUCTION != 0 {
            Access::Exec
        } else if self.0 & Self::WRITE != 0 {
            Access::Write
        } else {
            Access::Read
        }
    }

    pub fn mode(self) -> Mode {
        if self.0 & Self::USER != 0 {
            Mode::User
        } else {
            Mode::Kernel
        }
    }

    /// A short human description, e.g. "write, page not present, user mode".
    pub fn describe(self) -> String {
        if !self.known() {
            return format!(
                "access unknown (no error code from this source), {} mode",
                self.mode().as_str()
            );
        }
        let mut parts = vec![
            self.access().as_str().to_owned(),
            if self.present() {
                "protection violation".to_owned()
            } else {
                "page not present".to_owned()
            },
            format!("{} mode", self.mode().as_str()),
        ];
        for (bit, name) in [
            (Self::RESERVED, "reserved bit set"),
            (Self::PROTECTION_KEY, "protection key"),
            (Self::SHADOW_STACK, "shadow stack"),
        ] {
            if self.0 & bit != 0 {
                parts.push(name.to_owned());
            }
        }
        parts.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_write_to_a_missing_page() {
        let code = ErrorCode(0x6);
        assert_eq!(code.access(), Access::Write);
        assert!(!code.present());
        assert_eq!(code.mode(), Mode::User);
        assert_eq!(code.describe(), "write, page not present, user mode");
    }

    #[test]
    fn copy_on_write_is_a_present_write() {
        let code = ErrorCode(0x7);
        assert!(code.present());
        assert_eq!(code.describe(), "write, protection violation, user mode");
    }

    #[test]
    fn an_unknown_error_code_keeps_only_the_mode() {
        let code = ErrorCode(demo_common::ERROR_CODE_UNKNOWN | 4);
        assert_eq!(code.access(), Access::Unknown);
        assert!(!code.present());
        assert_eq!(code.mode(), Mode::User);
        assert!(code.describe().starts_with("access unknown"));
    }

    #[test]
    fn kernel_read_and_instruction_fetch() {
        assert_eq!(
            ErrorCode(0x0).describe(),
            "read, page not present, kernel mode"
        );
        assert_eq!(ErrorCode(0x14).access(), Access::Exec);
        assert_eq!(
            ErrorCode(0x4c).describe(),
            "read, page not present, user mode, reserved bit set, shadow stack"
        );
    }
}
