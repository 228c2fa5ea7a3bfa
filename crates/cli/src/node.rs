//! `oxchain node`: runs a node until SIGINT or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args};
use oxchain_miner::MiningMode;
use oxchain_primitives::{Address, Network};

/// Options of `oxchain node`. Each also comes from its `OXCHAIN_*` variable, and then
/// from the config file (`--config FILE`, else `DATA_DIR/oxchain.toml` if it exists),
/// whose keys are these flags' names with `_` (ADR 0010).
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    /// The network: main, test, dev or regtest.
    #[arg(long, env = "OXCHAIN_NETWORK", default_value = "dev")]
    network: Network,
    /// Where the chain and keys live (default: the platform data dir/oxchain/NETWORK).
    #[arg(long, env = "OXCHAIN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Where the HTTP API listens. Off loopback, routes that change the node need the
    /// bearer token in DATA_DIR/api.cookie.
    #[arg(long, env = "OXCHAIN_API", default_value = "127.0.0.1:5000")]
    api: SocketAddr,
    /// Where to listen for peers: HOST:PORT or a multiaddr.
    #[arg(long, env = "OXCHAIN_P2P", default_value = "127.0.0.1:6000")]
    p2p: String,
    /// A peer to join (repeatable; comma-separated in OXCHAIN_PEERS): a multiaddr with
    /// /p2p/ID, a p2p HOST:PORT, or http://HOST:PORT of a node's API.
    #[arg(
        long = "peer",
        value_name = "ADDR",
        env = "OXCHAIN_PEERS",
        value_delimiter = ','
    )]
    peers: Vec<String>,
    /// Where others reach this node's p2p port, when that is not where it listens (a
    /// public IP in front of it): HOST:PORT or a multiaddr (repeatable; comma-separated
    /// in OXCHAIN_EXTERNAL_ADDRESS). Peers learn it through identify and discovery.
    #[arg(
        long = "external-address",
        value_name = "ADDR",
        env = "OXCHAIN_EXTERNAL_ADDRESS",
        value_delimiter = ',',
        value_parser = parse_external
    )]
    external_addresses: Vec<String>,
    /// For `oxchain lab` only (ADR 0019): hold everything sent to peers this long, a
    /// stand-in for a long link where the kernel has no netem.
    #[arg(long, hide = true, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    lab_latency_ms: u64,
    /// When to mine: off, on-demand (GET /mine), continuous, or pool:N (when N
    /// transfers wait).
    #[arg(long, env = "OXCHAIN_MINE", default_value = "on-demand")]
    mine: MiningMode,
    /// Where coinbases pay: an address, or the name of a key in DATA_DIR/wallet (default:
    /// a key the node keeps in DATA_DIR/miner.key).
    #[arg(long, env = "OXCHAIN_MINER_ADDRESS")]
    miner_address: Option<String>,
    /// Mining and signature-checking threads (default: one per CPU).
    #[arg(long, env = "OXCHAIN_THREADS", value_parser = clap::value_parser!(u64).range(1..=MAX_THREADS))]
    threads: Option<u64>,
    /// A web origin allowed to call the API from a browser (repeatable, comma-separated
    /// in OXCHAIN_CORS_ORIGIN; `*` for any).
    #[arg(long = "cors-origin", value_name = "ORIGIN", env = "OXCHAIN_CORS_ORIGIN", value_delimiter = ',', value_parser = parse_origin)]
    cors_origins: Vec<String>,
    /// A host name the API answers to, when the node is reached by a name other than
    /// localhost or an IP address (repeatable; comma-separated in OXCHAIN_API_HOST; `*`
    /// for any). Other names are refused, a guard against DNS rebinding (ADR 0022).
    #[arg(long = "api-host", value_name = "NAME", env = "OXCHAIN_API_HOST", value_delimiter = ',', value_parser = parse_host_name)]
    api_hosts: Vec<String>,
    /// A name for this node, shown by its peers and their explorers (1-32 of A-Z a-z 0-9
    /// . _ -). With a name, peers are also told the address this node's coinbases pay,
    /// so that explorers can say which node mined a block.
    #[arg(long, env = "OXCHAIN_NAME", value_parser = parse_name)]
    name: Option<String>,
    /// A TOML file with any of these settings (keys: network, data_dir, api, p2p, peers,
    /// external_addresses, mine, miner_address, threads, cors_origins, api_hosts, name).
    /// Flags and OXCHAIN_* override it.
    /// Default: DATA_DIR/oxchain.toml, if it exists.
    #[arg(long, env = "OXCHAIN_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
}

/// The most threads `--threads` takes.
const MAX_THREADS: u64 = 1024;

/// `oxchain.toml`: the same settings as the flags.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    network: Option<String>,
    data_dir: Option<PathBuf>,
    api: Option<String>,
    p2p: Option<String>,
    peers: Option<Vec<String>>,
    external_addresses: Option<Vec<String>>,
    mine: Option<String>,
    miner_address: Option<String>,
    /// Signed, as TOML's integers are: a value past `i64::MAX` is not TOML and is refused
    /// as such, and `-1` gets the range message.
    threads: Option<i64>,
    cors_origins: Option<Vec<String>>,
    api_hosts: Option<Vec<String>>,
    name: Option<String>,
}

/// The name of the config file looked for in the data directory.
const CONFIG_FILE: &str = "oxchain.toml";

/// A usage error: the message, and exit code 2, as clap gives for a bad flag.
fn usage_error(message: String) -> ! {
    clap::Error::raw(
        clap::error::ErrorKind::ValueValidation,
        format!("{message}\n"),
    )
    .exit()
}

impl NodeArgs {
    /// Fills in, from the config file, every setting that neither a flag nor an
    /// `OXCHAIN_*` variable gave. `matches` tells which those were.
    fn with_config_file(mut self, matches: &ArgMatches) -> anyhow::Result<NodeArgs> {
        let given = |id: &str| {
            matches!(
                matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        let (path, explicit) = match &self.config {
            Some(path) => (path.clone(), true),
            None => {
                let dir = match &self.data_dir {
                    Some(dir) => dir.clone(),
                    None => default_data_dir(self.network)?,
                };
                (dir.join(CONFIG_FILE), false)
            }
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => return Ok(self),
            Err(e) => usage_error(format!(
                "cannot read the config file {}: {e}",
                path.display()
            )),
        };
        let file: ConfigFile = toml::from_str(&text).unwrap_or_else(|e| {
            usage_error(format!("invalid config file {}: {e}", path.display()))
        });
        let bad = |key: &str, value: &dyn std::fmt::Debug, why: String| -> ! {
            usage_error(format!(
                "invalid value {value:?} for `{key}` in {}: {why}",
                path.display()
            ))
        };
        if !explicit && (file.network.is_some() || file.data_dir.is_some()) {
            usage_error(format!(
                "{} sets `network` or `data_dir`, but it was found through them: \
                 pass it with --config FILE instead",
                path.display()
            ));
        }
        if let Some(v) = file.network.filter(|_| !given("network")) {
            self.network = v
                .parse()
                .unwrap_or_else(|e| bad("network", &v, format!("{e}")));
        }
        if let Some(v) = file.data_dir.filter(|_| !given("data_dir")) {
            self.data_dir = Some(v);
        }
        if let Some(v) = file.api.filter(|_| !given("api")) {
            self.api = v.parse().unwrap_or_else(|e| bad("api", &v, format!("{e}")));
        }
        if let Some(v) = file.p2p.filter(|_| !given("p2p")) {
            self.p2p = v;
        }
        if let Some(v) = file.peers.filter(|_| !given("peers")) {
            self.peers = v;
        }
        if let Some(v) = file
            .external_addresses
            .filter(|_| !given("external_addresses"))
        {
            for a in &v {
                if let Err(e) = parse_external(a) {
                    bad("external_addresses", a, e);
                }
            }
            self.external_addresses = v;
        }
        if let Some(v) = file.mine.filter(|_| !given("mine")) {
            self.mine = v
                .parse()
                .unwrap_or_else(|e| bad("mine", &v, format!("{e}")));
        }
        if let Some(v) = file.miner_address.filter(|_| !given("miner_address")) {
            self.miner_address = Some(v);
        }
        if let Some(v) = file.threads.filter(|_| !given("threads")) {
            match u64::try_from(v) {
                Ok(n) if (1..=MAX_THREADS).contains(&n) => self.threads = Some(n),
                _ => bad("threads", &v, format!("not in 1..={MAX_THREADS}")),
            }
        }
        if let Some(v) = file.cors_origins.filter(|_| !given("cors_origins")) {
            for origin in &v {
                if let Err(why) = parse_origin(origin) {
                    bad("cors_origins", origin, why);
                }
            }
            self.cors_origins = v;
        }
        if let Some(v) = file.api_hosts.filter(|_| !given("api_hosts")) {
            for name in &v {
                if let Err(why) = parse_host_name(name) {
                    bad("api_hosts", name, why);
                }
            }
            self.api_hosts = v;
        }
        if let Some(v) = file.name.filter(|_| !given("name")) {
            if let Err(why) = parse_name(&v) {
                bad("name", &v, why);
            }
            self.name = Some(v);
        }
        self.config = Some(path);
        Ok(self)
    }
}

fn parse_external(text: &str) -> Result<String, String> {
    match oxchain_net::parse_peer_addr(text) {
        Ok(_) => Ok(text.to_string()),
        Err(e) => Err(e.to_string()),
    }
}

fn parse_origin(text: &str) -> Result<String, String> {
    if text == "*"
        || ((text.starts_with("http://") || text.starts_with("https://"))
            && axum::http::HeaderValue::from_str(text).is_ok())
    {
        Ok(text.to_string())
    } else {
        Err(format!(
            "{text:?} is not an origin like http://localhost:3000 (or * for any)"
        ))
    }
}

fn parse_host_name(text: &str) -> Result<String, String> {
    let ok = text == "*"
        || (!text.is_empty()
            && text.len() <= 253
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    if ok {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(format!(
            "{text:?} is not a host name like node.example (no scheme, no port; * for any)"
        ))
    }
}

/// The platform's data directory for a network (XDG on Linux).
pub(crate) fn default_data_dir(network: Network) -> anyhow::Result<PathBuf> {
    let base = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(
            std::env::var_os("HOME")
                .context("neither XDG_DATA_HOME nor HOME is set: pass --data-dir")?,
        )
        .join(".local/share"),
    };
    Ok(base.join("oxchain").join(network.name()))
}

pub(crate) fn run(args: NodeArgs, matches: &ArgMatches) -> anyhow::Result<()> {
    let args = args.with_config_file(matches)?;
    let network = args.network;
    let data_dir = match args.data_dir {
        Some(dir) => dir,
        None => default_data_dir(network)?,
    };
    let miner_address = args
        .miner_address
        .as_deref()
        .map(|text| miner_address(text, network, &data_dir));
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |t| t as usize,
    );
    let config_file = args.config.clone();
    let config = oxchain_node::NodeConfig {
        network,
        data_dir: data_dir.clone(),
        api: args.api,
        mine: args.mine,
        miner_address,
        threads,
        p2p: args.p2p.clone(),
        peers: args.peers.clone(),
        external_addresses: args.external_addresses.clone(),
        link_latency: std::time::Duration::from_millis(args.lab_latency_ms),
        api_hosts: args.api_hosts.clone(),
        name: args.name.clone(),
        cors: if args.cors_origins.iter().any(|o| o == "*") {
            oxchain_api::Cors::Any
        } else if args.cors_origins.is_empty() {
            oxchain_api::Cors::None
        } else {
            oxchain_api::Cors::Origins(
                args.cors_origins
                    .iter()
                    .filter_map(|o| axum::http::HeaderValue::from_str(o).ok())
                    .collect(),
            )
        },
    };
    let mine = args.mine;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let stop = runtime
        .block_on(async { stop_signal() })
        .context("listening for SIGINT and SIGTERM")?;
    let stopped = runtime.block_on(oxchain_node::run(config, stop, |started| {
        println!("oxchain node on {network}");
        println!("  data dir       {}", data_dir.display());
        if let Some(config) = &config_file {
            println!("  config         {}", config.display());
        }
        println!("  API            http://{}", started.api);
        println!("  explorer       http://{}/explorer/", started.api);
        for addr in &started.p2p {
            println!("  p2p            {addr}");
        }
        println!("  height         {}", started.height);
        println!("  mining         {mine}");
        let restored = started.mempool;
        if restored.accepted + restored.refused > 0 {
            println!(
                "  mempool        {} pending transfers restored ({} no longer valid)",
                restored.accepted, restored.refused
            );
        }
        if let Some(e) = &started.mempool_error {
            eprintln!("warning: {e}");
        }
        println!(
            "  miner address  {}",
            started.miner_address.to_bech32(network)
        );
        if let Some(cookie) = &started.cookie {
            println!(
                "  API token      {} (needed for mine and send routes)",
                cookie.display()
            );
        }
        println!("Ctrl-C stops the node.");
    }))?;
    // Beside "stopping: ..." on stderr; whoever read stdout may be gone by now (a closed
    // pipe must not turn a clean stop into a failure).
    let _ = writeln!(
        std::io::stderr(),
        "stopped; {} pending transfers kept in {}",
        stopped.mempool_saved,
        data_dir.join(oxchain_node::mempool_file::FILE).display()
    );
    Ok(())
}

/// `--miner-address`: an address of `network`, or the name of a key in the data
/// directory's wallet (`oxchain wallet new NAME`). Anything else is a usage error (exit
/// code 2), like any other bad flag.
fn miner_address(text: &str, network: Network, data_dir: &std::path::Path) -> Address {
    let parsed = Address::parse(text, network);
    if let Ok(address) = parsed {
        return address;
    }
    let wallet = oxchain_wallet::Wallet::new(data_dir.join("wallet"));
    match (parsed, wallet.show(text)) {
        (_, Ok(key)) => key.address,
        (Err(e), Err(oxchain_wallet::WalletError::NotFound(_))) => usage_error(format!(
            "invalid value {text:?} for '--miner-address': not a {network} address ({e}) \
             nor a key in {}",
            data_dir.join("wallet").display()
        )),
        (_, Err(e)) => usage_error(format!(
            "invalid value {text:?} for '--miner-address': the wallet key cannot be read: {e}"
        )),
    }
}

/// Listens for SIGINT and SIGTERM from now on (call it inside the runtime, before the
/// node starts: a signal that came before the first poll would otherwise end the process
/// with the default action, uncleanly); the future completes on either.
fn stop_signal() -> std::io::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        let _ = writeln!(
            std::io::stderr(),
            "stopping: finishing the current write ..."
        );
    })
}

/// `--name`: what [`oxchain_net::agent::valid_name`] takes.
fn parse_name(text: &str) -> Result<String, String> {
    if oxchain_net::agent::valid_name(text) {
        Ok(text.to_string())
    } else {
        Err(format!(
            "{text:?} is not a node name: 1 to {} of A-Z a-z 0-9 . _ -",
            oxchain_net::agent::MAX_NAME
        ))
    }
}
