//! Embeds every `schemas/*.schema.json` so that adding a contract is adding a file.

use std::{env, fs, path::PathBuf};

fn main() {
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let schemas = manifest.join("../schemas");
    println!("cargo:rerun-if-changed={}", schemas.display());
    let mut names: Vec<String> = fs::read_dir(&schemas)
        .expect("schemas/ exists next to orbi-schema")
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let file = entry.file_name().into_string().ok()?;
            file.strip_suffix(".v1.schema.json").map(str::to_owned)
        })
        .collect();
    names.sort();
    let mut code = String::from("&[\n");
    for name in &names {
        let path = schemas.join(format!("{name}.v1.schema.json"));
        println!("cargo:rerun-if-changed={}", path.display());
        code.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
    }
    code.push_str("]\n");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded.rs");
    fs::write(out, code).expect("OUT_DIR is writable");
}
