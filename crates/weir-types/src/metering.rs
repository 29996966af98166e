use serde::{Deserialize, Serialize};

/// Resources one task used, measured on its child process (wait4/getrusage),
/// including the child's own waited-for descendants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Metering {
    /// Wall time from spawn to exit, in seconds.
    pub wall_s: f64,
    /// User CPU seconds.
    pub cpu_user_s: f64,
    /// System CPU seconds.
    pub cpu_sys_s: f64,
    /// Peak resident set size, in KiB.
    pub max_rss_kib: u64,
}

impl Metering {
    pub fn cpu_s(&self) -> f64 {
        self.cpu_user_s + self.cpu_sys_s
    }
}
