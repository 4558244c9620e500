//! Puts libtorch's and CUDA runtime's library folders on the binaries' rpath,
//! so `selfplay` and its tests run without LD_LIBRARY_PATH.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=SELFPLAY_GIT_SHA");
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
    }
    for dir in dirs.iter().filter(|d| d.is_dir()) {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
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
