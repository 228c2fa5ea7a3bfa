//! What a node says of itself in identify's agent string: `oxchain/VERSION`, and with
//! `--name`, ` name=NAME miner=ADDRESS` (the address its coinbases pay). Peers show the
//! name, so that a devnet's nodes appear as `node-1` rather than as peer ids and
//! ephemeral ports, and the explorer names the node behind a block's miner address.
//!
//! Both are claims: nothing checks them, and nothing but display uses them. A name is 1
//! to [`MAX_NAME`] characters of `A-Z a-z 0-9 . _ -`; an address must be one of this
//! network's. Anything else in the string is ignored.

use oxchain_primitives::{Address, Network};

/// The longest name told or taken.
pub const MAX_NAME: usize = 32;

/// What a peer said of itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Said {
    /// Its name.
    pub name: Option<String>,
    /// The address it says its coinbases pay.
    pub miner: Option<String>,
    /// The first address it listens on that can be dialled, as it said.
    pub listen: Option<String>,
}

/// Whether `name` is a name a node may go by.
pub fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The agent string this node sends: with its name and miner address when it has a name.
pub fn agent_version(name: Option<&(String, String)>) -> String {
    let product = format!("oxchain/{}", env!("CARGO_PKG_VERSION"));
    match name {
        Some((name, miner)) => format!("{product} name={name} miner={miner}"),
        None => product,
    }
}

impl Said {
    /// What a peer's agent string says, keeping only a valid name and an address of
    /// `network`.
    pub fn parse(agent: &str, network: Network) -> Said {
        let mut said = Said::default();
        // Only the first few words: an agent string is at most a few KiB, but nothing
        // beyond the two fields is read.
        for word in agent.split_ascii_whitespace().skip(1).take(8) {
            match word.split_once('=') {
                Some(("name", name)) if valid_name(name) => said.name = Some(name.to_string()),
                Some(("miner", text)) if text.len() <= 100 => {
                    if let Ok(address) = Address::parse(text, network) {
                        said.miner = Some(address.to_bech32(network));
                    }
                }
                _ => {}
            }
        }
        said
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_named_agent_round_trips_and_junk_is_dropped() {
        let miner = Address([3; 20]).to_bech32(Network::Dev);
        let agent = agent_version(Some(&("node-1".into(), miner.clone())));
        assert!(agent.starts_with("oxchain/"), "{agent}");
        let said = Said::parse(&agent, Network::Dev);
        assert_eq!(said.name.as_deref(), Some("node-1"));
        assert_eq!(said.miner.as_deref(), Some(miner.as_str()));
        // Another network's address, a name with markup or too long: dropped.
        assert_eq!(Said::parse(&agent, Network::Regtest).miner, None);
        for bad in ["<b>x</b>", "", &"n".repeat(33), "a;b"] {
            let said = Said::parse(&format!("oxchain/1 name={bad}"), Network::Dev);
            assert_eq!(said.name, None, "{bad:?}");
        }
        assert_eq!(Said::parse("oxchain/0.1.0", Network::Dev), Said::default());
        assert_eq!(
            agent_version(None),
            format!("oxchain/{}", env!("CARGO_PKG_VERSION"))
        );
    }
}
