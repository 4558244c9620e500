//! pipelines/k8s/ offline: the Kubernetes objects (the indexed Jobs of tasks
//! and play shards, the run's PersistentVolumeClaim) must pass the strict
//! Kubernetes schemas, and the Argo Workflow Argo's spec, strict too (a
//! misspelt field fails: the typos below prove it); then the commands the
//! manifests hold are run as the pods would run them, in the workflow's
//! order, against the smoke config (delivered as the ConfigMap's file) and a
//! temp run directory (the claim), and must leave the stores of
//! `selfplay run --num-shards 2` (tests/store_equal.py), once as the
//! workflow's own fan-outs and once with the indexed Jobs in their place
//! (each pod's shard from JOB_COMPLETION_INDEX). tests/k8s_manifests.py
//! validates and extracts (kubernetes-validate and hera, installed by
//! scripts/setup.sh --test).

mod common;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SHARDS: &str = "2";
const ITERATIONS: &str = "2";
const IMAGE: &str = "selfplay:latest";

/// Shard variables a scheduler sets: none may leak into a replayed pod.
const SHARD_VARS: [&str; 5] = [
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_COUNT",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_STEP",
    "JOB_COMPLETION_INDEX",
];

fn manifest(name: &str) -> PathBuf {
    repo().join("pipelines/k8s").join(name)
}

/// `python tests/k8s_manifests.py ARGS...`.
fn helper(args: &[&str]) -> Output {
    Command::new(python())
        .arg(repo().join("tests/k8s_manifests.py"))
        .args(args)
        .output()
        .expect(
            "python runs tests/k8s_manifests.py (scripts/setup.sh --test installs its packages)",
        )
}

/// The `--set` values that fill in a Job template for `iteration`.
fn job_sets(iteration: &str) -> Vec<String> {
    [
        format!("IMAGE={IMAGE}"),
        format!("ITERATION={iteration}"),
        format!("SHARDS={SHARDS}"),
    ]
    .into_iter()
    .flat_map(|s| ["--set".to_string(), s])
    .collect()
}

fn validate(files: &[PathBuf]) -> Output {
    let mut args: Vec<String> = vec!["validate".into()];
    args.extend(job_sets("1"));
    args.extend(files.iter().map(|f| f.display().to_string()));
    helper(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The commands `file` runs (tests/k8s_manifests.py commands), its volumes
/// mapped to `vols`: `run` (the claim, mounted at /data) and `config` (the
/// ConfigMap's folder).
fn commands(file: &Path, extra: &[String], vols: &Volumes) -> Vec<Value> {
    let mut args: Vec<String> = vec!["commands".into(), file.display().to_string()];
    args.extend(extra.iter().cloned());
    args.extend([
        "--volume".into(),
        format!("run={}", vols.run.display()),
        "--volume".into(),
        format!("config={}", vols.config.display()),
    ]);
    let o = helper(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        o.status.success(),
        "k8s_manifests.py {}: {}",
        args.join(" "),
        stderr(&o)
    );
    serde_json::from_slice::<Vec<Value>>(&o.stdout).unwrap()
}

fn workflow_commands(vols: &Volumes, iterations: &str, shards: &str) -> Vec<Value> {
    let params = [
        "--param".to_string(),
        format!("iterations={iterations}"),
        "--param".into(),
        format!("shards={shards}"),
    ];
    commands(&manifest("loop.yaml"), &params, vols)
}

/// A pod's volumes as folders here.
struct Volumes {
    /// The claim's root (the pods see it as /data).
    run: PathBuf,
    /// The ConfigMap's files (/config): config.toml.
    config: PathBuf,
}

impl Volumes {
    fn new(dir: &Path) -> Volumes {
        let vols = Volumes {
            run: dir.join("claim"),
            config: dir.join("configmap"),
        };
        std::fs::create_dir_all(&vols.run).unwrap();
        std::fs::create_dir_all(&vols.config).unwrap();
        std::fs::copy(smoke_config(), vols.config.join("config.toml")).unwrap();
        vols
    }

    /// The run directory the manifests name (/data/run).
    fn out(&self) -> PathBuf {
        self.run.join("run")
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

/// Runs one extracted command as its pod would: `selfplay` is this build's
/// binary, the environment is the pod's (and no scheduler's shard variables).
fn run_pod(cmd: &Value) {
    let name = cmd["name"].as_str().unwrap();
    let argv = strings(&cmd["argv"]);
    assert_eq!(
        argv[0], "selfplay",
        "{name}: the image runs `selfplay` from PATH"
    );
    let mut c = Command::new(env!("CARGO_BIN_EXE_selfplay"));
    c.args(&argv[1..]);
    for var in SHARD_VARS {
        c.env_remove(var);
    }
    for (k, v) in cmd["env"].as_object().unwrap() {
        c.env(k, v.as_str().unwrap());
    }
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "{name}: `{}` failed ({}):\n{}{}",
        argv.join(" "),
        o.status,
        stdout(&o),
        stderr(&o)
    );
}

fn all_manifests() -> Vec<PathBuf> {
    ["loop.yaml", "tasks-job.yaml", "play-job.yaml", "pvc.yaml"]
        .iter()
        .map(|f| manifest(f))
        .collect()
}

#[test]
fn manifests_validate_and_typos_fail() {
    let o = validate(&all_manifests());
    assert!(
        o.status.success(),
        "pipelines/k8s/ does not validate:\n{}",
        stderr(&o)
    );
    eprintln!("{}", stdout(&o).trim());

    // Each case: a file, one edit, and what the failure must name.
    let cases = [
        // Unknown fields, as the strict Kubernetes schemas see them...
        (
            "play-job.yaml",
            "  parallelism: ${SHARDS}",
            "  paralelism: ${SHARDS}",
            "'paralelism' was unexpected",
        ),
        (
            "tasks-job.yaml",
            "backoffLimitPerIndex: 3",
            "backoffLimitPerIndx: 3",
            "'backoffLimitPerIndx' was unexpected",
        ),
        (
            "pvc.yaml",
            "accessModes:",
            "accessMode:",
            "'accessMode' was unexpected",
        ),
        // ...a wrong type...
        (
            "play-job.yaml",
            "  completions: ${SHARDS}",
            "  completions: \"${SHARDS}\"",
            "spec.completions: '2' is not of type 'integer'",
        ),
        // ...and as Argo's spec sees them: a typo, a snake_case alias.
        (
            "loop.yaml",
            "      parallelism: 1",
            "      paralelism: 1",
            "paralelism: Extra inputs are not permitted",
        ),
        (
            "loop.yaml",
            "retryPolicy: Always",
            "retry_policy: Always",
            "retry_policy: Extra inputs are not permitted",
        ),
        // Beyond the schemas: a template that does not exist, a parameter
        // that does not resolve, a claim no PVC defines.
        (
            "loop.yaml",
            "template: train\n",
            "template: trian\n",
            "no template 'trian'",
        ),
        (
            "loop.yaml",
            "\"{{inputs.parameters.iteration}}\", --promote]",
            "\"{{inputs.parameter.iteration}}\", --promote]",
            "{{inputs.parameter.iteration}} does not resolve",
        ),
        (
            "tasks-job.yaml",
            "claimName: selfplay-run",
            "claimName: selfplay-runs",
            "claim 'selfplay-runs' is none of the PVCs",
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (i, (file, from, to, needle)) in cases.into_iter().enumerate() {
        let text = std::fs::read_to_string(manifest(file)).unwrap();
        assert_eq!(
            text.matches(from).count(),
            1,
            "{file}: expected '{from}' once (the test's edit)"
        );
        let dir = tmp.path().join(i.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let edited = dir.join(file);
        std::fs::write(&edited, text.replacen(from, to, 1)).unwrap();
        let mut files: Vec<PathBuf> = all_manifests()
            .into_iter()
            .filter(|f| f.file_name().unwrap() != file)
            .collect();
        files.push(edited);
        let o = validate(&files);
        let err = stderr(&o);
        assert!(
            !o.status.success(),
            "{file} with '{to}' passed validation:\n{}",
            stdout(&o)
        );
        assert!(
            err.contains(needle),
            "{file} with '{to}': the failure does not say '{needle}':\n{err}"
        );
    }
}

/// The workflow issues pipelines/slurm/loop.sh's commands (its `submit`
/// lines, with `--iterations` and `--wait-inputs 120` where it passes them)
/// in its order, for any number of iterations and shards.
#[test]
fn workflow_issues_loop_sh_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let vols = Volumes::new(tmp.path());
    let out = vols.out().display().to_string();
    let config = vols.config.join("config.toml").display().to_string();
    for (n, s) in [(1, 1), (5, 3)] {
        let got: Vec<String> = workflow_commands(&vols, &n.to_string(), &s.to_string())
            .iter()
            .map(|c| strings(&c["argv"]).join(" "))
            .collect();
        let sp = format!("selfplay --out {out} --config {config} --iterations {n}");
        let wait = "--wait-inputs 120";
        let mut want = vec![
            format!("{sp} config"),
            format!("{sp} init"),
            format!("{sp} tasks --heldout"),
            format!("{sp} {wait} eval --iteration 0 --incumbent iteration=000000"),
        ];
        for i in 1..=n {
            for k in 0..s {
                want.push(format!(
                    "{sp} tasks --iteration {i} --shard-index {k} --num-shards {s}"
                ));
            }
            for k in 0..s {
                want.push(format!(
                    "{sp} {wait} play --iteration {i} --shard-index {k} --num-shards {s}"
                ));
            }
            want.push(format!("{sp} {wait} train --iteration {i}"));
            want.push(format!("{sp} {wait} eval --iteration {i} --promote"));
        }
        assert_eq!(got, want, "{n} iterations, {s} shards");
    }
}

#[test]
fn k8s_commands_leave_the_stores_of_selfplay_run() {
    let t0 = std::time::Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let reference = dir.join("reference");
    ok(&selfplay(
        &reference,
        &["run", "--num-shards", SHARDS, "--iterations", ITERATIONS],
    ));

    // The workflow's pods, one after another in its order.
    let vols = Volumes::new(&dir.join("argo"));
    let pods = workflow_commands(&vols, ITERATIONS, SHARDS);
    for pod in &pods {
        run_pod(pod);
    }
    assert_same_stores(
        &reference,
        &vols.out(),
        "Argo workflow (pipelines/k8s/loop.yaml)",
    );

    // The same, with each tasks and play fan-out replaced by its indexed Job.
    let vols = Volumes::new(&dir.join("jobs"));
    let mut jobs = 0;
    for pod in workflow_commands(&vols, ITERATIONS, SHARDS) {
        let template = pod["template"].as_str().unwrap();
        if template != "tasks" && template != "play" {
            run_pod(&pod);
            continue;
        }
        if pod["params"]["shard"] != "0" {
            continue;
        }
        let iteration = pod["params"]["iteration"].as_str().unwrap();
        let job = commands(
            &manifest(&format!("{template}-job.yaml")),
            &job_sets(iteration),
            &vols,
        );
        assert_eq!(
            job.len().to_string(),
            SHARDS,
            "{template}-job.yaml: one pod per shard"
        );
        for p in &job {
            run_pod(p);
        }
        jobs += 1;
    }
    assert_eq!(
        jobs,
        2 * ITERATIONS.parse::<usize>().unwrap(),
        "a tasks and a play Job per iteration"
    );
    assert_same_stores(
        &reference,
        &vols.out(),
        "indexed Jobs (pipelines/k8s/*-job.yaml)",
    );
    eprintln!(
        "k8s test: {} pods replayed twice in {:.0}s",
        pods.len(),
        t0.elapsed().as_secs_f64()
    );
}
