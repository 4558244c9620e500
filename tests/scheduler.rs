//! The loop under real schedulers: pipelines/Snakefile run locally
//! (`--cores 2`, stopped after iteration 1 and resumed), a single-node Slurm
//! cluster from Debian packages (scripts/slurm-up.sh) running the loop as
//! `sbatch` job arrays chained with `--dependency=afterok`
//! (pipelines/slurm/loop.sh) and through Snakemake's Slurm executor
//! (pipelines/profiles/slurm). Each must leave the stores of
//! `selfplay run --num-shards 2` on the same config, timing columns aside
//! (tests/store_equal.py). The daemons the test started are stopped by pid,
//! also when it fails. A machine that cannot run Slurm fails this test;
//! SELFPLAY_SKIP_SLURM=1 skips the Slurm part (the local Snakemake run
//! still runs).

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

const SHARDS: &str = "2";

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_selfplay")
}

fn snakemake() -> PathBuf {
    let sm = repo().join(".venv/bin/snakemake");
    assert!(
        sm.exists(),
        "{} missing: run scripts/setup.sh --test (or --scheduler)",
        sm.display()
    );
    sm
}

/// `snakemake -s pipelines/Snakefile --profile pipelines/profiles/PROFILE
/// --config ... out=OUT [targets]`, run from `cwd`, its output in `log`.
fn snakemake_cmd(cwd: &Path, profile: &str, out: &Path, log: &Path, targets: &[&str]) -> Command {
    let mut cmd = Command::new(snakemake());
    cmd.current_dir(cwd)
        .arg("-s")
        .arg(repo().join("pipelines/Snakefile"))
        .arg("--profile")
        .arg(repo().join("pipelines/profiles").join(profile))
        .args(targets)
        .args(if profile == "local" {
            &["--cores", "2"][..]
        } else {
            &[][..]
        })
        .arg("--config")
        .arg(format!("config={}", smoke_config().display()))
        .arg(format!("out={}", out.display()))
        .arg(format!("shards={SHARDS}"))
        .arg(format!("bin={}", bin()));
    logged(&mut cmd, log);
    cmd
}

fn logged(cmd: &mut Command, log: &Path) {
    let f = std::fs::File::create(log).unwrap();
    cmd.stdin(Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f);
}

/// Waits for `child`, asserting success and showing the end of its log.
fn finish(mut child: Child, log: &Path, what: &str, t0: Instant) {
    let status = child.wait().unwrap();
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = text.lines().rev().take(40).collect();
    assert!(
        status.success(),
        "{what} failed ({status}); the end of {}:\n{}",
        log.display(),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    );
    eprintln!("{what}: done in {:.0}s", t0.elapsed().as_secs_f64());
}

/// Runs in flight: (process, its log, its run directory, what it is). A
/// failing test kills those still running (by their pids) before the
/// cluster goes down.
struct Running(Vec<(Child, PathBuf, PathBuf, &'static str)>);

impl Drop for Running {
    fn drop(&mut self) {
        for (child, ..) in &mut self.0 {
            if let Ok(None) = child.try_wait() {
                // TERM first: snakemake cancels its jobs, loop.sh its sbatch.
                let _ = Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status();
                for _ in 0..100 {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// The cluster scripts/slurm-up.sh started; dropping it runs
/// scripts/slurm-down.sh, which stops exactly the daemons recorded by pid.
struct Cluster {
    dir: PathBuf,
}

impl Cluster {
    fn up(dir: PathBuf) -> Cluster {
        let cluster = Cluster { dir };
        let o = Command::new(repo().join("scripts/slurm-up.sh"))
            .arg(&cluster.dir)
            .stdin(Stdio::null())
            .output()
            .expect("bash runs scripts/slurm-up.sh");
        assert!(
            o.status.success(),
            "this machine could not start a Slurm cluster (scripts/slurm-up.sh {} exited {}); \
             the scheduler test needs root and the Debian packages slurmctld, slurmd, \
             slurm-client and munge (installed with apt-get when missing); \
             SELFPLAY_SKIP_SLURM=1 skips it:\n{}{}",
            cluster.dir.display(),
            o.status,
            stdout(&o),
            stderr(&o)
        );
        eprintln!("{}", stderr(&o).trim());
        cluster
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let o = Command::new(repo().join("scripts/slurm-down.sh"))
            .arg(&self.dir)
            .stdin(Stdio::null())
            .output();
        match o {
            Ok(o) => eprintln!("{}", stderr(&o).trim()),
            Err(e) => eprintln!("scripts/slurm-down.sh did not run: {e}"),
        }
    }
}

#[test]
fn snakemake_and_slurm_runs_equal_selfplay_run() {
    let t0 = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let reference = dir.join("run");
    ok(&selfplay(&reference, &["run", "--num-shards", SHARDS]));

    let skip_slurm = std::env::var("SELFPLAY_SKIP_SLURM").is_ok_and(|v| v == "1");
    // A fixed state folder: a cluster a killed test left behind is found
    // (and reused, then stopped) by the next run instead of blocking it.
    let cluster =
        (!skip_slurm).then(|| Cluster::up(std::env::temp_dir().join("selfplay-slurm-test")));
    let mut running = Running(Vec::new());
    if cluster.is_some() {
        let out = dir.join("sbatch");
        let log = dir.join("sbatch.log");
        let mut cmd = Command::new(repo().join("pipelines/slurm/loop.sh"));
        cmd.arg("--out")
            .arg(&out)
            .arg("--config")
            .arg(smoke_config())
            .args([
                "--shards",
                SHARDS,
                "--bin",
                bin(),
                "--name",
                "selfplay-test",
                "--wait",
            ]);
        logged(&mut cmd, &log);
        running.0.push((
            cmd.spawn().unwrap(),
            log,
            out,
            "sbatch arrays (pipelines/slurm/loop.sh)",
        ));
        let out = dir.join("snakemake-slurm");
        let log = dir.join("snakemake-slurm.log");
        let mut cmd = snakemake_cmd(dir, "slurm", &out, &log, &[]);
        running.0.push((
            cmd.spawn().unwrap(),
            log,
            out,
            "snakemake --profile pipelines/profiles/slurm",
        ));
    } else {
        eprintln!("SELFPLAY_SKIP_SLURM=1: skipping the Slurm runs");
    }

    // Locally, meanwhile: stopped after iteration 1's gate, then resumed.
    let local = dir.join("snakemake-local");
    let log = dir.join("snakemake-local-1.log");
    let first = snakemake_cmd(dir, "local", &local, &log, &["eval_1"])
        .spawn()
        .unwrap();
    finish(first, &log, "snakemake --cores 2 eval_1", t0);
    let model1 = local.join("models/iteration=000001/model.json");
    let written = std::fs::metadata(&model1).unwrap().modified().unwrap();
    assert!(!local.join("models/iteration=000002").exists());
    let log = dir.join("snakemake-local-2.log");
    let rest = snakemake_cmd(dir, "local", &local, &log, &[])
        .spawn()
        .unwrap();
    finish(rest, &log, "snakemake --cores 2 (resumed)", t0);
    assert_eq!(
        std::fs::metadata(&model1).unwrap().modified().unwrap(),
        written,
        "the resumed workflow redid iteration 1's training"
    );
    assert_same_stores(&reference, &local, "snakemake local");

    while let Some((child, log, out, what)) = running.0.pop() {
        finish(child, &log, what, t0);
        assert_same_stores(&reference, &out, what);
    }
    drop(cluster);
    eprintln!("scheduler test: {:.0}s", t0.elapsed().as_secs_f64());
}
