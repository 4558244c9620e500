//! Policy/value inference through ONNX Runtime.
//!
//! ONNX Runtime is loaded at run time (`ort`'s `load-dynamic`) from the
//! Python wheel that `scripts/setup.sh` installs into `.venv`, so workers
//! need no system install and no libtorch. Models must follow the contract
//! of `crate::model::onnx`: input `obs` `[N, obs_dim]`, outputs `policy`
//! `[N, action_dim]` and `value` `[N, 1]`, all float32.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};

use ort::environment::Environment;
use ort::ep;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::Session;
use ort::value::{Outlet, TensorElementType, TensorRef, ValueType};

/// Where a model runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Device {
    Cpu,
    /// CUDA device ordinal.
    Cuda(i32),
}

/// The process-wide ONNX Runtime environment; `ort` allows only one.
static ENV: OnceLock<Environment> = OnceLock::new();
/// Serialises initialisation, so a failed attempt can be retried (e.g. with
/// an explicit path) instead of being cached forever.
static INIT: Mutex<()> = Mutex::new(());

/// Loads ONNX Runtime and creates the environment, once per process.
///
/// The library is `dylib` if given, else `$ORT_DYLIB_PATH`, else the first
/// `.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*`
/// found upward from the executable's folder or the current directory.
/// Later calls return `Ok(())` and ignore `dylib`.
pub fn init_runtime(dylib: Option<&Path>) -> Result<(), String> {
    if ENV.get().is_some() {
        return Ok(());
    }
    let _guard = INIT.lock().unwrap_or_else(PoisonError::into_inner);
    if ENV.get().is_some() {
        return Ok(());
    }
    let path = resolve_dylib(dylib)?;
    let env = ort::init_from(&path)
        .map_err(|e| format!("ONNX Runtime: {e}"))?
        .with_name("selfplay")
        .with_telemetry(false)
        .build()
        .map_err(|e| {
            format!(
                "ONNX Runtime ({}): creating environment: {e}",
                path.display()
            )
        })?;
    // Cannot fail: `INIT` is held and `ENV` was empty.
    let _ = ENV.set(env);
    Ok(())
}

/// The environment, initialising it by the default resolution if needed.
fn environment() -> Result<&'static Environment, String> {
    init_runtime(None)?;
    ENV.get()
        .ok_or_else(|| "ONNX Runtime environment missing after init".to_string())
}

fn resolve_dylib(explicit: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(path) = explicit {
        return existing(path, "given path");
    }
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return existing(Path::new(&path), "ORT_DYLIB_PATH");
    }
    let starts = search_starts();
    starts
        .iter()
        .find_map(|dir| find_upward(dir))
        .ok_or_else(|| not_found_message(&starts))
}

/// An explicitly named library must exist; saying so beats a dlopen error.
fn existing(path: &Path, source: &str) -> Result<PathBuf, String> {
    if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        Err(format!(
            "ONNX Runtime library from {source} not found: {} (run scripts/setup.sh to install it into .venv)",
            path.display()
        ))
    }
}

/// The executable's folder (binaries, tests under `target/`) and the
/// current directory (running from the repository).
fn search_starts() -> Vec<PathBuf> {
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    let cwd = std::env::current_dir().ok();
    let mut starts: Vec<PathBuf> = exe_dir.into_iter().chain(cwd).collect();
    starts.dedup();
    starts
}

fn find_upward(start: &Path) -> Option<PathBuf> {
    start.ancestors().find_map(find_in_venv)
}

/// `dir/.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*`.
fn find_in_venv(dir: &Path) -> Option<PathBuf> {
    let lib = dir.join(".venv").join("lib");
    sorted_entries(&lib, |name| name.starts_with("python3"))
        .into_iter()
        .map(|py| py.join("site-packages").join("onnxruntime").join("capi"))
        .find_map(|capi| sorted_entries(&capi, is_ort_dylib).into_iter().next())
}

/// `libonnxruntime.so`, `libonnxruntime.so.1.31.1`, `libonnxruntime.1.31.1.dylib`;
/// not `libonnxruntime_providers_shared.so`.
fn is_ort_dylib(name: &str) -> bool {
    name.starts_with("libonnxruntime.") && name.contains(std::env::consts::DLL_SUFFIX)
}

/// Entries of `dir` whose file name passes `keep`, sorted; empty if unreadable.
fn sorted_entries(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(&keep))
        .map(|e| e.path())
        .collect();
    paths.sort();
    paths
}

fn not_found_message(starts: &[PathBuf]) -> String {
    let places: Vec<String> = starts.iter().map(|p| p.display().to_string()).collect();
    format!(
        "ONNX Runtime library not found: ORT_DYLIB_PATH is unset and no \
         .venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so* exists in \
         {} or any parent; run scripts/setup.sh to install it, or set ORT_DYLIB_PATH",
        places.join(" or ")
    )
}

/// An ONNX Runtime session for a policy/value model.
pub struct OnnxModel {
    session: Session,
    path: PathBuf,
    /// How it was loaded (device, intra-op threads, spinning), for [`OnnxModel::fork`].
    options: (Device, (usize, bool)),
    obs_dim: usize,
    action_dim: usize,
}

impl OnnxModel {
    /// Loads and checks the model at `path`.
    ///
    /// `intra_threads` is the intra-op pool size (0 lets ONNX Runtime pick).
    /// Spinning is off, so an idle pool takes no CPU. On `Device::Cuda` the CUDA provider must register, or this
    /// fails instead of quietly running on CPU.
    pub fn load(path: &Path, device: Device, intra_threads: usize) -> Result<Self, String> {
        Self::load_with(path, device, (intra_threads, false))
    }

    /// [`OnnxModel::load`] with intra-op spinning chosen: spinning threads
    /// wait for the next call busy instead of asleep, which saves a wake-up
    /// per parallel operator (self-play calls the network back to back).
    pub fn load_with(
        path: &Path,
        device: Device,
        (intra_threads, spin): (usize, bool),
    ) -> Result<Self, String> {
        let ctx =
            |what: &str, e: &dyn std::fmt::Display| format!("{}: {what}: {e}", path.display());
        std::fs::metadata(path).map_err(|e| ctx("cannot read model", &e))?;
        let env = environment().map_err(|e| ctx("loading", &e))?;
        let mut builder = session_builder(env, device, (intra_threads, spin))
            .map_err(|e| ctx("session options", &e))?;
        let session = builder
            .commit_from_file(path)
            .map_err(|e| ctx("ONNX Runtime cannot load model", &e))?;
        let (obs_dim, action_dim) =
            check_io(&session).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(Self {
            session,
            path: path.to_path_buf(),
            options: (device, (intra_threads, spin)),
            obs_dim,
            action_dim,
        })
    }

    pub fn obs_dim(&self) -> usize {
        self.obs_dim
    }

    /// Another session on the same model file with the same options: a
    /// session runs one call at a time, so each lane of a search has one.
    pub fn fork(&self) -> Result<Self, String> {
        let (device, threads) = self.options;
        Self::load_with(&self.path, device, threads)
    }

    pub fn action_dim(&self) -> usize {
        self.action_dim
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Errors unless the model fits a task with these sizes.
    pub fn check_dims(&self, obs_dim: usize, action_dim: usize) -> Result<(), String> {
        if (self.obs_dim, self.action_dim) == (obs_dim, action_dim) {
            return Ok(());
        }
        Err(format!(
            "{}: model has obs_dim {} and action_dim {}, expected {obs_dim} and {action_dim}",
            self.path.display(),
            self.obs_dim,
            self.action_dim
        ))
    }

    /// Evaluates `n` observations (`obs`: `n * obs_dim`), writing raw policy
    /// logits into `policy` (`n * action_dim`) and values into `value` (`n`).
    ///
    /// The input tensor borrows `obs`; the only allocations are ONNX
    /// Runtime's own (output tensors, bookkeeping).
    pub fn run(
        &mut self,
        obs: &[f32],
        n: usize,
        policy: &mut [f32],
        value: &mut [f32],
    ) -> Result<(), String> {
        self.check_lengths(obs, n, policy, value)?;
        if n == 0 {
            return Ok(());
        }
        let file = self.path.display();
        let input = TensorRef::from_array_view(([n, self.obs_dim], obs))
            .map_err(|e| format!("{file}: building input tensor: {e}"))?;
        let outputs = self
            .session
            .run(ort::inputs![input])
            .map_err(|e| format!("{file}: inference failed: {e}"))?;
        for (name, dest) in [("policy", policy), ("value", value)] {
            let out = outputs
                .get(name)
                .ok_or_else(|| format!("{file}: no `{name}` in outputs"))?;
            let (_, data) = out
                .try_extract_tensor::<f32>()
                .map_err(|e| format!("{file}: output `{name}`: {e}"))?;
            if data.len() != dest.len() {
                return Err(format!(
                    "{file}: output `{name}` has {} values, expected {}",
                    data.len(),
                    dest.len()
                ));
            }
            dest.copy_from_slice(data);
        }
        Ok(())
    }

    fn check_lengths(
        &self,
        obs: &[f32],
        n: usize,
        policy: &[f32],
        value: &[f32],
    ) -> Result<(), String> {
        let want = [
            ("obs", obs.len(), n * self.obs_dim),
            ("policy", policy.len(), n * self.action_dim),
            ("value", value.len(), n),
        ];
        match want.iter().find(|(_, got, need)| got != need) {
            Some((name, got, need)) => Err(format!(
                "{}: run with batch {n}: `{name}` buffer has {got} values, needs {need}",
                self.path.display()
            )),
            None => Ok(()),
        }
    }
}

fn session_builder(
    env: &Environment,
    device: Device,
    (intra_threads, spin): (usize, bool),
) -> Result<SessionBuilder, String> {
    let err = |e: ort::Error<SessionBuilder>| e.to_string();
    let mut builder = Session::builder(env)
        .map_err(|e| e.to_string())?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(err)?
        .with_intra_threads(intra_threads)
        .map_err(err)?
        .with_inter_threads(1)
        .map_err(err)?
        .with_intra_op_spinning(spin)
        .map_err(err)?
        .with_inter_op_spinning(false)
        .map_err(err)?;
    // ONNX Runtime's per-node profile (each node's provider and time), to
    // diagnose a device: SELFPLAY_ORT_PROFILE=PREFIX writes PREFIX_<time>.json
    // per session.
    if let Some(prefix) = std::env::var_os("SELFPLAY_ORT_PROFILE") {
        builder = builder.with_profiling(prefix).map_err(err)?;
    }
    if let Device::Cuda(id) = device {
        // cuDNN's default exhaustive search benchmarks every convolution
        // again for each new input shape, and search sends batches of every
        // size from 1 to the batch cap; a heuristic pick is nearly free.
        let cuda = ep::CUDA::default()
            .with_device_id(id)
            .with_conv_algorithm_search(conv_search())
            .build()
            .error_on_failure();
        builder = builder
            .with_execution_providers([cuda])
            .map_err(|e| format!("CUDA device {id} unavailable (is the onnxruntime-gpu wheel and CUDA installed?): {e}"))?;
    }
    Ok(builder)
}

/// cuDNN's convolution algorithm choice (diagnostic override:
/// SELFPLAY_CUDNN_CONV_SEARCH=exhaustive|heuristic|default).
fn conv_search() -> ep::cuda::ConvAlgorithmSearch {
    use ep::cuda::ConvAlgorithmSearch as S;
    match std::env::var("SELFPLAY_CUDNN_CONV_SEARCH").as_deref() {
        Ok("exhaustive") => S::Exhaustive,
        Ok("default") => S::Default,
        _ => S::Heuristic,
    }
}

/// Checks the contract and returns `(obs_dim, action_dim)`.
fn check_io(session: &Session) -> Result<(usize, usize), String> {
    let [input] = session.inputs() else {
        return Err(format!(
            "model has {} inputs, expected one (`obs`)",
            session.inputs().len()
        ));
    };
    if input.name() != "obs" {
        return Err(format!("model input is `{}`, expected `obs`", input.name()));
    }
    let obs_dim = batched_width(input)?;
    let policy = find_output(session, "policy")?;
    let action_dim = batched_width(policy)?;
    let value = find_output(session, "value")?;
    match batched_width(value)? {
        1 => Ok((obs_dim, action_dim)),
        w => Err(format!("output `value` is [N, {w}], expected [N, 1]")),
    }
}

fn find_output<'s>(session: &'s Session, name: &str) -> Result<&'s Outlet, String> {
    session
        .outputs()
        .iter()
        .find(|o| o.name() == name)
        .ok_or_else(|| {
            let names: Vec<&str> = session.outputs().iter().map(Outlet::name).collect();
            format!(
                "model has no output `{name}` (outputs: {})",
                names.join(", ")
            )
        })
}

/// For a float32 `[N, w]` tensor with a dynamic batch dim, returns `w`.
fn batched_width(outlet: &Outlet) -> Result<usize, String> {
    let name = outlet.name();
    let ValueType::Tensor { ty, shape, .. } = outlet.dtype() else {
        return Err(format!("`{name}` is not a tensor"));
    };
    if *ty != TensorElementType::Float32 {
        return Err(format!(
            "`{name}` has element type {ty:?}, expected float32"
        ));
    }
    match **shape {
        [-1, w] if w > 0 => Ok(w as usize),
        _ => Err(format!(
            "`{name}` has shape {:?}, expected [N, width] with a dynamic batch N (-1 = dynamic)",
            &**shape
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::onnx::tests::{random_weights, spec};
    use crate::model::onnx::{export, forward_reference, relu_passthrough};
    use crate::model::ModelSpec;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn write_model(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn export_to(dir: &Path, s: &ModelSpec, seed: u64) -> (PathBuf, crate::model::onnx::Weights) {
        let w = random_weights(s, seed);
        let path = write_model(
            dir,
            &format!("model_{seed}.onnx"),
            &export(s, &w, None).unwrap(),
        );
        (path, w)
    }

    fn random_obs(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..len).map(|_| rng.random_range(-2.0..2.0)).collect()
    }

    fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    fn load_err(path: &Path) -> String {
        match OnnxModel::load(path, Device::Cpu, 1) {
            Ok(_) => panic!("{} loaded", path.display()),
            Err(e) => e,
        }
    }

    #[test]
    fn runtime_is_found() {
        init_runtime(None).unwrap();
        init_runtime(Some(Path::new("/nonexistent"))).unwrap(); // already set: ignored
    }

    #[test]
    fn upward_search_finds_the_venv() {
        let dir = tempfile::tempdir().unwrap();
        let capi = dir
            .path()
            .join(".venv/lib/python3.11/site-packages/onnxruntime/capi");
        std::fs::create_dir_all(&capi).unwrap();
        std::fs::write(capi.join("libonnxruntime_providers_shared.so"), b"").unwrap();
        assert_eq!(find_upward(&dir.path().join("target/release/deps")), None);
        std::fs::write(capi.join("libonnxruntime.so.1.31.1"), b"").unwrap();
        let found = find_upward(&dir.path().join("target/release/deps")).unwrap();
        assert_eq!(found, capi.join("libonnxruntime.so.1.31.1"));
        assert!(not_found_message(&[dir.path().into()]).contains("scripts/setup.sh"));
        let e = existing(&dir.path().join("nope.so"), "ORT_DYLIB_PATH").unwrap_err();
        assert!(e.contains("ORT_DYLIB_PATH") && e.contains("nope.so"), "{e}");
    }

    #[test]
    fn outputs_match_reference() {
        let dir = tempfile::tempdir().unwrap();
        let specs = [
            spec(84, 60, 64, 2, 32),
            spec(84, 60, 128, 2, 64),
            spec(1, 1, 1, 0, 1),
            spec(3, 2, 4, 1, 2),
            spec(5, 7, 6, 3, 1),
        ];
        for (i, s) in specs.iter().enumerate() {
            let (path, w) = export_to(dir.path(), s, i as u64);
            for threads in [1, 2] {
                let mut model = OnnxModel::load(&path, Device::Cpu, threads).unwrap();
                assert_eq!(
                    (model.obs_dim(), model.action_dim()),
                    (s.obs_dim, s.action_dim)
                );
                for n in [1, 7, 256] {
                    let obs = random_obs(n * s.obs_dim, 100 + n as u64);
                    let (want_p, want_v) = forward_reference(s, &w, &obs, n);
                    let mut p = vec![f32::NAN; n * s.action_dim];
                    let mut v = vec![f32::NAN; n];
                    model.run(&obs, n, &mut p, &mut v).unwrap();
                    let (dp, dv) = (max_abs_diff(&p, &want_p), max_abs_diff(&v, &want_v));
                    assert!(
                        dp <= 1e-5 && dv <= 1e-5,
                        "{s:?} n={n}: policy diff {dp}, value diff {dv}"
                    );
                }
            }
        }
    }

    #[test]
    fn run_checks_buffer_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(3, 2, 4, 1, 2);
        let (path, _) = export_to(dir.path(), &s, 9);
        let mut model = OnnxModel::load(&path, Device::Cpu, 1).unwrap();
        let (mut p, mut v) = (vec![0.0; 4], vec![0.0; 2]);
        let e = model.run(&[0.0; 5], 2, &mut p, &mut v).unwrap_err();
        assert!(e.contains("`obs` buffer has 5 values, needs 6"), "{e}");
        let e = model.run(&[0.0; 6], 2, &mut p[..3], &mut v).unwrap_err();
        assert!(e.contains("`policy` buffer has 3 values, needs 4"), "{e}");
        model.run(&[], 0, &mut [], &mut []).unwrap();
        assert!(model.check_dims(3, 2).is_ok());
        let e = model.check_dims(4, 2).unwrap_err();
        assert!(e.contains("obs_dim 3") && e.contains("model_9.onnx"), "{e}");
    }

    #[test]
    fn bad_files_give_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.onnx");
        let e = load_err(&missing);
        assert!(
            e.contains("missing.onnx") && e.contains("cannot read model"),
            "{e}"
        );

        let garbage = write_model(
            dir.path(),
            "garbage.onnx",
            b"this is not a protobuf \x00\xff\x17",
        );
        let e = load_err(&garbage);
        assert!(
            e.contains("garbage.onnx") && e.contains("cannot load model"),
            "{e}"
        );

        let empty = write_model(dir.path(), "empty.onnx", b"");
        let e = load_err(&empty);
        assert!(e.contains("empty.onnx"), "{e}");

        let s = spec(3, 2, 4, 1, 2);
        let bytes = export(&s, &random_weights(&s, 1), None).unwrap();
        let truncated = write_model(dir.path(), "truncated.onnx", &bytes[..bytes.len() / 2]);
        let e = load_err(&truncated);
        assert!(e.contains("truncated.onnx"), "{e}");
    }

    #[test]
    fn wrong_dims_models_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let n = None;
        let cases: [(&str, Vec<u8>, &str); 5] = [
            (
                "value_width.onnx",
                relu_passthrough(
                    ("obs", &[n, Some(2)]),
                    &[("policy", &[n, Some(2)]), ("value", &[n, Some(2)])],
                ),
                "output `value` is [N, 2], expected [N, 1]",
            ),
            (
                "rank3.onnx",
                relu_passthrough(
                    ("obs", &[n, Some(6), Some(7)]),
                    &[("policy", &[n, Some(6), Some(7)])],
                ),
                "`obs` has shape [-1, 6, 7]",
            ),
            (
                "fixed_batch.onnx",
                relu_passthrough(
                    ("obs", &[Some(1), Some(1)]),
                    &[
                        ("policy", &[Some(1), Some(1)]),
                        ("value", &[Some(1), Some(1)]),
                    ],
                ),
                "`obs` has shape [1, 1]",
            ),
            (
                "no_value.onnx",
                relu_passthrough(("obs", &[n, Some(4)]), &[("policy", &[n, Some(4)])]),
                "no output `value` (outputs: policy)",
            ),
            (
                "wrong_input.onnx",
                relu_passthrough(
                    ("x", &[n, Some(1)]),
                    &[("policy", &[n, Some(1)]), ("value", &[n, Some(1)])],
                ),
                "input is `x`, expected `obs`",
            ),
        ];
        for (file, bytes, want) in cases {
            let e = load_err(&write_model(dir.path(), file, &bytes));
            assert!(e.contains(file) && e.contains(want), "{file}: {e}");
        }
    }

    #[test]
    fn cuda_never_falls_back_silently() {
        // The CPU wheel has no CUDA provider; with onnxruntime-gpu and a GPU,
        // loading must succeed and agree with the reference instead.
        let dir = tempfile::tempdir().unwrap();
        let s = spec(3, 2, 4, 1, 2);
        let (path, w) = export_to(dir.path(), &s, 5);
        match OnnxModel::load(&path, Device::Cuda(0), 1) {
            Err(e) => assert!(
                e.contains("CUDA device 0") && e.contains("model_5.onnx"),
                "{e}"
            ),
            Ok(mut model) => {
                let obs = random_obs(3 * 7, 1);
                let (want_p, want_v) = forward_reference(&s, &w, &obs, 7);
                let (mut p, mut v) = (vec![0.0; 14], vec![0.0; 7]);
                model.run(&obs, 7, &mut p, &mut v).unwrap();
                assert!(max_abs_diff(&p, &want_p) <= 1e-4 && max_abs_diff(&v, &want_v) <= 1e-4);
            }
        }
    }

    #[test]
    fn model_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<OnnxModel>();
    }
}
