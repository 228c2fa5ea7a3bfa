//! When a node mines.

use std::fmt;
use std::str::FromStr;

/// The node's mining mode (`--mine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MiningMode {
    /// Never mine.
    Off,
    /// One block per request (`GET /mine`, `POST /v1/mine`), as in the tutorials.
    #[default]
    OnDemand,
    /// Mine all the time.
    Continuous,
    /// Mine when at least this many transfers wait, as the Socket.io tutorial did.
    Pool(u32),
}

/// A `--mine` value that is none of the modes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown mining mode {0:?}: expected off, on-demand, continuous or pool:N (N >= 1)")]
pub struct UnknownMode(pub String);

impl FromStr for MiningMode {
    type Err = UnknownMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" => Ok(MiningMode::Off),
            "on-demand" => Ok(MiningMode::OnDemand),
            "continuous" => Ok(MiningMode::Continuous),
            _ => s
                .strip_prefix("pool:")
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|n| *n >= 1)
                .map(MiningMode::Pool)
                .ok_or_else(|| UnknownMode(s.chars().take(40).collect())),
        }
    }
}

impl fmt::Display for MiningMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MiningMode::Off => f.write_str("off"),
            MiningMode::OnDemand => f.write_str("on-demand"),
            MiningMode::Continuous => f.write_str("continuous"),
            MiningMode::Pool(n) => write!(f, "pool:{n}"),
        }
    }
}

impl MiningMode {
    /// Whether a node in this mode should be mining now, with `waiting` transfers in its
    /// mempool. On-demand mining happens per request, never on its own.
    pub fn should_mine(self, waiting: usize) -> bool {
        match self {
            MiningMode::Off | MiningMode::OnDemand => false,
            MiningMode::Continuous => true,
            MiningMode::Pool(n) => waiting >= n as usize,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_every_mode() {
        for (text, mode) in [
            ("off", MiningMode::Off),
            ("on-demand", MiningMode::OnDemand),
            ("continuous", MiningMode::Continuous),
            ("pool:2", MiningMode::Pool(2)),
        ] {
            assert_eq!(text.parse::<MiningMode>().unwrap(), mode);
            assert_eq!(mode.to_string(), text);
        }
        for bad in [
            "",
            "on",
            "pool",
            "pool:",
            "pool:0",
            "pool:-1",
            "pool:x",
            "Continuous",
        ] {
            assert!(bad.parse::<MiningMode>().is_err(), "{bad}");
        }
    }

    #[test]
    fn pool_mode_waits_for_enough_transfers() {
        assert!(!MiningMode::Pool(2).should_mine(1));
        assert!(MiningMode::Pool(2).should_mine(2));
        assert!(MiningMode::Continuous.should_mine(0));
        assert!(!MiningMode::OnDemand.should_mine(100));
        assert!(!MiningMode::Off.should_mine(100));
    }
}
