//! The `weft` command: one binary for every weft role and tool.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench_cmd;
mod chaincode_cmd;
mod channel_cmd;
mod configtx_cmd;
mod configupdate_cmd;
mod crypto_cmd;
mod doctor_cmd;
mod gateway_cmd;
mod ledger_cmd;
mod lifecycle_cmd;
mod lifecycle_tx;
mod node_cmd;
mod orderer_cmd;
mod osnadmin_cmd;
mod procstat;
mod up;

/// weft: a permissioned ledger that speaks Hyperledger Fabric's protocols, secure on every link.
#[derive(Debug, Parser)]
#[command(name = "weft", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Log filter (tracing syntax, e.g. `info`, `weft_tls=debug`). Also WEFT_LOG.
    #[arg(long, global = true, env = "WEFT_LOG", default_value = "info")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Channel configuration: genesis blocks from configtx.yaml (Fabric's configtxgen).
    #[command(subcommand)]
    Configtx(configtx_cmd::ConfigtxCommand),
    /// Organization crypto material (the layout Fabric's cryptogen writes).
    #[command(subcommand)]
    Crypto(crypto_cmd::CryptoCommand),
    /// Check an endpoint or a configuration and explain what is wrong.
    #[command(subcommand)]
    Doctor(doctor_cmd::DoctorCommand),
    /// Call chaincode through a peer's Gateway, as an application: invoke (submit and wait
    /// for the commit) or query (evaluate).
    #[command(subcommand)]
    Chaincode(gateway_cmd::GatewayCommand),
    /// Read a channel's block store: height, blocks, transactions by id.
    #[command(subcommand)]
    Ledger(ledger_cmd::LedgerCommand),
    /// Peer administration (Fabric's `peer` command).
    #[command(subcommand)]
    Peer(PeerCommand),
    /// Run an orderer (Fabric's `orderer` command).
    #[command(subcommand)]
    Orderer(orderer_cmd::OrdererCommand),
    /// Orderer channel participation (Fabric's `osnadmin` command).
    #[command(subcommand)]
    Osnadmin(osnadmin_cmd::OsnadminCommand),
    /// Bring up a whole secured network on this machine: an orderer and two orgs' peers as
    /// processes, joined to a channel, the asset-transfer chaincode deployed both ways
    /// (launched by the peers, and as a chaincode server), a transaction committed.
    Up(up::UpArgs),
    /// Stop the processes of a network started with `weft up --detach` (state is kept).
    Down(up::DownArgs),
    /// Drive a peer's Gateway (a `weft up` network by default, or any Fabric peer) with N
    /// concurrent clients; report throughput, latency, errors and the nodes' memory.
    Bench(Box<bench_cmd::BenchArgs>),
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum PeerCommand {
    /// Chaincode lifecycle.
    #[command(subcommand)]
    Lifecycle(LifecycleCommand),
    /// Run the peer.
    #[command(subcommand)]
    Node(NodeCommand),
    /// Call chaincode through a peer's endorser.
    #[command(subcommand)]
    Chaincode(ChaincodeCallCommand),
    /// Join the peer to channels and list them (peer-admin calls).
    #[command(subcommand)]
    Channel(channel_cmd::ChannelCommand),
}

#[derive(Debug, Subcommand)]
enum ChaincodeCallCommand {
    /// Send a signed proposal and print the chaincode's answer (nothing is committed).
    Query(chaincode_cmd::QueryArgs),
}

#[derive(Debug, Subcommand)]
enum NodeCommand {
    /// Start the peer: the endorser on peer.listenAddress and the chaincode service on
    /// peer.chaincodeListenAddress, until SIGINT/SIGTERM.
    Start(node_cmd::StartArgs),
}

#[derive(Debug, Subcommand)]
enum LifecycleCommand {
    /// Package, install and inspect chaincode.
    #[command(subcommand)]
    Chaincode(lifecycle_cmd::ChaincodeCommand),
}

/// Exit codes: 0 success, 1 the checked thing is not OK, 2 the command itself could not run.
pub(crate) const EXIT_NOT_OK: u8 = 1;
pub(crate) const EXIT_ERROR: u8 = 2;

/// mimalloc rather than glibc's malloc: a node allocates and frees many small buffers per
/// message (HTTP/2 frames, protobuf fields), and glibc's malloc/free took about 13% of a
/// Gateway peer's CPU under load (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // stderr, ANSI only on a terminal; the filter can be changed at run time through the
    // operations service's /logspec.
    weft_ops::logging::init(&cli.log);

    let result = match cli.command {
        Command::Configtx(cmd) => configtx_cmd::run(cmd),
        Command::Crypto(cmd) => crypto_cmd::run(cmd),
        Command::Doctor(cmd) => doctor_cmd::run(cmd),
        Command::Ledger(cmd) => ledger_cmd::run(cmd),
        Command::Chaincode(cmd) => gateway_cmd::run(cmd),
        Command::Orderer(cmd) => orderer_cmd::run(cmd),
        Command::Osnadmin(cmd) => osnadmin_cmd::run(cmd),
        Command::Up(args) => up::up(args),
        Command::Down(args) => up::down(args),
        Command::Bench(args) => bench_cmd::run(*args),
        Command::Peer(PeerCommand::Lifecycle(LifecycleCommand::Chaincode(cmd))) => {
            lifecycle_cmd::run(cmd)
        }
        Command::Peer(PeerCommand::Node(NodeCommand::Start(args))) => node_cmd::start(args),
        Command::Peer(PeerCommand::Channel(cmd)) => channel_cmd::run(cmd),
        Command::Peer(PeerCommand::Chaincode(ChaincodeCallCommand::Query(args))) => {
            chaincode_cmd::query(args)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own consistency checks over every subcommand (unique argument names, valid
    /// defaults), which otherwise run only when a subcommand is first used.
    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
