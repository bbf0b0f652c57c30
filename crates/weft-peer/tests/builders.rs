//! External builders: the runner against small `sh` builders, `connection.json`, and the
//! builders weft ships (`builders/ccaas`, `builders/binary`, `builders/node`) end to end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use weft_crypto::{
    CertificateAuthority, KeyAlgorithm, LeafProfile, LeafRequest, Subject, Validity,
};
use weft_peer::builders::{
    BuildError, BuilderConfigError, BuilderSet, ConnectionError, ConnectionInfo, ExternalBuilder,
    RunMetadata, Step, StepTimeouts, BUILD_INFO_FILE, DEFAULT_DIAL_TIMEOUT,
};

// ---------------------------------------------------------------------------------------
// helpers

fn write_exec(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A builder directory `root/name` with `bin/<step>` scripts (`#!/bin/sh` is added).
fn builder(root: &Path, name: &str, steps: &[(&str, &str)]) -> ExternalBuilder {
    let dir = root.join("builders").join(name);
    for (step, body) in steps {
        write_exec(&dir.join("bin").join(step), &format!("#!/bin/sh\n{body}\n"));
    }
    ExternalBuilder::new(name, dir)
}

/// A package source directory with one file.
fn source(root: &Path) -> PathBuf {
    let src = root.join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("code.txt"), "chaincode").unwrap();
    src
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../builders")
        .join(name)
        .canonicalize()
        .unwrap()
}

async fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// True once the process is gone (or a zombie nobody reaped yet).
fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
    }
}

async fn wait_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !process_gone(pid) {
        assert!(Instant::now() < deadline, "process {pid} still running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `env` output as a map.
fn env_map(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Variables a shell may set by itself.
const SHELL_VARS: [&str; 4] = ["PWD", "OLDPWD", "SHLVL", "_"];

struct Pki {
    ca: CertificateAuthority,
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn pki(name: &str) -> Pki {
    let ca = CertificateAuthority::new_root(
        &Subject::cn(format!("{name} CA")),
        Validity::ten_years(),
        KeyAlgorithm::EcdsaP256,
    )
    .unwrap();
    let leaf = ca
        .issue(&LeafRequest::new(
            Subject::cn(format!("{name} client")),
            LeafProfile::TlsClient,
        ))
        .unwrap();
    Pki {
        ca_pem: ca.certificate_pem(),
        cert_pem: leaf.pem(),
        key_pem: leaf.key.to_pkcs8_pem(),
        ca,
    }
}

fn metadata(kind: &str) -> Vec<u8> {
    format!(r#"{{"type":"{kind}","label":"mycc"}}"#).into_bytes()
}

// ---------------------------------------------------------------------------------------
// configuration

#[test]
fn builder_configuration_is_validated_naming_builder_and_file() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let good = builder(root, "good", &[("detect", "exit 0"), ("build", "exit 0")]);
    BuilderSet::new(vec![good.clone()]).unwrap();

    let e = BuilderSet::new(vec![ExternalBuilder::new("", good.path.clone())]).unwrap_err();
    assert!(matches!(e, BuilderConfigError::EmptyName { .. }), "{e}");
    assert!(e.to_string().contains("no name"), "{e}");

    let e = BuilderSet::new(vec![ExternalBuilder::new("rel", "builders/x")]).unwrap_err();
    assert!(
        e.to_string().contains("'rel'") && e.to_string().contains("not absolute"),
        "{e}"
    );

    let no_build = builder(root, "nobuild", &[("detect", "exit 0")]);
    let e = BuilderSet::new(vec![no_build]).unwrap_err().to_string();
    assert!(
        e.contains("'nobuild'") && e.contains("bin/build") && e.contains("missing"),
        "{e}"
    );

    let not_exec = builder(
        root,
        "notexec",
        &[("detect", "exit 0"), ("build", "exit 0")],
    );
    std::fs::set_permissions(
        not_exec.path.join("bin/build"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let e = BuilderSet::new(vec![not_exec]).unwrap_err().to_string();
    assert!(
        e.contains("'notexec'") && e.contains("bin/build") && e.contains("not executable"),
        "{e}"
    );

    let bad_run = builder(
        root,
        "badrun",
        &[("detect", "exit 0"), ("build", "exit 0"), ("run", "")],
    );
    std::fs::set_permissions(
        bad_run.path.join("bin/run"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let e = BuilderSet::new(vec![bad_run]).unwrap_err().to_string();
    assert!(e.contains("bin/run") && e.contains("not executable"), "{e}");

    let e = BuilderSet::new(vec![good.clone(), good.clone()]).unwrap_err();
    assert!(matches!(e, BuilderConfigError::DuplicateName { .. }), "{e}");

    let e = BuilderSet::new(vec![good.clone().propagating(["A=B"])]).unwrap_err();
    assert!(matches!(e, BuilderConfigError::BadVariable { .. }), "{e}");

    // core.yaml's shape, with Fabric's older name for propagateEnvironment accepted too.
    let yaml = format!(
        "- name: one\n  path: {p}\n  propagateEnvironment: [HOME, GOPATH]\n- name: two\n  path: {p}\n  environmentWhitelist: [X]\n- name: three\n  path: {p}\n",
        p = good.path.display()
    );
    let parsed: Vec<ExternalBuilder> = serde_norway::from_str(&yaml).unwrap();
    assert_eq!(parsed[0].propagate_environment, ["HOME", "GOPATH"]);
    assert_eq!(parsed[1].propagate_environment, ["X"]);
    assert!(parsed[2].propagate_environment.is_empty());
    assert_eq!(
        parsed[0].environment_names(),
        [
            "HOME",
            "GOPATH",
            "LD_LIBRARY_PATH",
            "LIBPATH",
            "PATH",
            "TMPDIR"
        ]
    );
}

// ---------------------------------------------------------------------------------------
// the runner

#[tokio::test]
async fn detect_runs_in_order_and_the_first_claim_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let out = root.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let o = out.display();
    let a = builder(
        root,
        "a",
        &[
            (
                "detect",
                &format!("echo a > {o}/a-detect; echo 'a: not mine' >&2; exit 1"),
            ),
            ("build", &format!("touch {o}/a-build")),
        ],
    );
    let b = builder(
        root,
        "b",
        &[
            (
                "detect",
                &format!("test -f {o}/a-detect || exit 9\nprintf '%s\\n%s\\n' \"$1\" \"$2\" > {o}/b-args\ncat \"$2/metadata.json\" > {o}/b-meta"),
            ),
            (
                "build",
                &format!("printf '%s\\n%s\\n%s\\n' \"$1\" \"$2\" \"$3\" > {o}/b-build-args\necho built > \"$3/artifact\""),
            ),
            ("release", "mkdir -p \"$2/extra\" && echo released > \"$2/extra/file\""),
        ],
    );
    let c = builder(
        root,
        "c",
        &[
            ("detect", &format!("touch {o}/c-detect")),
            ("build", "exit 0"),
        ],
    );
    let set = BuilderSet::new(vec![a, b, c]).unwrap();
    let src = source(root);
    let builds = root.join("builds");
    let md = metadata("golang");
    let result = set
        .build("mycc:1234abcd", &src, &md, &builds)
        .await
        .unwrap();

    assert_eq!(result.builder, "b");
    assert!(!result.reused);
    assert!(result.connection.is_none());
    assert_eq!(result.build_dir, builds.join("mycc-1234abcd"));
    assert_eq!(result.bld_dir, builds.join("mycc-1234abcd/bld"));
    assert_eq!(
        std::fs::read_to_string(result.bld_dir.join("artifact")).unwrap(),
        "built\n"
    );
    assert_eq!(
        std::fs::read_to_string(result.release_dir.join("extra/file")).unwrap(),
        "released\n"
    );
    assert!(!out.join("a-build").exists());
    assert!(
        !out.join("c-detect").exists(),
        "c must not be asked once b claimed"
    );
    assert_eq!(std::fs::read(out.join("b-meta")).unwrap(), md);
    let args = std::fs::read_to_string(out.join("b-args")).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(args[0], src.to_str().unwrap());
    let build_args = std::fs::read_to_string(out.join("b-build-args")).unwrap();
    let build_args: Vec<&str> = build_args.lines().collect();
    assert_eq!(build_args[0], src.to_str().unwrap());
    assert_eq!(build_args[1], args[1], "build gets the same META as detect");
    // The record says which builder built it; the scratch directory is gone.
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(result.build_dir.join(BUILD_INFO_FILE)).unwrap())
            .unwrap();
    assert_eq!(record["builder_name"], "b");
    let names: Vec<String> = std::fs::read_dir(&builds)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["mycc-1234abcd"]);

    // Nobody claims: the error lists who was asked.
    let decline = builder(
        root,
        "decline",
        &[("detect", "exit 1"), ("build", "exit 0")],
    );
    let set = BuilderSet::new(vec![decline]).unwrap();
    let e = set.build("other:1", &src, &md, &builds).await.unwrap_err();
    assert!(matches!(e, BuildError::NotClaimed { .. }), "{e}");
    assert!(e.to_string().contains("'decline'"), "{e}");
    let e = BuilderSet::new(vec![])
        .unwrap()
        .build("other:1", &src, &md, &builds)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("none configured"), "{e}");
}

#[tokio::test]
async fn builders_see_only_propagated_and_default_variables() {
    std::env::set_var("WEFT_BUILDERS_TEST_PROPAGATED", "visible value");
    std::env::set_var("WEFT_BUILDERS_TEST_HIDDEN", "secret");
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let out = root.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let o = out.display();
    let b = builder(
        root,
        "envdump",
        &[
            ("detect", &format!("env > {o}/detect.env")),
            ("build", &format!("env > {o}/build.env")),
            ("release", &format!("env > {o}/release.env")),
        ],
    )
    .propagating(["WEFT_BUILDERS_TEST_PROPAGATED", "WEFT_BUILDERS_TEST_UNSET"]);
    let set = BuilderSet::new(vec![b]).unwrap();
    set.build("env:1", &source(root), &metadata("x"), &root.join("builds"))
        .await
        .unwrap();

    let allowed: BTreeSet<&str> = [
        "LD_LIBRARY_PATH",
        "LIBPATH",
        "PATH",
        "TMPDIR",
        "WEFT_BUILDERS_TEST_PROPAGATED",
    ]
    .into_iter()
    .chain(SHELL_VARS)
    .collect();
    for step in ["detect", "build", "release"] {
        let env = env_map(&std::fs::read_to_string(out.join(format!("{step}.env"))).unwrap());
        for name in env.keys() {
            assert!(allowed.contains(name.as_str()), "{step} saw {name}");
        }
        assert_eq!(
            env["WEFT_BUILDERS_TEST_PROPAGATED"], "visible value",
            "{step}"
        );
        assert_eq!(
            env.get("PATH").map(String::as_str),
            std::env::var("PATH").ok().as_deref(),
            "{step}"
        );
        assert!(!env.contains_key("WEFT_BUILDERS_TEST_HIDDEN"), "{step}");
        assert!(!env.contains_key("WEFT_BUILDERS_TEST_UNSET"), "{step}");
    }
}

#[tokio::test]
async fn a_failed_step_quotes_the_end_of_stderr_and_the_exit_code() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let b = builder(
        root,
        "failing",
        &[
            ("detect", "exit 0"),
            (
                "build",
                "i=1\nwhile [ $i -le 30 ]; do echo \"problem line $i\" >&2; i=$((i+1)); done\necho 'not on stderr'\nexit 3",
            ),
        ],
    );
    let set = BuilderSet::new(vec![b]).unwrap();
    let builds = root.join("builds");
    let e = set
        .build("fail:1", &source(root), &metadata("x"), &builds)
        .await
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("'failing'") && msg.contains("bin/build"),
        "{msg}"
    );
    assert!(msg.contains("exit code 3"), "{msg}");
    assert!(
        msg.contains("problem line 30") && !msg.contains("not on stderr"),
        "{msg}"
    );
    match e {
        BuildError::StepFailed {
            step,
            exit_code,
            stderr_tail,
            ..
        } => {
            assert_eq!(step, Step::Build);
            assert_eq!(exit_code, Some(3));
            assert_eq!(stderr_tail.len(), 20);
            assert_eq!(stderr_tail[0], "problem line 11");
            assert_eq!(stderr_tail[19], "problem line 30");
        }
        other => panic!("{other}"),
    }
    // Nothing is left behind, so the next attempt starts afresh.
    assert_eq!(std::fs::read_dir(&builds).unwrap().count(), 0);

    // A failing release fails the build too, and records nothing.
    let b = builder(
        root,
        "badrelease",
        &[
            ("detect", "exit 0"),
            ("build", "exit 0"),
            ("release", "exit 4"),
        ],
    );
    let set = BuilderSet::new(vec![b]).unwrap();
    let e = set
        .build("fail:2", &source(root), &metadata("x"), &builds)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            BuildError::StepFailed {
                step: Step::Release,
                exit_code: Some(4),
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("wrote nothing to stderr"), "{e}");
    assert!(!builds.join("fail-2").join(BUILD_INFO_FILE).exists());
}

#[tokio::test]
async fn steps_time_out_and_their_processes_are_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let out = root.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let o = out.display();
    let slow = builder(
        root,
        "slow",
        &[
            ("detect", "exit 0"),
            (
                "build",
                &format!(
                    "echo 'starting a long build' >&2\nsleep 30 &\necho $! > {o}/sleep.pid\nwait"
                ),
            ),
        ],
    );
    let set = BuilderSet::new(vec![slow.clone()])
        .unwrap()
        .with_timeouts(StepTimeouts {
            build: Duration::from_secs(1),
            ..StepTimeouts::default()
        });
    let started = Instant::now();
    let e = set
        .build(
            "slow:1",
            &source(root),
            &metadata("x"),
            &root.join("builds"),
        )
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    match &e {
        BuildError::Timeout {
            step,
            timeout,
            stderr_tail,
            ..
        } => {
            assert_eq!(*step, Step::Build);
            assert_eq!(*timeout, Duration::from_secs(1));
            assert_eq!(stderr_tail, &["starting a long build"]);
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("did not finish within 1s"), "{e}");
    let pid: u32 = std::fs::read_to_string(out.join("sleep.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_gone(pid).await;

    // A caller that stops waiting (drops the future) takes the whole process group down too.
    std::fs::remove_file(out.join("sleep.pid")).unwrap();
    let patient = BuilderSet::new(vec![slow]).unwrap();
    let gave_up = tokio::time::timeout(
        Duration::from_millis(1500),
        patient.build(
            "slow:3",
            &source(root),
            &metadata("x"),
            &root.join("builds"),
        ),
    )
    .await;
    assert!(gave_up.is_err());
    let pid: u32 = std::fs::read_to_string(out.join("sleep.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    wait_gone(pid).await;
    assert!(
        !root.join("builds/.slow-3.building").exists(),
        "scratch removed"
    );

    // A detect that hangs counts as declining; the next builder gets the package.
    let hanging = builder(
        root,
        "hanging",
        &[("detect", "sleep 30"), ("build", "exit 0")],
    );
    let next = builder(root, "next", &[("detect", "exit 0"), ("build", "exit 0")]);
    let set = BuilderSet::new(vec![hanging, next])
        .unwrap()
        .with_timeouts(StepTimeouts {
            detect: Duration::from_millis(500),
            ..StepTimeouts::default()
        });
    let started = Instant::now();
    let r = set
        .build(
            "slow:2",
            &source(root),
            &metadata("x"),
            &root.join("builds"),
        )
        .await
        .unwrap();
    assert_eq!(r.builder, "next");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_completed_build_is_reused_and_an_incomplete_one_rebuilt() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let count = root.join("count");
    let b = builder(
        root,
        "counting",
        &[
            ("detect", "exit 0"),
            (
                "build",
                &format!("echo x >> {}\necho ok > \"$3/artifact\"", count.display()),
            ),
        ],
    );
    let set = BuilderSet::new(vec![b.clone()]).unwrap();
    let src = source(root);
    let builds = root.join("builds");
    let builds_of = || std::fs::read_to_string(&count).unwrap().lines().count();

    let first = set
        .build("cc:1", &src, &metadata("x"), &builds)
        .await
        .unwrap();
    assert!(!first.reused);
    let second = set
        .build("cc:1", &src, &metadata("x"), &builds)
        .await
        .unwrap();
    assert!(second.reused);
    assert_eq!(second.bld_dir, first.bld_dir);
    assert_eq!(builds_of(), 1);
    assert!(set.cached("cc:1", &builds).unwrap().is_some());
    assert!(set.cached("cc:2", &builds).unwrap().is_none());

    // Without its record the directory is an interrupted build: built again.
    std::fs::remove_file(first.build_dir.join(BUILD_INFO_FILE)).unwrap();
    let third = set
        .build("cc:1", &src, &metadata("x"), &builds)
        .await
        .unwrap();
    assert!(!third.reused);
    assert_eq!(builds_of(), 2);
    assert!(third.bld_dir.join("artifact").exists());

    // Concurrent builds of one package run the builder once.
    let md = metadata("x");
    let (x, y) = tokio::join!(
        set.build("cc:3", &src, &md, &builds),
        set.build("cc:3", &src, &md, &builds)
    );
    assert!(x.unwrap().reused != y.unwrap().reused);
    assert_eq!(builds_of(), 3);

    // Built by a builder that is no longer configured.
    let renamed = ExternalBuilder::new("renamed", b.path.clone());
    let other = BuilderSet::new(vec![renamed]).unwrap();
    let e = other
        .build("cc:1", &src, &metadata("x"), &builds)
        .await
        .unwrap_err();
    assert!(matches!(e, BuildError::BuilderGone { .. }), "{e}");
    assert!(e.to_string().contains("'counting'"), "{e}");

    std::fs::write(first.build_dir.join(BUILD_INFO_FILE), "not json").unwrap();
    let e = set
        .build("cc:1", &src, &metadata("x"), &builds)
        .await
        .unwrap_err();
    assert!(matches!(e, BuildError::BadBuildRecord { .. }), "{e}");
}

fn run_metadata(pki: &Pki) -> RunMetadata {
    RunMetadata {
        chaincode_id: "mycc:1234".into(),
        peer_address: "peer0.org1.example.com:7052".into(),
        client_cert_pem: pki.cert_pem.clone(),
        client_key_pem: pki.key_pem.clone(),
        root_cert_pem: pki.ca_pem.clone(),
        mspid: "Org1MSP".into(),
    }
}

#[tokio::test]
async fn run_gets_chaincode_json_and_runmeta_goes_away_when_it_stops() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let out = root.join("out");
    let rundir = root.join("run");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(&rundir).unwrap();
    let o = out.display();
    let b = builder(
        root,
        "runner",
        &[
            ("detect", "exit 0"),
            ("build", "echo ok > \"$3/artifact\""),
            (
                "run",
                &format!(
                    "trap 'echo term > {o}/term; exit 0' TERM\nprintf '%s\\n%s\\n' \"$1\" \"$2\" > {o}/run-args.tmp\nmv {o}/run-args.tmp {o}/run-args\necho 'chaincode says hello'\nwhile :; do sleep 0.05; done"
                ),
            ),
        ],
    );
    let set = BuilderSet::new(vec![b]).unwrap().with_run_dir(&rundir);
    let built = set
        .build(
            "mycc:1234",
            &source(root),
            &metadata("x"),
            &root.join("builds"),
        )
        .await
        .unwrap();
    let pki = pki("run");

    let mut running = set.run(&built, run_metadata(&pki)).await.unwrap();
    wait_for_file(&out.join("run-args")).await;
    let runmeta = running.runmeta_dir().to_owned();
    assert!(runmeta.starts_with(&rundir));
    let args = std::fs::read_to_string(out.join("run-args")).unwrap();
    assert_eq!(
        args.lines().collect::<Vec<_>>(),
        [built.bld_dir.to_str().unwrap(), runmeta.to_str().unwrap()]
    );
    assert_eq!(mode(&runmeta), 0o700);
    let cc_json = runmeta.join("chaincode.json");
    assert_eq!(mode(&cc_json), 0o600);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&cc_json).unwrap()).unwrap();
    let obj = v.as_object().unwrap();
    let keys: BTreeSet<&str> = obj.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "chaincode_id",
            "peer_address",
            "client_cert",
            "client_key",
            "root_cert",
            "mspid"
        ])
    );
    assert_eq!(v["chaincode_id"], "mycc:1234");
    assert_eq!(v["peer_address"], "peer0.org1.example.com:7052");
    assert_eq!(v["client_cert"], pki.cert_pem.as_str());
    assert_eq!(v["client_key"], pki.key_pem.as_str());
    assert_eq!(v["root_cert"], pki.ca_pem.as_str());
    assert_eq!(v["mspid"], "Org1MSP");
    assert!(running.try_wait().unwrap().is_none());

    let status = running.stop(Duration::from_secs(5)).await.unwrap();
    assert!(status.success(), "{status:?}");
    assert!(out.join("term").exists(), "bin/run got SIGTERM");
    assert!(
        !runmeta.exists(),
        "RUNMETA removed after the chaincode stopped"
    );

    // Without TLS the PEM fields are empty strings.
    std::fs::remove_file(out.join("run-args")).unwrap();
    let mut running = set
        .run(
            &built,
            RunMetadata {
                chaincode_id: "mycc:1234".into(),
                peer_address: "peer0:7052".into(),
                ..RunMetadata::default()
            },
        )
        .await
        .unwrap();
    wait_for_file(&out.join("run-args")).await;
    let v: serde_json::Value = serde_json::from_slice(
        &std::fs::read(running.runmeta_dir().join("chaincode.json")).unwrap(),
    )
    .unwrap();
    for field in ["client_cert", "client_key", "root_cert", "mspid"] {
        assert_eq!(v[field], "", "{field}");
    }
    // kill() does not wait for a grace period.
    let status = running.kill().await.unwrap();
    assert!(!status.success());
    assert!(!running.runmeta_dir().exists());

    // Dropping a running chaincode kills it and removes RUNMETA.
    std::fs::remove_file(out.join("run-args")).unwrap();
    let running = set.run(&built, run_metadata(&pki)).await.unwrap();
    wait_for_file(&out.join("run-args")).await;
    let pid = running.id().unwrap();
    let runmeta = running.runmeta_dir().to_owned();
    drop(running);
    assert!(!runmeta.exists());
    wait_gone(pid).await;

    // Inconsistent TLS material is refused before anything runs.
    let e = set
        .run(
            &built,
            RunMetadata {
                client_key_pem: String::new(),
                ..run_metadata(&pki)
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, BuildError::BadRunMetadata { .. }), "{e}");
    assert_eq!(std::fs::read_dir(&rundir).unwrap().count(), 0);
}

#[tokio::test]
async fn run_needs_bin_run_and_exit_status_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let norun = builder(root, "norun", &[("detect", "exit 0"), ("build", "exit 0")]);
    let set = BuilderSet::new(vec![norun]).unwrap();
    let built = set
        .build("a:1", &source(root), &metadata("x"), &root.join("builds"))
        .await
        .unwrap();
    let e = set.run(&built, run_metadata(&pki("x"))).await.unwrap_err();
    assert!(matches!(e, BuildError::NoRun { .. }), "{e}");

    let exits = builder(
        root,
        "exits",
        &[
            ("detect", "exit 0"),
            ("build", "exit 0"),
            ("run", "echo bye >&2; exit 5"),
        ],
    );
    let set = BuilderSet::new(vec![exits]).unwrap();
    let built = set
        .build("b:1", &source(root), &metadata("x"), &root.join("builds"))
        .await
        .unwrap();
    let mut running = set.run(&built, run_metadata(&pki("x"))).await.unwrap();
    let status = running.wait().await.unwrap();
    assert_eq!(status.code(), Some(5));
    assert_eq!(running.exit_status(), Some(status));
    assert!(running.id().is_none());
    assert!(!running.runmeta_dir().exists());
}

// ---------------------------------------------------------------------------------------
// connection.json

fn conn(json: serde_json::Value) -> Result<ConnectionInfo, ConnectionError> {
    ConnectionInfo::parse(json.to_string().as_bytes(), "connection.json")
}

#[test]
fn connection_json_every_field() {
    let p = pki("cc");
    let c = conn(serde_json::json!({
        "address": "cc.example.com:9999",
        "dial_timeout": "1m30s",
        "tls_required": true,
        "client_auth_required": true,
        "client_key": p.key_pem,
        "client_cert": p.cert_pem,
        "root_cert": p.ca_pem,
    }))
    .unwrap();
    assert_eq!(c.address(), "cc.example.com:9999");
    assert_eq!(c.endpoint().address(), "cc.example.com:9999");
    assert_eq!(c.endpoint().server_name(), "cc.example.com");
    assert_eq!(c.dial_timeout(), Duration::from_secs(90));
    assert!(c.tls_required() && c.client_auth_required());
    assert_eq!(c.client_key_pem(), p.key_pem);
    assert_eq!(c.client_cert_pem(), p.cert_pem);
    assert_eq!(c.root_cert_pem(), p.ca_pem);
    assert!(c.ignored_fields().is_empty());
    assert!(
        !format!("{c:?}").contains("PRIVATE KEY"),
        "Debug hides the key"
    );
    let client = c.tls_client().unwrap().unwrap();
    assert!(client.has_identity());
    let s = c.settings();
    assert_eq!(s.tls_enabled, "tls_required in connection.json");
    assert_eq!(s.root_cas, "root_cert in connection.json");
    assert_eq!(s.client_cert, "client_cert/client_key in connection.json");
    assert_eq!(s.server_name, "the host in connection.json's address");

    // TLS without client authentication: an anonymous client; stray key fields are ignored.
    let c = conn(serde_json::json!({
        "address": "[::1]:7052",
        "tls_required": true,
        "root_cert": p.ca_pem,
        "client_key": "ignored",
    }))
    .unwrap();
    assert!(!c.tls_client().unwrap().unwrap().has_identity());
}

#[test]
fn connection_json_defaults_and_durations() {
    let c = conn(serde_json::json!({"address": "cc:7052"})).unwrap();
    assert_eq!(c.dial_timeout(), DEFAULT_DIAL_TIMEOUT);
    assert_eq!(DEFAULT_DIAL_TIMEOUT, Duration::from_secs(3));
    assert!(!c.tls_required() && !c.client_auth_required());
    assert!(
        c.tls_client().unwrap().is_none(),
        "plaintext when tls_required is false"
    );

    let timeout = |v: serde_json::Value| {
        conn(serde_json::json!({"address": "cc:7052", "dial_timeout": v})).map(|c| c.dial_timeout())
    };
    assert_eq!(timeout("10s".into()).unwrap(), Duration::from_secs(10));
    assert_eq!(timeout("500ms".into()).unwrap(), Duration::from_millis(500));
    assert_eq!(timeout("1h".into()).unwrap(), Duration::from_secs(3600));
    assert_eq!(
        timeout(2_500_000_000u64.into()).unwrap(),
        Duration::from_millis(2500)
    );
    assert_eq!(timeout(1.5e9.into()).unwrap(), Duration::from_millis(1500));
    assert_eq!(timeout(0.into()).unwrap(), DEFAULT_DIAL_TIMEOUT);
    assert_eq!(timeout("".into()).unwrap(), DEFAULT_DIAL_TIMEOUT);
    assert_eq!(
        timeout(serde_json::Value::Null).unwrap(),
        DEFAULT_DIAL_TIMEOUT
    );
    for bad in [
        serde_json::json!("10"),
        serde_json::json!("soon"),
        serde_json::json!("-1s"),
        serde_json::json!(-5),
    ] {
        let e = timeout(bad.clone()).unwrap_err();
        assert!(
            matches!(e, ConnectionError::BadDuration { .. }),
            "{bad}: {e}"
        );
        assert!(e.to_string().contains("dial_timeout"), "{e}");
    }
    let e = timeout(true.into()).unwrap_err();
    assert!(
        matches!(
            e,
            ConnectionError::WrongType {
                field: "dial_timeout",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn connection_json_refuses_string_booleans_naming_the_field() {
    for field in ["tls_required", "client_auth_required"] {
        let e = conn(serde_json::json!({"address": "cc:7052", field: "true"})).unwrap_err();
        assert!(matches!(e, ConnectionError::StringBoolean { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.contains(field) && msg.contains("JSON boolean"), "{msg}");
        assert!(msg.contains("\"true\""), "{msg}");
        let e = conn(serde_json::json!({"address": "cc:7052", field: 1})).unwrap_err();
        assert!(matches!(e, ConnectionError::WrongType { .. }), "{e}");
        assert!(e.to_string().contains(field), "{e}");
    }
}

#[test]
fn connection_json_requires_what_tls_needs() {
    let p = pki("cc");
    let e = conn(serde_json::json!({"address": "cc:7052", "tls_required": true})).unwrap_err();
    assert!(
        matches!(
            e,
            ConnectionError::Missing {
                field: "root_cert",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("root_cert is required"), "{e}");

    let e = conn(serde_json::json!({
        "address": "cc:7052", "tls_required": true, "client_auth_required": true,
        "root_cert": p.ca_pem, "client_key": p.key_pem,
    }))
    .unwrap_err();
    assert!(
        matches!(
            e,
            ConnectionError::Missing {
                field: "client_cert",
                ..
            }
        ),
        "{e}"
    );

    let e = conn(serde_json::json!({
        "address": "cc:7052", "tls_required": true, "client_auth_required": true,
        "root_cert": p.ca_pem, "client_cert": p.cert_pem,
    }))
    .unwrap_err();
    assert!(
        matches!(
            e,
            ConnectionError::Missing {
                field: "client_key",
                ..
            }
        ),
        "{e}"
    );

    let e =
        conn(serde_json::json!({"address": "cc:7052", "client_auth_required": true})).unwrap_err();
    assert!(
        matches!(e, ConnectionError::ClientAuthWithoutTls { .. }),
        "{e}"
    );

    for bad in [serde_json::json!({}), serde_json::json!({"address": ""})] {
        let e = conn(bad).unwrap_err();
        assert!(
            matches!(
                e,
                ConnectionError::Missing {
                    field: "address",
                    ..
                }
            ),
            "{e}"
        );
    }
    let e = conn(serde_json::json!({"address": "no-port"})).unwrap_err();
    assert!(matches!(e, ConnectionError::BadAddress { .. }), "{e}");
    assert!(e.to_string().contains("\"no-port\""), "{e}");
    let e = conn(serde_json::json!({"address": 7052})).unwrap_err();
    assert!(
        matches!(
            e,
            ConnectionError::WrongType {
                field: "address",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn connection_json_pem_must_parse_and_match() {
    let p = pki("cc");
    let other = pki("other");
    let e = conn(serde_json::json!({
        "address": "cc:7052", "tls_required": true, "root_cert": "/etc/cc/ca.pem",
    }))
    .unwrap_err();
    assert!(
        matches!(
            e,
            ConnectionError::BadPem {
                field: "root_cert",
                ..
            }
        ),
        "{e}"
    );
    let msg = e.to_string();
    assert!(msg.contains("root_cert in connection.json"), "{msg}");
    assert!(msg.contains("PEM text itself"), "{msg}");

    let mangled = p.ca_pem.replace("-----END CERTIFICATE-----", "");
    let e = conn(serde_json::json!({
        "address": "cc:7052", "tls_required": true, "root_cert": mangled,
    }))
    .unwrap_err();
    assert!(
        matches!(
            e,
            ConnectionError::BadPem {
                field: "root_cert",
                ..
            }
        ),
        "{e}"
    );

    let e = conn(serde_json::json!({
        "address": "cc:7052", "tls_required": true, "client_auth_required": true,
        "root_cert": p.ca_pem, "client_cert": p.cert_pem,
        "client_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    }))
    .unwrap_err();
    assert!(
        matches!(
            e,
            ConnectionError::BadPem {
                field: "client_key",
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string().contains("client_key in connection.json"),
        "{e}"
    );

    let e = conn(serde_json::json!({
        "address": "cc:7052", "tls_required": true, "client_auth_required": true,
        "root_cert": p.ca_pem, "client_cert": p.cert_pem, "client_key": other.key_pem,
    }))
    .unwrap_err();
    assert!(matches!(e, ConnectionError::KeyMismatch { .. }), "{e}");
    assert!(e.to_string().contains("client_key does not match"), "{e}");
}

#[test]
fn connection_json_unknown_fields_and_bad_documents() {
    let c = conn(serde_json::json!({"address": "cc:7052", "tls_requried": true, "x": 1})).unwrap();
    assert_eq!(c.ignored_fields(), ["tls_requried", "x"]);
    assert!(!c.tls_required());

    let e = ConnectionInfo::parse(b"{not json", "connection.json").unwrap_err();
    assert!(matches!(e, ConnectionError::Json { .. }), "{e}");
    let e =
        ConnectionInfo::parse(b"[]", "/x/release/chaincode/server/connection.json").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/x/release/chaincode/server/connection.json: expected a JSON object"),
        "{e}"
    );
    let e = ConnectionInfo::parse(b"{}", "mycc:abc").unwrap_err();
    assert!(
        e.to_string().starts_with("connection.json (mycc:abc): "),
        "{e}"
    );
    let e = ConnectionInfo::from_file(Path::new("/nonexistent/connection.json")).unwrap_err();
    assert!(matches!(e, ConnectionError::Read { .. }), "{e}");
}

#[tokio::test]
async fn tls_client_from_connection_json_handshakes_and_names_its_fields() {
    let p = pki("cc");
    let server_leaf =
        p.ca.issue(
            &LeafRequest::new(Subject::cn("chaincode server"), LeafProfile::TlsServer)
                .sans(["cc.example.com"]),
        )
        .unwrap();
    let server_id = weft_tls::Identity::from_pem(
        server_leaf.pem().as_bytes(),
        server_leaf.key.to_pkcs8_pem().as_bytes(),
        "server",
    )
    .unwrap();
    let ca_der = weft_crypto::pem::certificates(p.ca_pem.as_bytes(), "ca").unwrap();
    let server = weft_tls::TlsServer::new(
        &server_id,
        weft_tls::ClientAuth::Require(weft_tls::Trust::Roots(ca_der)),
        weft_tls::Profile::Fabric,
    )
    .unwrap();

    let good = conn(serde_json::json!({
        "address": "cc.example.com:9999", "tls_required": true, "client_auth_required": true,
        "root_cert": p.ca_pem, "client_cert": p.cert_pem, "client_key": p.key_pem,
    }))
    .unwrap();
    let client = good.tls_client().unwrap().unwrap();
    let (a, b) = tokio::io::duplex(64 * 1024);
    let endpoint = good.endpoint();
    let (accepted, connected) = tokio::join!(
        server.accept(a, Some("peer".into())),
        client.connect(b, &endpoint)
    );
    accepted.unwrap();
    connected.unwrap();

    // Trusting the wrong CA: the diagnosis points at root_cert in connection.json.
    let other = pki("other");
    let wrong = conn(serde_json::json!({
        "address": "cc.example.com:9999", "tls_required": true,
        "root_cert": other.ca_pem,
    }))
    .unwrap();
    let client = wrong
        .tls_client()
        .unwrap()
        .unwrap()
        .with_failure_logging(false);
    let (a, b) = tokio::io::duplex(64 * 1024);
    let endpoint = wrong.endpoint();
    let (_, connected) = tokio::join!(
        server.accept(a, Some("peer".into())),
        client.connect(b, &endpoint)
    );
    let e = connected.unwrap_err().to_string();
    assert!(e.contains("root_cert in connection.json"), "{e}");
}

// ---------------------------------------------------------------------------------------
// the builders weft ships

#[test]
fn shipped_builders_share_one_json_helper() {
    let a = std::fs::read(shipped("ccaas").join("lib/json.awk")).unwrap();
    let b = std::fs::read(shipped("binary").join("lib/json.awk")).unwrap();
    let c = std::fs::read(shipped("node").join("lib/json.awk")).unwrap();
    assert_eq!(a, b, "builders/*/lib/json.awk must stay identical");
    assert_eq!(a, c, "builders/*/lib/json.awk must stay identical");
    for (name, steps) in [
        ("ccaas", &["detect", "build", "release"][..]),
        ("binary", &["detect", "build", "release", "run"][..]),
        ("node", &["detect", "build", "release", "run"][..]),
    ] {
        for step in steps {
            assert_eq!(
                mode(&shipped(name).join("bin").join(step)) & 0o111,
                0o111,
                "{name}/{step}"
            );
        }
        ExternalBuilder::new(name, shipped(name))
            .validate()
            .unwrap();
    }
}

fn shipped_set() -> BuilderSet {
    BuilderSet::new(vec![
        ExternalBuilder::new("binary", shipped("binary")),
        ExternalBuilder::new("ccaas", shipped("ccaas"))
            .propagating(["CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG"]),
    ])
    .unwrap()
}

#[tokio::test]
async fn shipped_ccaas_builder_end_to_end() {
    let p = pki("ccaas");
    // The only test that sets this variable.
    std::env::set_var(
        "CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG",
        serde_json::json!({
            "peername": "org1peer0",
            "port": 9999,
            "root": p.ca_pem,
            "key": p.key_pem,
            "cert": p.cert_pem,
        })
        .to_string(),
    );
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let builds = root.join("builds");
    let set = shipped_set();

    let src = root.join("src");
    std::fs::create_dir_all(src.join("META-INF/statedb/couchdb/indexes")).unwrap();
    std::fs::write(
        src.join("META-INF/statedb/couchdb/indexes/owner.json"),
        r#"{"index":{"fields":["owner"]}}"#,
    )
    .unwrap();
    std::fs::write(
        src.join("connection.json"),
        r#"{
  "address": "{{.peername}}-assetcc:{{ .port }}",
  "dial_timeout": "10s",
  "tls_required": true,
  "client_auth_required": true,
  "root_cert": "{{.root}}",
  "client_key": "{{.key}}",
  "client_cert": "{{.cert}}"
}"#,
    )
    .unwrap();
    let md = br#"{"type":"CCaaS","label":"assetcc"}"#;
    let built = set.build("assetcc:beef", &src, md, &builds).await.unwrap();
    assert_eq!(built.builder, "ccaas");
    let c = built.connection.as_ref().expect("a chaincode server");
    assert_eq!(c.address(), "org1peer0-assetcc:9999");
    assert_eq!(c.dial_timeout(), Duration::from_secs(10));
    assert!(c.tls_required() && c.client_auth_required());
    assert_eq!(c.root_cert_pem(), p.ca_pem);
    assert_eq!(c.client_key_pem(), p.key_pem);
    assert_eq!(c.client_cert_pem(), p.cert_pem);
    assert!(c.tls_client().unwrap().is_some());
    let released = built.release_dir.join("chaincode/server/connection.json");
    assert_eq!(mode(&released), 0o600, "it holds a private key");
    assert_eq!(mode(&built.bld_dir.join("connection.json")), 0o600);
    assert!(built.bld_dir.join("metadata.json").exists());
    assert_eq!(
        std::fs::read_to_string(built.release_dir.join("statedb/couchdb/indexes/owner.json"))
            .unwrap(),
        r#"{"index":{"fields":["owner"]}}"#
    );
    // Reused with its connection, and never run.
    let again = set.build("assetcc:beef", &src, md, &builds).await.unwrap();
    assert!(again.reused);
    assert_eq!(
        again.connection.unwrap().address(),
        "org1peer0-assetcc:9999"
    );
    let e = set.run(&built, run_metadata(&p)).await.unwrap_err();
    assert!(matches!(e, BuildError::IsServer { .. }), "{e}");
    assert!(e.to_string().contains("dial org1peer0-assetcc:9999"), "{e}");

    // A template key missing from the configuration fails the build, naming the key.
    let src2 = root.join("src2");
    std::fs::create_dir_all(&src2).unwrap();
    std::fs::write(
        src2.join("connection.json"),
        r#"{"address":"{{.host}}:7052","dial_timeout":"10s","tls_required":false}"#,
    )
    .unwrap();
    let e = set.build("nohost:1", &src2, md, &builds).await.unwrap_err();
    match &e {
        BuildError::StepFailed {
            builder,
            step,
            stderr_tail,
            ..
        } => {
            assert_eq!((builder.as_str(), *step), ("ccaas", Step::Build));
            let all = stderr_tail.join("\n");
            assert!(
                all.contains("\"address\" uses {{.host}} but key \"host\" is missing from CHAINCODE_AS_A_SERVICE_BUILDER_CONFIG"),
                "{all}"
            );
        }
        other => panic!("{other}"),
    }
    assert!(!builds.join("nohost-1").join(BUILD_INFO_FILE).exists());

    // A connection.json that is not JSON, and a package without one.
    std::fs::write(src2.join("connection.json"), r#"{"address": "x:1",}"#).unwrap();
    let e = set.build("broken:1", &src2, md, &builds).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("connection.json: expected a member name"),
        "{e}"
    );
    std::fs::remove_file(src2.join("connection.json")).unwrap();
    let e = set
        .build("missing:1", &src2, md, &builds)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("has no connection.json"), "{e}");

    // Rendered values are validated by the peer: a string boolean is refused, and the
    // build is not recorded as finished.
    std::fs::write(
        src2.join("connection.json"),
        r#"{"address":"{{.peername}}:7052","tls_required":"true"}"#,
    )
    .unwrap();
    let e = set
        .build("strbool:1", &src2, md, &builds)
        .await
        .unwrap_err();
    assert!(matches!(e, BuildError::Connection { .. }), "{e}");
    assert!(e.to_string().contains("tls_required"), "{e}");
    assert!(!builds.join("strbool-1").join(BUILD_INFO_FILE).exists());

    // Other types are not claimed by either shipped builder.
    let e = set
        .build("golang:1", &src, &metadata("golang"), &builds)
        .await
        .unwrap_err();
    assert!(matches!(e, BuildError::NotClaimed { .. }), "{e}");
    assert!(e.to_string().contains("'binary', 'ccaas'"), "{e}");
}

/// A chaincode that records what it was given, then exits (or, with `wait`, runs until
/// SIGTERM).
fn recording_chaincode(out: &Path, wait: bool) -> String {
    let o = out.display();
    let tail = if wait {
        format!("trap 'echo stopped > {o}/stopped; exit 0' TERM\nwhile :; do sleep 0.05; done")
    } else {
        "exit 0".to_owned()
    };
    format!(
        r#"#!/bin/sh
for a in "$@"; do printf '%s\n' "$a"; done > {o}/args
env > {o}/env
if [ -n "${{CORE_TLS_CLIENT_KEY_FILE-}}" ]; then
    cp "$CORE_TLS_CLIENT_KEY_FILE" {o}/key.pem
    cp "$CORE_TLS_CLIENT_CERT_FILE" {o}/cert.pem
    cp "$CORE_TLS_CLIENT_KEY_PATH" {o}/key.b64
    cp "$CORE_TLS_CLIENT_CERT_PATH" {o}/cert.b64
    cp "$CORE_PEER_TLS_ROOTCERT_FILE" {o}/root.pem
    stat -c '%a' "$CORE_TLS_CLIENT_KEY_FILE" "$CORE_TLS_CLIENT_KEY_PATH" "$(dirname "$CORE_TLS_CLIENT_KEY_FILE")" > {o}/modes
fi
echo ready > {o}/ready
{tail}
"#
    )
}

#[tokio::test]
async fn shipped_binary_builder_builds_and_runs_with_fabrics_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let out = root.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let builds = root.join("builds");
    let set = shipped_set().with_run_dir(root.join("run"));
    std::fs::create_dir_all(root.join("run")).unwrap();

    let src = root.join("src");
    write_exec(&src.join("bin/mycc"), &recording_chaincode(&out, false));
    std::fs::write(src.join("README"), "not the executable").unwrap();
    let md = br#"{"type":"Binary","label":"mycc","path":"bin/mycc"}"#;
    let built = set.build("mycc:1234", &src, md, &builds).await.unwrap();
    assert_eq!(built.builder, "binary");
    assert!(built.connection.is_none());
    assert_eq!(mode(&built.bld_dir.join("chaincode")), 0o755);

    let p = pki("binary");
    let mut running = set.run(&built, run_metadata(&p)).await.unwrap();
    let runmeta = running.runmeta_dir().to_owned();
    let status = running.wait().await.unwrap();
    assert!(status.success(), "{status:?}");

    let args = std::fs::read_to_string(out.join("args")).unwrap();
    assert_eq!(args, "-peer.address=peer0.org1.example.com:7052\n");
    let env = env_map(&std::fs::read_to_string(out.join("env")).unwrap());
    let core: BTreeMap<&str, &str> = env
        .iter()
        .filter(|(k, _)| k.starts_with("CORE_"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let tls_dir = Path::new(core["CORE_TLS_CLIENT_KEY_FILE"])
        .parent()
        .unwrap()
        .to_owned();
    assert!(
        tls_dir.starts_with(&runmeta),
        "TLS files live inside RUNMETA"
    );
    let f = |name: &str| tls_dir.join(name).display().to_string();
    let expected: BTreeMap<&str, String> = BTreeMap::from([
        ("CORE_CHAINCODE_ID_NAME", "mycc:1234".to_owned()),
        ("CORE_PEER_TLS_ENABLED", "true".to_owned()),
        ("CORE_PEER_LOCALMSPID", "Org1MSP".to_owned()),
        ("CORE_TLS_CLIENT_KEY_FILE", f("client.key")),
        ("CORE_TLS_CLIENT_CERT_FILE", f("client.crt")),
        ("CORE_TLS_CLIENT_KEY_PATH", f("client.key.b64")),
        ("CORE_TLS_CLIENT_CERT_PATH", f("client.crt.b64")),
        ("CORE_PEER_TLS_ROOTCERT_FILE", f("root.crt")),
    ]);
    assert_eq!(
        core,
        expected
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<BTreeMap<_, _>>()
    );
    // Only the builder's environment besides: nothing else of the test process.
    for name in env.keys() {
        assert!(
            name.starts_with("CORE_")
                || ["PATH", "LD_LIBRARY_PATH", "LIBPATH", "TMPDIR"].contains(&name.as_str())
                || SHELL_VARS.contains(&name.as_str()),
            "chaincode saw {name}"
        );
    }
    let read = |n: &str| std::fs::read_to_string(out.join(n)).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(read("key.pem"), p.key_pem);
    assert_eq!(read("cert.pem"), p.cert_pem);
    assert_eq!(read("root.pem"), p.ca_pem);
    assert_eq!(
        read("key.b64"),
        b64.encode(&p.key_pem),
        "one line of base64 of the PEM"
    );
    assert_eq!(read("cert.b64"), b64.encode(&p.cert_pem));
    assert_eq!(read("modes"), "600\n600\n700\n");
    assert!(
        !tls_dir.exists(),
        "TLS files removed when the chaincode exited"
    );
    assert!(!runmeta.exists());

    // Without TLS: CORE_PEER_TLS_ENABLED=false and no file variables; no MSP id given.
    let mut running = set
        .run(
            &built,
            RunMetadata {
                chaincode_id: "mycc:1234".into(),
                peer_address: "127.0.0.1:7052".into(),
                ..RunMetadata::default()
            },
        )
        .await
        .unwrap();
    assert!(running.wait().await.unwrap().success());
    let env = env_map(&std::fs::read_to_string(out.join("env")).unwrap());
    let core: BTreeMap<&str, &str> = env
        .iter()
        .filter(|(k, _)| k.starts_with("CORE_"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        core,
        BTreeMap::from([
            ("CORE_CHAINCODE_ID_NAME", "mycc:1234"),
            ("CORE_PEER_TLS_ENABLED", "false"),
        ])
    );
    assert_eq!(read("args"), "-peer.address=127.0.0.1:7052\n");

    // Stopping: SIGTERM reaches the chaincode, the run script cleans up and reports its
    // status.
    let src_wait = root.join("src-wait");
    write_exec(&src_wait.join("cc"), &recording_chaincode(&out, true));
    let md_single = br#"{"type":"binary","label":"waiting"}"#;
    let built = set
        .build("waiting:1", &src_wait, md_single, &builds)
        .await
        .unwrap();
    std::fs::remove_file(out.join("ready")).unwrap();
    let mut running = set.run(&built, run_metadata(&p)).await.unwrap();
    wait_for_file(&out.join("ready")).await;
    let tls_dir = {
        let env = env_map(&std::fs::read_to_string(out.join("env")).unwrap());
        Path::new(&env["CORE_TLS_CLIENT_KEY_FILE"])
            .parent()
            .unwrap()
            .to_owned()
    };
    assert!(tls_dir.exists());
    let status = running.stop(Duration::from_secs(5)).await.unwrap();
    assert!(status.success(), "{status:?}");
    assert!(out.join("stopped").exists());
    assert!(!tls_dir.exists());
    assert!(!running.runmeta_dir().exists());
}

#[tokio::test]
async fn shipped_binary_builder_refuses_what_it_cannot_run() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let builds = root.join("builds");
    let set = shipped_set();
    let build_err = |id: &'static str, src: PathBuf, md: &'static str| {
        let set = &set;
        let builds = builds.clone();
        async move {
            let e = set
                .build(id, &src, md.as_bytes(), &builds)
                .await
                .unwrap_err();
            match &e {
                BuildError::StepFailed {
                    builder,
                    stderr_tail,
                    ..
                } => {
                    assert_eq!(builder, "binary");
                    stderr_tail.join("\n")
                }
                other => panic!("{other}"),
            }
        }
    };

    let src = root.join("a");
    write_exec(&src.join("cc"), "#!/bin/sh\n");
    let msg = build_err("a:1", src.clone(), r#"{"type":"binary","path":"../cc"}"#).await;
    assert!(msg.contains("leaves the package"), "{msg}");
    let msg = build_err("a:2", src.clone(), r#"{"type":"binary","path":"/bin/sh"}"#).await;
    assert!(msg.contains("is absolute"), "{msg}");
    let msg = build_err("a:3", src.clone(), r#"{"type":"binary","path":"nope"}"#).await;
    assert!(msg.contains("no such file"), "{msg}");

    std::fs::write(src.join("cc2"), "#!/bin/sh\n").unwrap();
    let msg = build_err("a:4", src.clone(), r#"{"type":"binary"}"#).await;
    assert!(msg.contains("holds 2 files"), "{msg}");
    let msg = build_err("a:5", src.clone(), r#"{"type":"binary","path":"cc2"}"#).await;
    assert!(msg.contains("not executable"), "{msg}");

    std::os::unix::fs::symlink(src.join("cc"), src.join("link")).unwrap();
    let msg = build_err("a:6", src.clone(), r#"{"type":"binary","path":"link"}"#).await;
    assert!(msg.contains("symbolic link"), "{msg}");
    std::fs::create_dir_all(src.join("dir")).unwrap();
    let msg = build_err("a:7", src.clone(), r#"{"type":"binary","path":"dir"}"#).await;
    assert!(msg.contains("not a regular file"), "{msg}");
}

fn node_set(run_dir: &Path) -> BuilderSet {
    BuilderSet::new(vec![
        ExternalBuilder::new("binary", shipped("binary")),
        ExternalBuilder::new("ccaas", shipped("ccaas")),
        ExternalBuilder::new("node", shipped("node")),
    ])
    .unwrap()
    .with_run_dir(run_dir)
}

/// A node package's code as Fabric and weft lay it out: the application under `src/`,
/// `META-INF/` at the top. `node_modules` is already there (so the build does not run npm),
/// with a stand-in `fabric-chaincode-node` that records what it was started with.
fn node_package(root: &Path, name: &str, out: &Path, wait: bool) -> PathBuf {
    let src = root.join(name);
    let app = src.join("src");
    std::fs::create_dir_all(app.join("lib")).unwrap();
    std::fs::write(
        app.join("package.json"),
        r#"{"name":"assetcc","version":"1.0.0","main":"index.js","scripts":{"start":"fabric-chaincode-node start"},"dependencies":{"fabric-contract-api":"2.5.8"}}"#,
    )
    .unwrap();
    std::fs::write(app.join("index.js"), "module.exports.contracts = [];\n").unwrap();
    std::fs::write(app.join("lib/contract.js"), "// contract\n").unwrap();
    std::fs::create_dir_all(src.join("META-INF/statedb/couchdb/indexes")).unwrap();
    std::fs::write(
        src.join("META-INF/statedb/couchdb/indexes/owner.json"),
        r#"{"index":{"fields":["Owner"]}}"#,
    )
    .unwrap();
    let o = out.display();
    let cli = recording_chaincode(out, wait).replacen(
        "#!/bin/sh\n",
        &format!("#!/bin/sh\npwd -P > {o}/cwd\necho $$ > {o}/pid\n"),
        1,
    );
    write_exec(&app.join("node_modules/.bin/fabric-chaincode-node"), &cli);
    src
}

#[tokio::test]
async fn shipped_node_builder_detects_and_builds_node_packages() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let out = root.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let builds = root.join("builds");
    let set = node_set(&root.join("run"));

    // Claimed whatever the case of "type"; the application goes to BLD/src with META-INF.
    let src = node_package(root, "pkg", &out, false);
    let md = br#"{"type":"Node","label":"assetcc"}"#;
    let built = set.build("assetcc:1", &src, md, &builds).await.unwrap();
    assert_eq!(built.builder, "node");
    assert!(built.connection.is_none());
    let app = built.bld_dir.join("src");
    for file in [
        "package.json",
        "index.js",
        "lib/contract.js",
        "META-INF/statedb/couchdb/indexes/owner.json",
    ] {
        assert_eq!(
            std::fs::read(app.join(file)).unwrap(),
            std::fs::read(if file.starts_with("META-INF") {
                src.join(file)
            } else {
                src.join("src").join(file)
            })
            .unwrap(),
            "{file}"
        );
    }
    assert_eq!(
        mode(&app.join("node_modules/.bin/fabric-chaincode-node")) & 0o111,
        0o111
    );
    assert_eq!(
        std::fs::read(built.bld_dir.join("metadata.json")).unwrap(),
        md
    );
    assert_eq!(
        std::fs::read_to_string(built.release_dir.join("statedb/couchdb/indexes/owner.json"))
            .unwrap(),
        r#"{"index":{"fields":["Owner"]}}"#
    );

    // package.json at the top of the code archive is accepted too.
    let flat = root.join("flat");
    std::fs::create_dir_all(flat.join("node_modules")).unwrap();
    std::fs::write(flat.join("package.json"), r#"{"name":"flat"}"#).unwrap();
    std::fs::write(flat.join("index.js"), "").unwrap();
    let built = set
        .build("flat:1", &flat, &metadata("node"), &builds)
        .await
        .unwrap();
    assert_eq!(built.builder, "node");
    assert!(built.bld_dir.join("src/package.json").exists());
    assert!(built.bld_dir.join("src/index.js").exists());

    // Declined: no package.json, or another type (which the other builders decline too).
    let empty = root.join("empty");
    std::fs::create_dir_all(empty.join("src")).unwrap();
    std::fs::write(empty.join("src/index.js"), "").unwrap();
    let e = set
        .build("empty:1", &empty, &metadata("node"), &builds)
        .await
        .unwrap_err();
    assert!(matches!(e, BuildError::NotClaimed { .. }), "{e}");
    let e = set
        .build("golang:1", &src, &metadata("golang"), &builds)
        .await
        .unwrap_err();
    assert!(matches!(e, BuildError::NotClaimed { .. }), "{e}");
    assert!(e.to_string().contains("'binary', 'ccaas', 'node'"), "{e}");
    let e = set
        .build("binary:1", &src, &metadata("binary"), &builds)
        .await
        .unwrap_err();
    assert!(
        matches!(e, BuildError::StepFailed { ref builder, .. } if builder == "binary"),
        "the binary builder claims it, not node: {e}"
    );
}

#[tokio::test]
async fn shipped_node_builder_runs_fabric_chaincode_node_with_fabrics_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let out = root.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::create_dir_all(root.join("run")).unwrap();
    let builds = root.join("builds");
    let set = node_set(&root.join("run"));

    let src = node_package(root, "pkg", &out, false);
    let built = set
        .build("mycc:1234", &src, &metadata("node"), &builds)
        .await
        .unwrap();
    let p = pki("node");
    let mut running = set.run(&built, run_metadata(&p)).await.unwrap();
    let pid = running.id().unwrap();
    let runmeta = running.runmeta_dir().to_owned();
    let status = running.wait().await.unwrap();
    assert!(status.success(), "{status:?}");

    let read = |n: &str| std::fs::read_to_string(out.join(n)).unwrap();
    assert_eq!(
        read("args"),
        "start\n--peer.address\npeer0.org1.example.com:7052\n"
    );
    assert_eq!(
        read("pid").trim(),
        pid.to_string(),
        "bin/run execs the chaincode"
    );
    assert_eq!(
        Path::new(read("cwd").trim()),
        built.bld_dir.join("src").canonicalize().unwrap(),
        "fabric-chaincode-node loads the module in its working directory"
    );
    let env = env_map(&read("env"));
    let core: BTreeMap<&str, &str> = env
        .iter()
        .filter(|(k, _)| k.starts_with("CORE_"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let tls_dir = runmeta.join("tls");
    let f = |name: &str| tls_dir.join(name).display().to_string();
    let expected: BTreeMap<&str, String> = BTreeMap::from([
        ("CORE_CHAINCODE_ID_NAME", "mycc:1234".to_owned()),
        ("CORE_PEER_TLS_ENABLED", "true".to_owned()),
        ("CORE_PEER_LOCALMSPID", "Org1MSP".to_owned()),
        ("CORE_PEER_TLS_ROOTCERT_FILE", f("root.crt")),
        ("CORE_TLS_CLIENT_KEY_PATH", f("client.key.b64")),
        ("CORE_TLS_CLIENT_CERT_PATH", f("client.crt.b64")),
        ("CORE_TLS_CLIENT_KEY_FILE", f("client.key")),
        ("CORE_TLS_CLIENT_CERT_FILE", f("client.crt")),
    ]);
    assert_eq!(
        core,
        expected
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect::<BTreeMap<_, _>>()
    );
    for name in env.keys() {
        assert!(
            name.starts_with("CORE_")
                || ["PATH", "LD_LIBRARY_PATH", "LIBPATH", "TMPDIR"].contains(&name.as_str())
                || SHELL_VARS.contains(&name.as_str()),
            "chaincode saw {name}"
        );
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(read("key.pem"), p.key_pem);
    assert_eq!(read("cert.pem"), p.cert_pem);
    assert_eq!(read("root.pem"), p.ca_pem);
    assert_eq!(
        read("key.b64"),
        b64.encode(&p.key_pem),
        "fabric-shim base64-decodes the _PATH files"
    );
    assert_eq!(read("cert.b64"), b64.encode(&p.cert_pem));
    assert_eq!(read("modes"), "600\n600\n700\n");
    assert!(!runmeta.exists(), "the TLS files go with RUNMETA");

    // Without TLS: CORE_PEER_TLS_ENABLED=false, no file variables; no MSP id given.
    let mut running = set
        .run(
            &built,
            RunMetadata {
                chaincode_id: "mycc:1234".into(),
                peer_address: "127.0.0.1:7052".into(),
                ..RunMetadata::default()
            },
        )
        .await
        .unwrap();
    let runmeta = running.runmeta_dir().to_owned();
    assert!(running.wait().await.unwrap().success());
    let env = env_map(&read("env"));
    let core: BTreeMap<&str, &str> = env
        .iter()
        .filter(|(k, _)| k.starts_with("CORE_"))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        core,
        BTreeMap::from([
            ("CORE_CHAINCODE_ID_NAME", "mycc:1234"),
            ("CORE_PEER_TLS_ENABLED", "false"),
        ])
    );
    assert_eq!(read("args"), "start\n--peer.address\n127.0.0.1:7052\n");
    assert!(!runmeta.exists());

    // Stopping: SIGTERM reaches the chaincode itself, and its status is the run's.
    let src_wait = node_package(root, "pkg-wait", &out, true);
    let built = set
        .build("waiting:1", &src_wait, &metadata("node"), &builds)
        .await
        .unwrap();
    std::fs::remove_file(out.join("ready")).unwrap();
    let mut running = set.run(&built, run_metadata(&p)).await.unwrap();
    wait_for_file(&out.join("ready")).await;
    assert!(running.runmeta_dir().join("tls/client.key.b64").exists());
    let status = running.stop(Duration::from_secs(5)).await.unwrap();
    assert!(status.success(), "{status:?}");
    assert!(out.join("stopped").exists());
    assert!(!running.runmeta_dir().exists());

    // Without fabric-chaincode-node (and no other start script) the run fails.
    std::fs::remove_file(
        built
            .bld_dir
            .join("src/node_modules/.bin/fabric-chaincode-node"),
    )
    .unwrap();
    let mut running = set.run(&built, run_metadata(&p)).await.unwrap();
    assert!(!running.wait().await.unwrap().success());
    assert!(!running.runmeta_dir().exists());
}
