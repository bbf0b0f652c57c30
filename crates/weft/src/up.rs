//! `weft up` / `weft down`: a whole secured network on this machine from one command.
//!
//! `weft up` generates crypto material for an orderer org and two peer orgs, the channel's
//! genesis block and every node's config file (all under one directory, `--dir`), starts
//! the orderer and one peer per org as separate `weft` processes on 127.0.0.1, joins them to
//! the channel, deploys Fabric's asset-transfer chaincode twice — `basic`, launched by each
//! peer through the binary builder with per-launch certificates, and `basic-ccaas`, one
//! chaincode server per org that its peer dials with mutual TLS as `connection.json` says —
//! runs a smoke transaction through the Gateway, and prints the link table (probed, not
//! assumed), the endpoints, the identities and commands to paste next.
//!
//! It then stays in the foreground watching its processes until Ctrl-C, or returns at once
//! with `--detach` (then `weft down` stops them). What it made is recorded in
//! `<dir>/network.json` ([`state`]); a second `weft up` on the same directory resumes the
//! network (same crypto, same ledgers; joins and definitions already done are skipped)
//! rather than replacing it.

mod deploy;
mod files;
mod links;
mod procs;
mod state;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use state::TlsMode;
use state::{ChaincodeMode, NetworkFile};

type BoxError = Box<dyn std::error::Error>;

/// `weft up` flags.
#[derive(Debug, clap::Args)]
pub struct UpArgs {
    /// The directory that holds the network's state (created if missing; resumed if it holds
    /// a network).
    #[arg(long, env = "WEFT_NETWORK_DIR", default_value = "weft-network")]
    pub dir: PathBuf,
    /// How links are secured: mutual TLS, server-only TLS, or off (plaintext, development
    /// only). Fixed when the network is created.
    #[arg(long, value_enum, default_value_t = TlsMode::Mutual)]
    pub tls: TlsMode,
    /// Return once the network is up, leaving it running; stop it with `weft down`.
    #[arg(long)]
    pub detach: bool,
    /// The asset-transfer chaincode executable (default: `asset-transfer` next to this weft
    /// executable; `cargo build --release -p asset-transfer` builds it).
    #[arg(long, env = "WEFT_CHAINCODE_BIN")]
    pub chaincode_bin: Option<PathBuf>,
    /// A YAML file with more settings: channel, batchTimeout, maxMessageCount, ports (see
    /// docs/UP.md). Used when the network is created.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// `weft down` flags.
#[derive(Debug, clap::Args)]
pub struct DownArgs {
    /// The directory that holds the network's state.
    #[arg(long, env = "WEFT_NETWORK_DIR", default_value = "weft-network")]
    pub dir: PathBuf,
    /// Also delete the directory (crypto material, ledgers, logs).
    #[arg(long)]
    pub purge: bool,
}

/// Progress on stderr: one line per step with its duration.
struct Progress {
    step: Instant,
}

impl Progress {
    fn start(&mut self, what: &str) {
        self.step = Instant::now();
        eprint!("  {what} ... ");
        let _ = std::io::stderr().flush();
    }

    fn done(&self, note: &str) {
        let sep = if note.is_empty() { "" } else { ", " };
        eprintln!("{note}{sep}{:.2} s", self.step.elapsed().as_secs_f64());
    }
}

/// The processes of this run, stopped in reverse order of start unless handed over
/// (`--detach`).
struct Running {
    procs: Vec<procs::Proc>,
}

impl Running {
    fn stop_all(&mut self) {
        while let Some(mut p) = self.procs.pop() {
            p.stop(Duration::from_secs(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn absolute(dir: &Path) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    dir.canonicalize()
        .map_err(|e| format!("cannot resolve {}: {e}", dir.display()))
}

fn chaincode_executable(explicit: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(p) = explicit {
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "--chaincode-bin {}: no such file (build it with `cargo build --release -p \
                 asset-transfer`)",
                p.display()
            ))
        };
    }
    let me = std::env::current_exe().map_err(|e| format!("cannot locate this executable: {e}"))?;
    let sibling = me.with_file_name("asset-transfer");
    if sibling.is_file() {
        return Ok(sibling);
    }
    Err(format!(
        "the asset-transfer chaincode executable is not next to weft ({}): build it with \
         `cargo build --release -p asset-transfer` (scripts/up does), or pass --chaincode-bin",
        sibling.display()
    ))
}

fn weft_exe() -> Result<PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot locate this executable: {e}"))
}

/// `weft up` reports its own progress: the libraries' info lines (material generated, package
/// installed, ...) would interleave with it, so warnings only unless a filter was asked for.
fn quiet_logs() {
    let asked = std::env::var_os("WEFT_LOG").is_some()
        || std::env::args().any(|a| a == "--log" || a.starts_with("--log="));
    if !asked {
        if let Some(h) = weft_ops::logging::handle() {
            use weft_ops::logging::LogControl as _;
            let _ = h.set_spec("warn");
        }
    }
}

pub fn up(args: UpArgs) -> Result<u8, BoxError> {
    quiet_logs();
    let t0 = Instant::now();
    let dir = absolute(&args.dir)?;
    let exe = chaincode_executable(args.chaincode_bin.clone())?;
    let mut progress = Progress { step: t0 };
    let resumed = NetworkFile::path(&dir).exists();
    let mut net = if resumed {
        let net = NetworkFile::load(&dir)?;
        let running: Vec<String> = net
            .processes
            .iter()
            .filter(|p| procs::alive(p))
            .map(|p| format!("{} (pid {})", p.name, p.pid))
            .collect();
        if !running.is_empty() {
            return Err(format!(
                "the network in {} is already running: {}. Use it as it is, or stop it with \
                 `weft down --dir {}` first",
                dir.display(),
                running.join(", "),
                dir.display()
            )
            .into());
        }
        if net.tls != args.tls {
            eprintln!(
                "note: the network in {} was created with --tls {}; --tls {} applies to new \
                 networks only",
                dir.display(),
                net.tls.as_str(),
                args.tls.as_str()
            );
        }
        eprintln!(
            "weft up: resuming the network in {} ({} TLS)",
            dir.display(),
            net.tls.as_str()
        );
        net
    } else {
        if std::fs::read_dir(&dir)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
        {
            return Err(format!(
                "{} is not empty and holds no network.json: weft up creates a network only in \
                 a new or empty directory (pass --dir)",
                dir.display()
            )
            .into());
        }
        let cfg = match &args.config {
            Some(p) => files::UpConfig::load(p)?,
            None => files::UpConfig::default(),
        };
        eprintln!(
            "weft up: a new network in {} ({} TLS)",
            dir.display(),
            args.tls.as_str()
        );
        progress.start("crypto material, channel genesis block, node configs");
        let net = match files::create(&dir, args.tls, &cfg) {
            Ok(net) => net,
            Err(e) => {
                // The directory was empty: leave it so, and a retry starts clean.
                if let Ok(entries) = std::fs::read_dir(&dir) {
                    for entry in entries.flatten() {
                        let _ = std::fs::remove_dir_all(entry.path())
                            .or_else(|_| std::fs::remove_file(entry.path()));
                    }
                }
                return Err(e.into());
            }
        };
        net.save(&dir)?;
        progress.done("");
        net
    };

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut running = Running { procs: Vec::new() };
    // Ctrl-C while the network comes up stops what was started (the processes are in their
    // own process group: the terminal's SIGINT reaches only this process).
    let outcome = rt.block_on(async {
        tokio::select! {
            r = bring_up(&dir, &mut net, &exe, &mut progress, &mut running) => r,
            () = crate::node_cmd::wait_for_signal() => {
                eprintln!();
                Err("interrupted: stopping what was started".into())
            }
        }
    });
    if let Err(e) = outcome {
        running.stop_all();
        net.processes.clear();
        let _ = net.save(&dir);
        return Err(e);
    }
    let first_tx = t0.elapsed();
    net.processes = running.procs.iter().map(procs::Proc::entry).collect();
    net.save(&dir)?;

    let links = rt.block_on(links::probe_all(&net));
    println!();
    println!(
        "Network up in {:.1} s (first transaction committed {:.1} s after start).",
        t0.elapsed().as_secs_f64(),
        first_tx.as_secs_f64()
    );
    println!();
    println!("Links (probed now with each client's own material):");
    println!("{}", links::render(&links));
    let failed: Vec<&links::Link> = links.iter().filter(|l| !l.ok).collect();
    for l in &failed {
        println!("  ! {}: the probe did not complete ({})", l.link, l.tls);
    }
    println!();
    print!("{}", summary(&dir, &net));

    if args.detach {
        // Hand the processes over: they run on in their own process group.
        running.procs.clear();
        println!(
            "\nDetached: stop the network with `weft down --dir {}`.",
            dir.display()
        );
        return Ok(0);
    }
    println!(
        "\nWatching the processes; Ctrl-C stops them (state is kept in {}).",
        dir.display()
    );
    let code = rt.block_on(watch(&mut running));
    running.stop_all();
    net.processes.clear();
    net.save(&dir)?;
    eprintln!("weft up: stopped (state kept in {})", dir.display());
    Ok(code)
}

/// Refuse to start `who` when one of its ports is taken: its readiness check would otherwise
/// find another program (often another network's node) answering there.
fn ensure_free(who: &str, addresses: &[&str]) -> Result<(), String> {
    for a in addresses {
        if std::net::TcpListener::bind(a).is_err() {
            return Err(format!(
                "{who} cannot start: {a} is in use by another program (another weft network? \
                 `weft down --dir <its dir>`), or set other ports with `weft up --config`"
            ));
        }
    }
    Ok(())
}

/// Start what is not running and do what is not done; fill `running`.
async fn bring_up(
    dir: &Path,
    net: &mut NetworkFile,
    chaincode_exe: &Path,
    progress: &mut Progress,
    running: &mut Running,
) -> Result<(), BoxError> {
    let weft = weft_exe()?;
    let block_path = dir.join(format!("{}.block", net.channel));
    let block = std::fs::read(&block_path)
        .map_err(|e| format!("cannot read {}: {e}", block_path.display()))?;
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).map_err(|e| format!("cannot create {}: {e}", logs.display()))?;

    // The launched chaincode's package, made while the nodes start.
    let launched_pkg = dir.join(format!("chaincode/{}.tar.gz", files::LAUNCHED));
    let packaging = if launched_pkg.exists() {
        None
    } else {
        let (dir, exe) = (dir.to_owned(), chaincode_exe.to_owned());
        Some(std::thread::spawn(move || {
            files::package_launched(&dir, &exe)
        }))
    };

    progress.start(&format!("orderer {}", net.orderer.address));
    ensure_free(
        &net.orderer.name,
        &[
            &net.orderer.address,
            &net.orderer.admin_address,
            &net.orderer.operations_address,
        ],
    )?;
    let mut p = procs::spawn(
        &net.orderer.name,
        &weft,
        &[
            "orderer",
            "start",
            "--config",
            &net.orderer.config.to_string_lossy(),
        ],
        &[("WEFT_LOG", "info".into())],
        &logs.join("orderer.log"),
    )?;
    let waited = p.wait_listening(
        &[&net.orderer.address, &net.orderer.admin_address],
        Duration::from_secs(30),
    );
    running.procs.push(p);
    waited?;
    let joined = deploy::join_orderer(net, &block)
        .await
        .map_err(|e| format!("joining the orderer to {}: {e}", net.channel))?;
    progress.done(if joined {
        "joined the channel"
    } else {
        "already on the channel"
    });

    for peer in &net.peers {
        progress.start(&format!("{} {}", peer.name, peer.address));
        ensure_free(
            &peer.name,
            &[
                &peer.address,
                &peer.chaincode_address,
                &peer.operations_address,
            ],
        )?;
        let mut p = procs::spawn(
            &peer.name,
            &weft,
            &[
                "peer",
                "node",
                "start",
                "--config",
                &peer.config.to_string_lossy(),
            ],
            &[("WEFT_LOG", "info".into())],
            &logs.join(format!("{}.log", peer.name)),
        )?;
        let waited = p.wait_listening(&[&peer.address], Duration::from_secs(30));
        running.procs.push(p);
        waited?;
        let joined = deploy::join_peer(net, peer, &block)
            .await
            .map_err(|e| format!("joining {} to {}: {e}", peer.name, net.channel))?;
        progress.done(if joined {
            "joined the channel"
        } else {
            "already joined"
        });
    }

    progress.start("chaincode packages, installed and built on the peers by each org's admin");
    if let Some(t) = packaging {
        t.join().map_err(|_| "packaging the chaincode panicked")??;
    }
    let net_snapshot = net.clone();
    for cc in &mut net.chaincodes {
        for peer in &net_snapshot.peers {
            let package = match cc.mode {
                ChaincodeMode::Launched => launched_pkg.clone(),
                ChaincodeMode::Server => {
                    let pkg = dir.join(format!(
                        "chaincode/{}-{}/{}.tar.gz",
                        cc.name, peer.org, cc.name
                    ));
                    if pkg.exists() || cc.package_ids.contains_key(&peer.msp_id) {
                        pkg
                    } else {
                        let address = cc.server_addresses.get(&peer.msp_id).ok_or_else(|| {
                            format!("no chaincode server address for {}", peer.msp_id)
                        })?;
                        files::server_material(dir, &net_snapshot, peer, address)?
                    }
                }
            };
            // Installed by an earlier run of this network: the peer has it.
            if cc.package_ids.contains_key(&peer.msp_id) {
                continue;
            }
            let id = deploy::install(&net_snapshot, peer, &package)
                .await
                .map_err(|e| format!("installing {} on {}: {e}", package.display(), peer.name))?;
            cc.package_ids.insert(peer.msp_id.clone(), id);
        }
    }
    net.save(dir)?;
    progress.done("");

    if let Some(cc) = net.chaincode(ChaincodeMode::Server).cloned() {
        progress.start(&format!("chaincode servers ({})", cc.name));
        for peer in &net.peers {
            let (Some(address), Some(id)) = (
                cc.server_addresses.get(&peer.msp_id),
                cc.package_ids.get(&peer.msp_id),
            ) else {
                continue;
            };
            let m = dir.join(format!("chaincode/{}-{}", cc.name, peer.org));
            ensure_free(&format!("{}.{}", cc.name, peer.org), &[address])?;
            let mut env = vec![
                ("CHAINCODE_SERVER_ADDRESS", address.clone()),
                ("CHAINCODE_ID", id.clone()),
                ("RUST_LOG", "info".to_owned()),
            ];
            if net.tls.enabled() {
                env.push((
                    "CHAINCODE_TLS_CERT",
                    m.join("server.crt").to_string_lossy().into(),
                ));
                env.push((
                    "CHAINCODE_TLS_KEY",
                    m.join("server.key").to_string_lossy().into(),
                ));
                if net.tls.mutual() {
                    env.push((
                        "CHAINCODE_CLIENT_CA_CERT",
                        peer.tls_ca.to_string_lossy().into(),
                    ));
                }
            } else {
                env.push(("CHAINCODE_TLS_DISABLED", "true".into()));
            }
            let mut p = procs::spawn(
                &format!("{}.{}", cc.name, peer.org),
                chaincode_exe,
                &[],
                &env,
                &logs.join(format!("{}.{}.log", cc.name, peer.org)),
            )?;
            let waited = p.wait_listening(&[address], Duration::from_secs(30));
            running.procs.push(p);
            waited?;
        }
        progress.done("");
    }

    let pending: Vec<state::ChaincodeEntry> = {
        let mut v = Vec::new();
        for cc in &net.chaincodes {
            if !deploy::is_defined(net, &cc.name)
                .await
                .map_err(|e| e.to_string())?
            {
                v.push(cc.clone());
            }
        }
        v
    };
    if !pending.is_empty() {
        let names: Vec<&str> = pending.iter().map(|c| c.name.as_str()).collect();
        progress.start(&format!(
            "_lifecycle: each org approves {}",
            names.join(", ")
        ));
        let mut approvals = Vec::new();
        for cc in &pending {
            for peer in &net.peers {
                let id = cc
                    .package_ids
                    .get(&peer.msp_id)
                    .ok_or_else(|| format!("{} is not installed on {}", cc.name, peer.name))?;
                approvals.push(deploy::approve(net, peer, &cc.name, id));
            }
        }
        let mut top = 0;
        for r in weft_peer::gateway::join::futures_join_all(approvals).await {
            top = top.max(r.map_err(|e| e.to_string())?);
        }
        // Both peers must have seen every approval before they simulate the commit.
        deploy::wait_height(net, top + 1, Duration::from_secs(60))
            .await
            .map_err(|e| e.to_string())?;
        progress.done("");
        progress.start("_lifecycle: commit, endorsed by both orgs");
        let mut commits = Vec::new();
        for cc in &pending {
            commits.push(deploy::commit(net, &cc.name));
        }
        let mut top = 0;
        for r in weft_peer::gateway::join::futures_join_all(commits).await {
            top = top.max(r.map_err(|e| e.to_string())?);
        }
        deploy::wait_height(net, top + 1, Duration::from_secs(60))
            .await
            .map_err(|e| e.to_string())?;
        progress.done("");
    }

    let user = net
        .user("Org1MSP", "User1@")
        .ok_or("no User1 of Org1MSP in network.json")?
        .clone();
    let (p1, p2) = match net.peers.as_slice() {
        [a, b, ..] => (a.clone(), b.clone()),
        _ => return Err("the network needs two peers".into()),
    };
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    for cc in net.chaincodes.clone() {
        progress.start(&format!(
            "smoke transaction on {} ({}) through {}'s Gateway",
            cc.name,
            match cc.mode {
                ChaincodeMode::Launched => "launched",
                ChaincodeMode::Server => "chaincode server",
            },
            p1.name
        ));
        let id = format!("up-{stamp}-{}", cc.name);
        let (_, block) = deploy::invoke(
            net,
            &p1,
            &user,
            &cc.name,
            &["CreateAsset", &id, "blue", "5", "weft up", "100"],
        )
        .await
        .map_err(|e| format!("the smoke transaction on {}: {e}", cc.name))?;
        deploy::wait_height(net, block + 1, Duration::from_secs(30))
            .await
            .map_err(|e| e.to_string())?;
        let back = deploy::query(net, &p2, &user, &cc.name, &["ReadAsset", &id])
            .await
            .map_err(|e| format!("reading the smoke asset through {}: {e}", p2.name))?;
        if !back.contains(&id) {
            return Err(format!("{} answered {back} for asset {id}", p2.name).into());
        }
        progress.done(&format!(
            "committed in block {block}, read back through {}",
            p2.name
        ));
    }
    Ok(())
}

/// Watch the processes until Ctrl-C/SIGTERM (0) or one of them exits (1).
async fn watch(running: &mut Running) -> u8 {
    let signal = crate::node_cmd::wait_for_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            () = &mut signal => return 0,
            () = tokio::time::sleep(Duration::from_millis(500)) => {
                for p in &mut running.procs {
                    if let Ok(Some(status)) = p.child.try_wait() {
                        eprintln!(
                            "\n{} exited ({status}); the end of its log ({}):\n{}\nstopping the \
                             others",
                            p.name,
                            p.log.display(),
                            procs::tail(&p.log, 20)
                        );
                        return 1;
                    }
                }
            }
        }
    }
}

/// Endpoints, identities and commands to paste.
fn summary(dir: &Path, net: &NetworkFile) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "Endpoints:");
    let _ = writeln!(
        s,
        "  {:<24} {}  (admin API {}, operations {})",
        net.orderer.name,
        net.orderer.address,
        net.orderer.admin_address,
        net.orderer.operations_address
    );
    for p in &net.peers {
        let _ = writeln!(
            s,
            "  {:<24} {}  (chaincode service {}, operations {})",
            p.name, p.address, p.chaincode_address, p.operations_address
        );
    }
    if let Some(cc) = net.chaincode(ChaincodeMode::Server) {
        for (msp, a) in &cc.server_addresses {
            let _ = writeln!(s, "  {:<24} {a}  ({msp})", format!("{} server", cc.name));
        }
    }
    let _ = writeln!(s, "Channel {}; chaincode {} (launched) and {} (chaincode server), endorsement MAJORITY of Org1MSP, Org2MSP.", net.channel, files::LAUNCHED, files::SERVER);
    let _ = writeln!(
        s,
        "State: {} (network.json lists every path); logs in {}.",
        dir.display(),
        dir.join("logs").display()
    );
    let _ = writeln!(s, "\nIdentities:");
    for u in &net.users {
        let _ = writeln!(s, "  {:<24} {}", u.name, u.msp_dir.display());
    }
    let Some(p1) = net.peers.first() else {
        return s;
    };
    let user = net.user(&p1.msp_id, "User1@");
    let _ = writeln!(
        s,
        "\nNext, as {} of {}:",
        user.map_or("User1", |u| u.name.as_str()),
        p1.msp_id
    );
    if let Some(u) = user {
        let _ = writeln!(
            s,
            "  export CORE_PEER_ADDRESS={} CORE_PEER_LOCALMSPID={}",
            p1.address, p1.msp_id
        );
        let _ = writeln!(
            s,
            "  export CORE_PEER_MSPCONFIGPATH={}",
            u.msp_dir.display()
        );
        if net.tls.enabled() {
            let _ = writeln!(
                s,
                "  export CORE_PEER_TLS_ROOTCERT_FILE={}",
                p1.tls_ca.display()
            );
        }
        if net.tls.mutual() {
            let _ = writeln!(
                s,
                "  export CORE_PEER_TLS_CLIENTCERT_FILE={}",
                u.tls_cert.display()
            );
            let _ = writeln!(
                s,
                "  export CORE_PEER_TLS_CLIENTKEY_FILE={}",
                u.tls_key.display()
            );
        }
        let _ = writeln!(s, "  weft chaincode invoke -C {} -n {} -c '{{\"Args\":[\"CreateAsset\",\"asset1\",\"red\",\"5\",\"Ana\",\"300\"]}}'", net.channel, files::LAUNCHED);
        let _ = writeln!(
            s,
            "  weft chaincode query  -C {} -n {} -c '{{\"Args\":[\"ReadAsset\",\"asset1\"]}}'",
            net.channel,
            files::LAUNCHED
        );
        if net.tls.enabled() {
            let _ = writeln!(
                s,
                "  weft doctor tls {} --cafile {} --certfile {} --keyfile {}",
                p1.address,
                p1.tls_ca.display(),
                u.tls_cert.display(),
                u.tls_key.display()
            );
        }
        let scheme = if net.tls.enabled() { "https" } else { "http" };
        // /metrics and /logspec want a client certificate from the org's TLS CA when the
        // operations endpoint has TLS (as in Fabric); /healthz does not.
        let tls_flags = if net.tls.enabled() {
            format!(
                " --cacert {} --cert {} --key {}",
                p1.tls_ca.display(),
                u.tls_cert.display(),
                u.tls_key.display()
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "  curl -s{tls_flags} {scheme}://{}/metrics",
            p1.operations_address
        );
        let _ = writeln!(s, "  weft bench --dir {}", dir.display());
    }
    let _ = writeln!(s, "  weft down --dir {}", dir.display());
    s
}

pub fn down(args: DownArgs) -> Result<u8, BoxError> {
    let dir = &args.dir;
    if !NetworkFile::path(dir).exists() {
        if args.purge && dir.exists() {
            return Err(format!(
                "{} holds no network.json: not deleting a directory weft up did not make",
                dir.display()
            )
            .into());
        }
        return Err(format!("no network in {} (no network.json)", dir.display()).into());
    }
    let mut net = NetworkFile::load(dir)?;
    // Chaincode servers, then peers, then the orderer: the reverse of the start order.
    for p in net.processes.iter().rev() {
        if procs::alive(p) {
            let killed = procs::stop_recorded(p, Duration::from_secs(10));
            eprintln!(
                "stopped {} (pid {}){}",
                p.name,
                p.pid,
                if killed {
                    " with SIGKILL after 10 s"
                } else {
                    ""
                }
            );
        }
    }
    net.processes.clear();
    net.save(dir)?;
    if args.purge {
        std::fs::remove_dir_all(dir)
            .map_err(|e| format!("cannot delete {}: {e}", dir.display()))?;
        eprintln!("deleted {}", dir.display());
    } else {
        eprintln!(
            "network stopped; state kept in {} (`weft up --dir {}` resumes it)",
            dir.display(),
            dir.display()
        );
    }
    Ok(0)
}
