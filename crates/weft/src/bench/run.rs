//! One run: N clients drive a peer's Gateway over a few shared HTTP/2 connections.
//!
//! Phases: a probe (one transaction, alone, so a wrong address, certificate or chaincode is
//! reported once with its explanation instead of by every client), setup (the assets the
//! `read` and `transfer` workloads use), an optional warm-up, then the measured phase. Every
//! client runs its transactions one after the other; a transaction's latency runs from just
//! before its proposal is signed to the answer: the commit status (submit) or the result
//! (evaluate). Throughput is the transactions completed over the time from the measured
//! phase's start to its last answer. Errors do not stop a run; they are counted by kind.
//!
//! The memory of a `weft up` network's processes is sampled over the measured phase.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use weft_msp::msp::SigningIdentity;
use weft_peer::client::Conn;
use weft_proto::protos::TxValidationCode;
use weft_tls::{
    ClientIdentity, Endpoint, Identity, Profile, Settings as TlsSettings, TlsClient, Trust,
};

use super::commits::Commits;
use super::memory::Sampler;

/// How the report names the bench's own process among the nodes.
pub const SELF_NAME: &str = "weft bench (this client)";
use super::report::{self, Config, Figures, Machine, Report};
use super::stats::{summarize, ErrorTally};
use super::target::{Target, TlsMode};

/// What each transaction does (asset-transfer-basic functions, in Fabric's samples too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Workload {
    /// CreateAsset of a fresh id (submit: writes one key).
    Create,
    /// ReadAsset of ids created in setup (evaluate: nothing is ordered).
    Read,
    /// TransferAsset of the client's own ids created in setup (submit: reads and writes one
    /// key).
    Transfer,
    /// AssetExists of a missing id, submitted: reads one key, writes none, is still ordered,
    /// validated and committed.
    Noop,
}

impl Workload {
    pub fn as_str(self) -> &'static str {
        match self {
            Workload::Create => "create",
            Workload::Read => "read",
            Workload::Transfer => "transfer",
            Workload::Noop => "noop",
        }
    }

    /// Assets each client needs before the run.
    fn assets_per_client(self) -> usize {
        match self {
            Workload::Create | Workload::Noop => 0,
            Workload::Read => 1,
            // A client rotates over its assets, so a transfer never reads a key its previous
            // transaction wrote: the other org's peer may commit a block later than the peer
            // that answered the commit status, and would endorse on a stale version.
            Workload::Transfer => TRANSFER_RING,
        }
    }
}

const TRANSFER_RING: usize = 4;

/// How a client learns that its submitted transaction committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CommitWait {
    /// One Gateway `CommitStatus` call per transaction, as fabric-gateway's
    /// `submitTransaction` does.
    #[default]
    Status,
    /// One filtered-block `Deliver` stream for the whole run, as Fabric's earlier SDKs did
    /// (and fabric-gateway's `submitAsync` with `getFilteredBlockEvents`).
    Blocks,
}

/// When the measured phase ends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// After this many transactions (all clients together).
    Count(u64),
    /// After this long (transactions in flight then still complete and count).
    Duration(Duration),
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub workload: Workload,
    pub clients: usize,
    pub connections: usize,
    pub stop: Stop,
    pub warmup: Duration,
    pub conflicts: bool,
    pub timeout: Duration,
    pub commit: CommitWait,
}

/// The asset-transfer call for a client's `k`-th transaction: the arguments and whether it
/// is submitted (else evaluated).
pub fn call(
    workload: Workload,
    run_id: &str,
    seq: u64,
    owned: &[String],
    all: &[String],
    client: usize,
    k: u64,
) -> (Vec<String>, bool) {
    let s = |v: &[&str]| v.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
    match workload {
        Workload::Create => (create_args(&format!("{run_id}-{seq}")), true),
        Workload::Read => {
            let i = (client + k as usize) % all.len().max(1);
            (s(&["ReadAsset", all.get(i).map_or("", |a| a)]), false)
        }
        Workload::Transfer => {
            let id = owned.get(k as usize % owned.len().max(1)).map_or("", |a| a);
            (
                s(&["TransferAsset", id, &format!("owner-{client}-{k}")]),
                true,
            )
        }
        Workload::Noop => (s(&["AssetExists", &format!("{run_id}-missing")]), true),
    }
}

fn create_args(id: &str) -> Vec<String> {
    ["CreateAsset", id, "blue", "5", "bench", "300"]
        .iter()
        .map(|a| (*a).to_owned())
        .collect()
}

/// A unique prefix for this run's asset ids.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("bench-{:x}-{}", nanos as u64, std::process::id())
}

/// Open a connection to the target's Gateway.
pub async fn connect(target: &Target, tls: Option<&TlsClient>) -> Result<Conn, String> {
    let mut endpoint = Endpoint::parse(&target.address)
        .map_err(|e| format!("--peerAddresses {}: {e}", target.address))?;
    if let Some(name) = &target.server_name {
        endpoint = endpoint
            .with_server_name(name)
            .map_err(|e| format!("--servername {name}: {e}"))?;
    }
    let channel = weft_tls::grpc::channel(tls.cloned(), endpoint)
        .await
        .map_err(|e| format!("cannot connect to peer {}: {e}", target.address))?;
    Ok(Conn {
        address: target.address.clone(),
        channel,
    })
}

/// The TLS client for a target (`None` for plaintext).
pub fn tls_client(target: &Target) -> Result<Option<TlsClient>, String> {
    if target.tls == TlsMode::Off {
        return Ok(None);
    }
    let root = target
        .tls_root
        .as_ref()
        .ok_or("no TLS CA certificate: pass --tlsRootCertFiles")?;
    let trust =
        Trust::roots_from_pem_files(&[root], "--tlsRootCertFiles (CORE_PEER_TLS_ROOTCERT_FILE)")
            .map_err(|e| e.to_string())?;
    let identity = match (&target.client_cert, &target.client_key) {
        (Some(c), Some(k)) => ClientIdentity::Certificate(
            Identity::from_pem_files(
                c,
                k,
                "--certfile/--keyfile (CORE_PEER_TLS_CLIENTCERT_FILE/_CLIENTKEY_FILE)",
            )
            .map_err(|e| e.to_string())?,
        ),
        _ => ClientIdentity::Anonymous,
    };
    TlsClient::new(trust, identity, Profile::Fabric)
        .map(|c| Some(c.with_settings(tls_settings()).with_failure_logging(false)))
        .map_err(|e| e.to_string())
}

/// Under mutual TLS, the SHA-256 of the client's TLS certificate, which a deliver request
/// must carry.
fn tls_cert_hash(target: &Target) -> Result<Option<[u8; 32]>, String> {
    match (target.tls, &target.client_cert, &target.client_key) {
        (TlsMode::Mutual, Some(c), Some(k)) => {
            let id = Identity::from_pem_files(c, k, "--certfile/--keyfile")
                .map_err(|e| e.to_string())?;
            Ok(id.chain().first().map(|c| weft_crypto::sha256(c.as_ref())))
        }
        _ => Ok(None),
    }
}

/// How a TLS diagnosis names the bench's settings.
fn tls_settings() -> TlsSettings {
    TlsSettings {
        tls_enabled: "--tls (CORE_PEER_TLS_ENABLED)".into(),
        root_cas: "--tlsRootCertFiles (CORE_PEER_TLS_ROOTCERT_FILE)".into(),
        server_name: "--servername (CORE_PEER_TLS_SERVERHOSTOVERRIDE)".into(),
        client_cert: "--certfile and --keyfile (CORE_PEER_TLS_CLIENTCERT_FILE, \
                      CORE_PEER_TLS_CLIENTKEY_FILE)"
            .into(),
        ..TlsSettings::peer()
    }
}

/// A hint for a failure whose message alone does not explain it.
fn hint(target: &Target, error: &str) -> &'static str {
    let transport = [
        "transport error",
        "operation was canceled",
        "connection",
        "protocol error",
    ];
    if target.tls == TlsMode::Off && transport.iter().any(|t| error.contains(t)) {
        "\n(a plaintext client got no gRPC answer: if the peer serves TLS, drop --tls=false \
         and unset CORE_PEER_TLS_ENABLED=false)"
    } else {
        ""
    }
}

/// Shared by the clients of one run.
struct Shared {
    conns: Vec<Conn>,
    signer: SigningIdentity,
    channel: String,
    chaincode: String,
    workload: Workload,
    run_id: String,
    timeout: Duration,
    /// Assets made in setup, `assets_per_client` per client in client order.
    assets: Vec<String>,
    conflicts: bool,
    /// Sequence for fresh ids, over all phases.
    seq: AtomicU64,
    /// Transactions claimed in the current phase (count mode).
    claimed: AtomicU64,
    done: AtomicU64,
    errors: AtomicU64,
    interrupted: Arc<AtomicBool>,
    /// With `--commit blocks`: the stream commits are learnt from.
    commits: Option<Commits>,
}

impl Shared {
    fn conn(&self, client: usize) -> &Conn {
        &self.conns[client % self.conns.len()]
    }

    fn owned(&self, client: usize) -> &[String] {
        let per = self.workload.assets_per_client();
        if per == 0 || self.assets.is_empty() {
            return &[];
        }
        // With --conflicts every client works on client 0's assets.
        let c = if self.conflicts { 0 } else { client };
        let from = (c * per).min(self.assets.len());
        &self.assets[from..(from + per).min(self.assets.len())]
    }

    /// One transaction with the whole-call timeout.
    async fn one(&self, client: usize, args: &[String], submit: bool) -> Result<(), String> {
        let conn = self.conn(client);
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let call = async {
            if let (true, Some(commits)) = (submit, &self.commits) {
                self.submit_watched(conn, commits, &bytes).await
            } else if submit {
                weft_peer::client::gateway_submit(
                    conn,
                    &self.signer,
                    &self.channel,
                    &self.chaincode,
                    &bytes,
                    self.timeout,
                )
                .await
                .map(|_| ())
            } else {
                weft_peer::client::gateway_evaluate(
                    conn,
                    &self.signer,
                    &self.channel,
                    &self.chaincode,
                    &bytes,
                )
                .await
                .map(|_| ())
            }
        };
        // The commit wait has its own timeout; this one bounds endorse and submit too.
        match tokio::time::timeout(self.timeout + Duration::from_secs(5), call).await {
            Ok(r) => r.map_err(|e| e.0),
            Err(_) => Err(format!(
                "bench: no answer from {} within {:?} ({})",
                conn.address,
                self.timeout + Duration::from_secs(5),
                args.first().map_or("", |a| a)
            )),
        }
    }

    /// Endorse and submit through the Gateway, then wait for the transaction on the
    /// filtered-block stream (registered before the submit, so its block cannot pass unseen).
    async fn submit_watched(
        &self,
        conn: &Conn,
        commits: &Commits,
        args: &[&[u8]],
    ) -> Result<(), weft_peer::client::ClientError> {
        use weft_peer::client::{gateway_endorse, gateway_send, ClientError};
        let (tx_id, envelope) =
            gateway_endorse(conn, &self.signer, &self.channel, &self.chaincode, args).await?;
        let committed = commits.expect(&tx_id);
        if let Err(e) = gateway_send(conn, &self.channel, &tx_id, envelope).await {
            commits.forget(&tx_id);
            return Err(e);
        }
        let (block, code) = match tokio::time::timeout(self.timeout, committed).await {
            Ok(Ok(outcome)) => outcome.map_err(ClientError)?,
            Ok(Err(_)) => {
                return Err(ClientError(format!(
                    "transaction {tx_id}: the filtered-block stream's reader stopped before the \
                     commit was seen (the bench is shutting down)"
                )))
            }
            Err(_) => {
                commits.forget(&tx_id);
                return Err(ClientError(format!(
                    "transaction {tx_id} was not committed on peer {} within {:?} (no \
                     filtered block named it)",
                    conn.address, self.timeout
                )));
            }
        };
        if code != TxValidationCode::Valid as i32 {
            let name = TxValidationCode::try_from(code)
                .map(|c| c.as_str_name())
                .unwrap_or("UNKNOWN");
            return Err(ClientError(format!(
                "transaction {tx_id} was committed as invalid on peer {}: {name} (block {block})",
                conn.address
            )));
        }
        Ok(())
    }
}

/// What one client of one phase measured.
#[derive(Default)]
struct ClientResult {
    latencies: Vec<Duration>,
    errors: ErrorTally,
}

async fn client_loop(
    shared: Arc<Shared>,
    client: usize,
    stop: Stop,
    start: Instant,
) -> ClientResult {
    let mut out = ClientResult::default();
    let mut k = 0u64;
    loop {
        if shared.interrupted.load(Ordering::Relaxed) {
            break;
        }
        match stop {
            Stop::Count(n) => {
                if shared.claimed.fetch_add(1, Ordering::Relaxed) >= n {
                    break;
                }
            }
            Stop::Duration(d) => {
                if start.elapsed() >= d {
                    break;
                }
            }
        }
        let seq = shared.seq.fetch_add(1, Ordering::Relaxed);
        let (args, submit) = call(
            shared.workload,
            &shared.run_id,
            seq,
            shared.owned(client),
            &shared.assets,
            client,
            k,
        );
        let t = Instant::now();
        match shared.one(client, &args, submit).await {
            Ok(()) => {
                out.latencies.push(t.elapsed());
                shared.done.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::debug!(client, error = %e, "transaction failed");
                out.errors.add(&e);
                shared.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
        k += 1;
    }
    out
}

/// Run every client through one phase; answers the merged results and the elapsed time.
async fn phase(
    shared: &Arc<Shared>,
    clients: usize,
    stop: Stop,
    name: &str,
) -> Result<(Vec<Duration>, ErrorTally, Duration), String> {
    shared.claimed.store(0, Ordering::Relaxed);
    shared.done.store(0, Ordering::Relaxed);
    shared.errors.store(0, Ordering::Relaxed);
    let start = Instant::now();
    let progress = tokio::spawn(progress(shared.clone(), stop, start, name.to_owned()));
    let tasks: Vec<_> = (0..clients)
        .map(|c| tokio::spawn(client_loop(shared.clone(), c, stop, start)))
        .collect();
    let mut latencies = Vec::new();
    let mut errors = ErrorTally::default();
    for t in tasks {
        let r = t
            .await
            .map_err(|e| format!("a bench client task failed: {e}"))?;
        latencies.extend(r.latencies);
        errors.merge(r.errors);
    }
    let elapsed = start.elapsed();
    progress.abort();
    progress_done();
    Ok((latencies, errors, elapsed))
}

fn stderr_is_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}

/// One updating line on a terminal (5 per second), else one line every 5 seconds.
async fn progress(shared: Arc<Shared>, stop: Stop, start: Instant, name: String) {
    let tty = stderr_is_terminal();
    let every = if tty {
        Duration::from_millis(200)
    } else {
        Duration::from_secs(5)
    };
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let done = shared.done.load(Ordering::Relaxed);
        let errors = shared.errors.load(Ordering::Relaxed);
        let secs = start.elapsed().as_secs_f64();
        let total = match stop {
            Stop::Count(n) => format!("{done}/{n}"),
            Stop::Duration(d) => format!("{done} ({secs:.0}/{} s)", d.as_secs()),
        };
        let line = format!(
            "{name}: {total}, {:.1} tx/s, {errors} errors",
            done as f64 / secs.max(1e-3)
        );
        if tty {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("{line}");
        }
    }
}

fn progress_done() {
    if stderr_is_terminal() {
        eprint!("\r\x1b[2K");
    }
}

/// Run the settings against the target; `interrupted` is set by the caller's Ctrl-C
/// handler and stops the run early.
pub async fn run(
    target: &Target,
    settings: &Settings,
    interrupted: Arc<AtomicBool>,
) -> Result<Report, String> {
    let started_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let signer =
        SigningIdentity::from_local_msp_dir(&target.msp_dir, &target.msp_id).map_err(|e| {
            format!(
                "cannot load the signing identity {} from --mspdir {}: {e}",
                target.msp_id,
                target.msp_dir.display()
            )
        })?;
    let tls = tls_client(target)?;
    let connections = settings.connections.clamp(1, settings.clients.max(1));
    let mut conns = Vec::with_capacity(connections);
    for _ in 0..connections {
        conns.push(connect(target, tls.as_ref()).await?);
    }
    let commits = match settings.commit {
        CommitWait::Status => None,
        CommitWait::Blocks => {
            let hash = tls_cert_hash(target)?;
            Some(Commits::open(&conns[0], &signer, &target.channel, hash).await?)
        }
    };
    let clients = settings.clients.max(1);
    let run_id = run_id();
    let per = settings.workload.assets_per_client();
    let owners = if settings.conflicts { 1 } else { clients };
    let assets: Vec<String> = (0..owners * per)
        .map(|i| format!("{run_id}-asset-{i}"))
        .collect();
    let shared = Arc::new(Shared {
        conns,
        signer,
        channel: target.channel.clone(),
        chaincode: target.chaincode.clone(),
        workload: settings.workload,
        run_id: run_id.clone(),
        timeout: settings.timeout,
        assets: assets.clone(),
        conflicts: settings.conflicts,
        seq: AtomicU64::new(0),
        claimed: AtomicU64::new(0),
        done: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        interrupted: interrupted.clone(),
        commits,
    });

    // Probe: one transaction alone; its failure ends the run with the reason.
    let probe_what = format!(
        "the first transaction on {} (channel {}, chaincode {})",
        target.address, target.channel, target.chaincode
    );
    let (probe_args, probe_submit) = match assets.first() {
        Some(first) => (create_args(first), true),
        None => call(settings.workload, &run_id, u64::MAX, &[], &[], 0, 0),
    };
    shared
        .one(0, &probe_args, probe_submit)
        .await
        .map_err(|e| format!("{probe_what} failed: {e}{}", hint(target, &e)))?;

    if assets.len() > 1 {
        setup(&shared, &assets[1..], clients).await?;
    }
    if !assets.is_empty() {
        // The peer that answered the commit statuses may be a block ahead of the other
        // orgs' peers, which endorse too: let them commit the setup's last block.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    if !settings.warmup.is_zero() {
        let (_, errors, _) =
            phase(&shared, clients, Stop::Duration(settings.warmup), "warm-up").await?;
        if errors.total() > 0 {
            tracing::warn!(errors = errors.total(), "errors during the warm-up");
        }
    }
    if interrupted.load(Ordering::Relaxed) {
        return Err("interrupted".to_owned());
    }

    // The chaincode processes the peers launched exist once the warm-up has run (only peers
    // have child processes in a `weft up` network).
    let mut processes = target.processes.clone();
    if !processes.is_empty() {
        processes.extend(super::memory::launched_chaincodes(
            &target.processes,
            &super::memory::process_table(),
        ));
    }
    // The client's own share of the machine.
    processes.push((SELF_NAME.to_owned(), std::process::id()));
    let sampler = Sampler::start(&processes, Duration::from_secs(1));
    let (mut latencies, errors, elapsed) =
        phase(&shared, clients, settings.stop, "measure").await?;
    let memory = sampler.finish();

    let completed = latencies.len() as u64;
    let latency = summarize(&mut latencies);
    let error_total = errors.total();
    Ok(Report {
        label: report::label(target, settings.commit),
        started_at,
        weft_version: env!("CARGO_PKG_VERSION").to_owned(),
        machine: Machine::this(),
        config: Config {
            target: target.clone(),
            workload: settings.workload.as_str().to_owned(),
            clients,
            connections,
            count: match settings.stop {
                Stop::Count(n) => Some(n),
                Stop::Duration(_) => None,
            },
            duration_s: match settings.stop {
                Stop::Count(_) => None,
                Stop::Duration(d) => Some(d.as_secs_f64()),
            },
            warmup_s: settings.warmup.as_secs_f64(),
            conflicts: settings.conflicts,
            timeout_s: settings.timeout.as_secs_f64(),
            commit: settings.commit,
        },
        figures: Figures {
            completed,
            errors: error_total,
            elapsed_s: elapsed.as_secs_f64(),
            throughput_tps: if elapsed.is_zero() {
                0.0
            } else {
                completed as f64 / elapsed.as_secs_f64()
            },
            latency,
            error_kinds: errors.into_kinds(),
            interrupted: interrupted.load(Ordering::Relaxed),
        },
        memory,
    })
}

/// Create `ids` with `clients` concurrent creators; any failure ends the run.
async fn setup(shared: &Arc<Shared>, ids: &[String], clients: usize) -> Result<(), String> {
    let next = Arc::new(AtomicU64::new(0));
    let ids: Arc<Vec<String>> = Arc::new(ids.to_vec());
    tracing::info!(
        assets = ids.len(),
        "setup: creating the assets the workload uses"
    );
    let tasks: Vec<_> = (0..clients.min(ids.len()))
        .map(|c| {
            let shared = shared.clone();
            let next = next.clone();
            let ids = ids.clone();
            tokio::spawn(async move {
                loop {
                    if shared.interrupted.load(Ordering::Relaxed) {
                        return Err("interrupted".to_owned());
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(id) = ids.get(i) else {
                        return Ok(());
                    };
                    shared
                        .one(c, &create_args(id), true)
                        .await
                        .map_err(|e| format!("setup: creating asset {id} failed: {e}"))?;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.map_err(|e| format!("a setup task failed: {e}"))??;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn calls_follow_the_asset_transfer_contract() {
        let owned = vec!["a0".to_owned(), "a1".to_owned()];
        let all = vec!["a0".to_owned(), "a1".to_owned(), "a2".to_owned()];
        let (a, submit) = call(Workload::Create, "r", 7, &[], &[], 0, 0);
        assert_eq!(a, ["CreateAsset", "r-7", "blue", "5", "bench", "300"]);
        assert!(submit);
        let (a, submit) = call(Workload::Read, "r", 0, &[], &all, 2, 2);
        assert_eq!(
            (a, submit),
            (vec!["ReadAsset".to_owned(), "a1".to_owned()], false)
        );
        let (a, _) = call(Workload::Transfer, "r", 0, &owned, &all, 3, 3);
        assert_eq!(a, ["TransferAsset", "a1", "owner-3-3"]);
        let (a, submit) = call(Workload::Noop, "r", 0, &[], &[], 0, 0);
        assert_eq!(
            (a, submit),
            (vec!["AssetExists".to_owned(), "r-missing".to_owned()], true)
        );
    }

    #[test]
    fn a_plaintext_client_failing_on_transport_is_told_about_tls() {
        let mut t = crate::bench_cmd::report::tests::fabricated(TlsMode::Off, "basic", 1.0, 1.0)
            .config
            .target;
        let e = "gateway 127.0.0.1:7051: endorse ab: operation was canceled";
        assert!(hint(&t, e).contains("drop --tls=false"));
        assert_eq!(hint(&t, "gateway x: endorse ab: chaincode said no"), "");
        t.tls = TlsMode::Mutual;
        assert_eq!(hint(&t, e), "");
    }

    #[test]
    fn run_ids_differ() {
        assert_ne!(run_id(), {
            std::thread::sleep(Duration::from_millis(1));
            run_id()
        });
    }
}
