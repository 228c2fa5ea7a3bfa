//! The four networks. Each has its own genesis, chain parameters (in `oxchain-consensus`)
//! and address prefix, so an address of one network is never taken for one of another.

use std::fmt;
use std::str::FromStr;

/// Which chain a node follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Network {
    /// The main network.
    Main,
    /// The public test network.
    Test,
    /// A local development network: dev accounts funded in genesis, quick blocks.
    Dev,
    /// Regression tests: dev accounts, a fixed trivial target (PoW still checked).
    Regtest,
}

impl Network {
    /// All networks, in a fixed order.
    pub const ALL: [Network; 4] = [Network::Main, Network::Test, Network::Dev, Network::Regtest];

    /// The name used on the command line, in config files and data directory names.
    pub fn name(self) -> &'static str {
        match self {
            Network::Main => "main",
            Network::Test => "test",
            Network::Dev => "dev",
            Network::Regtest => "regtest",
        }
    }

    /// The bech32m human-readable prefix of this network's addresses.
    pub fn address_prefix(self) -> &'static str {
        match self {
            Network::Main => "ox",
            Network::Test => "oxt",
            Network::Dev => "oxd",
            Network::Regtest => "oxr",
        }
    }

    /// The one-byte tag stored in a data directory's metadata.
    pub fn id(self) -> u8 {
        match self {
            Network::Main => 0,
            Network::Test => 1,
            Network::Dev => 2,
            Network::Regtest => 3,
        }
    }

    /// Whether the insecure dev accounts (alice, bob, ...) exist on this network.
    pub fn has_dev_accounts(self) -> bool {
        matches!(self, Network::Dev | Network::Regtest)
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A network name that is not one of `main`, `test`, `dev`, `regtest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown network {0:?}: expected one of main, test, dev, regtest")]
pub struct UnknownNetwork(pub String);

impl FromStr for Network {
    type Err = UnknownNetwork;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Network::ALL
            .into_iter()
            .find(|n| n.name() == s)
            .ok_or_else(|| UnknownNetwork(s.chars().take(40).collect()))
    }
}
