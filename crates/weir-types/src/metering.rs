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
    /// weir's own peak RSS when it spawned the child, in KiB. Linux folds
    /// the spawning process's high-water mark into the child's peak when a
    /// vfork-style spawn execs, so when `max_rss_kib` is not above this
    /// floor the child's own peak is only known to be at most this much.
    #[serde(default)]
    pub rss_floor_kib: u64,
}

impl Metering {
    pub fn cpu_s(&self) -> f64 {
        self.cpu_user_s + self.cpu_sys_s
    }

    /// Whether `max_rss_kib` is the child's own peak rather than an upper
    /// bound inherited from weir (see `rss_floor_kib`). The floor is read
    /// just before the spawn and weir's RSS can grow a little in between,
    /// hence the slack.
    pub fn rss_is_exact(&self) -> bool {
        self.max_rss_kib > self.rss_floor_kib.saturating_add(Self::RSS_FLOOR_SLACK_KIB)
    }

    /// How far weir's own RSS may grow between reading the floor and the
    /// spawn (measured jitter is well under this).
    pub const RSS_FLOOR_SLACK_KIB: u64 = 2048;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peak_within_the_slack_of_the_floor_is_not_exact() {
        let m = |max, floor| Metering {
            max_rss_kib: max,
            rss_floor_kib: floor,
            ..Metering::default()
        };
        assert!(!m(13_000, 13_000).rss_is_exact());
        assert!(!m(13_500, 13_000).rss_is_exact());
        assert!(m(200_000, 13_000).rss_is_exact());
        assert!(m(3_000, 0).rss_is_exact(), "no floor recorded: exact");
    }
}
