//! Puts libtorch's and CUDA runtime's library folders on the binaries' rpath,
//! so `selfplay` and its tests run without LD_LIBRARY_PATH. With
//! `SELFPLAY_TORCH_CUDA=1` (`scripts/setup.sh --cuda`, torch installed with
//! its CUDA wheels) it links libtorch_cuda with `--no-as-needed`: the
//! linker otherwise drops it, as no symbol of it is named, and libtorch
//! then sees no GPU.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=SELFPLAY_GIT_SHA");
    println!("cargo:rerun-if-env-changed=SELFPLAY_TORCH_CUDA");
    println!("cargo::rustc-check-cfg=cfg(selfplay_torch_cuda)");
    let sha = std::env::var("SELFPLAY_GIT_SHA")
        .ok()
        .or_else(git_sha)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=SELFPLAY_GIT_SHA={sha}");
    if std::env::var_os("CARGO_FEATURE_TRAIN").is_none() {
        return;
    }
    let Some(torch) = std::env::var_os("LIBTORCH").map(PathBuf::from) else {
        return;
    };
    let mut dirs = vec![torch.join("lib")];
    if let Some(site) = torch.parent() {
        dirs.push(site.join("nvidia/cu13/lib"));
        // The other CUDA wheels (cuDNN, NCCL, ...) keep their own lib folders.
        if let Ok(entries) = std::fs::read_dir(site.join("nvidia")) {
            let mut more: Vec<PathBuf> = entries
                .flatten()
                .map(|e| e.path().join("lib"))
                .filter(|d| !dirs.contains(d))
                .collect();
            more.sort();
            dirs.extend(more);
        }
    }
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
    if std::env::var("SELFPLAY_TORCH_CUDA").as_deref() == Ok("1") {
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-ltorch_cuda,--as-needed");
        println!("cargo:rustc-cfg=selfplay_torch_cuda");
    }
}

fn git_sha() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
