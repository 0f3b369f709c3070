//! Embeds the web UI: walks `web/` and writes `$OUT_DIR/web_assets.rs`, the table of its files
//! that `http::web` serves (each file's path under `web/`, its content type from its extension,
//! its bytes through `include_bytes!`). A new file is in the next build by itself; a file whose
//! extension has no known type fails the build rather than being served with the wrong one.
//! Files whose names start with `.` (an editor's swap files) are left out. With the feature
//! `bundled-agents`, it also writes the table of the agent binaries to carry (`bundle_agents`).

use std::error::Error;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn main() -> Result<(), Box<dyn Error>> {
    let web = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?).join("web");
    // A directory: cargo runs this again when anything under it changes.
    println!("cargo:rerun-if-changed=web");
    let mut files = Vec::new();
    walk(&web, &mut files)?;
    files.sort();
    let mut table = String::from("&[\n");
    for file in &files {
        let path = file
            .strip_prefix(&web)?
            .to_str()
            .ok_or_else(|| format!("{}: the name is not UTF-8", file.display()))?;
        let extension = file.extension().and_then(|e| e.to_str()).unwrap_or("");
        let content_type = match extension {
            "html" => "text/html; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "js" => "text/javascript; charset=utf-8",
            "svg" => "image/svg+xml",
            "png" => "image/png",
            other => return Err(format!("web/{path}: no content type for `.{other}`").into()),
        };
        table.push_str(&format!("    asset!({path:?}, {content_type:?}),\n"));
    }
    table.push_str("]\n");
    fs::write(
        PathBuf::from(env::var("OUT_DIR")?).join("web_assets.rs"),
        table,
    )?;
    if env::var_os("CARGO_FEATURE_BUNDLED_AGENTS").is_some() {
        bundle_agents()?;
    }
    Ok(())
}

/// For the feature `bundled-agents`: writes `$OUT_DIR/bundled_agents.rs`, the table of the
/// agent binaries `otto-agent-TARGET` in `$OTTO_AGENTS_DIR` (default the workspace's `dist/`)
/// that `agents::Catalogue` carries, each through `include_bytes!`. A folder with none fails
/// the build, saying how to make them.
fn bundle_agents() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-env-changed=OTTO_AGENTS_DIR");
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let dir = match env::var_os("OTTO_AGENTS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => manifest.join("..").join("dist"),
    };
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut table = String::from("&[\n");
    let mut found = 0;
    for target in [
        "mips-unknown-linux-musl",
        "mipsel-unknown-linux-musl",
        "armv7-unknown-linux-musleabihf",
        "aarch64-unknown-linux-musl",
        "x86_64-unknown-linux-musl",
    ] {
        let file = dir.join(format!("otto-agent-{target}"));
        if file.is_file() {
            let file = fs::canonicalize(&file)?;
            println!("cargo:rerun-if-changed={}", file.display());
            table.push_str(&format!("    ({target:?}, include_bytes!({file:?})),\n"));
            found += 1;
        }
    }
    if found == 0 {
        return Err(format!(
            "the feature `bundled-agents` needs the agent binaries: {} holds no otto-agent-TARGET; \
             build them with `ci/build-agents.sh` (it writes dist/), or set OTTO_AGENTS_DIR to \
             a folder that holds them",
            dir.display()
        )
        .into());
    }
    table.push_str("]\n");
    fs::write(
        PathBuf::from(env::var("OUT_DIR")?).join("bundled_agents.rs"),
        table,
    )?;
    Ok(())
}

/// Pushes every file under `dir` onto `files`.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<(), Box<dyn Error>> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}
