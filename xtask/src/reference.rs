//! The reference validators orbi is compared with, and where to find or install them.
//!
//! - python-jsonschema with format assertion (`rfc3339-validator` for `date-time`, `rfc3987`
//!   for `uri`): the differential verdict check in `cargo xtask conformance`.
//! - `check-jsonschema` (PyPI, with its `format` extra) and `ajv-cli` + `ajv-formats` (npm): the
//!   benchmark `cargo xtask bench validate`, which also compares their verdicts.
//!
//! Nothing here is needed by `cargo test`. The benchmark installs the tools into a scratch
//! directory (default `target/reference-tools`) with the registries' own clients; the
//! conformance check uses them when present and says so when not.

use std::{
    env,
    ffi::OsStr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

/// Pinned so that benchmark figures from different days compare like with like. The format
/// checkers come with python-jsonschema's `format` extra (`rfc3987` for `uri`,
/// `rfc3339-validator`); check-jsonschema brings its own `date-time`.
pub const CHECK_JSONSCHEMA: &[&str] = &["check-jsonschema==0.39.0", "jsonschema[format]==4.26.0"];
/// Pinned npm packages: the CLI and the formats plugin it loads with `-c`.
pub const AJV_PACKAGES: &[&str] = &["ajv-cli@5.0.0", "ajv-formats@3.0.1"];

/// The modules the differential needs: the validator and both format checkers.
const PYTHON_PROBE: &str = "import jsonschema, referencing, rfc3339_validator, rfc3987";

/// The scratch directory holding installed tools.
pub fn tools_dir(root: &Path) -> PathBuf {
    env::var_os("ORBI_REFERENCE_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/reference-tools"))
}

/// A Python interpreter with python-jsonschema and both format checkers, if one is around:
/// `$ORBI_REFERENCE_PYTHON`, then the benchmark's scratch venv, then `python3` on the `PATH`.
pub fn find_python(root: &Path) -> Option<PathBuf> {
    let candidates = [
        env::var_os("ORBI_REFERENCE_PYTHON").map(PathBuf::from),
        Some(venv_python(&tools_dir(root))),
        Some(PathBuf::from("python3")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|python| python_has_reference_modules(python))
}

/// The `check-jsonschema` executable: `$ORBI_CHECK_JSONSCHEMA`, then the benchmark's scratch
/// venv, then the `PATH`.
pub fn find_check_jsonschema(root: &Path) -> Option<PathBuf> {
    let candidates = [
        env::var_os("ORBI_CHECK_JSONSCHEMA").map(PathBuf::from),
        Some(tools_dir(root).join("venv/bin/check-jsonschema")),
        Some(PathBuf::from("check-jsonschema")),
    ];
    candidates.into_iter().flatten().find(|exe| {
        Command::new(exe)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    })
}

fn python_has_reference_modules(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", PYTHON_PROBE])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn venv_python(tools: &Path) -> PathBuf {
    tools.join("venv/bin/python")
}

/// Paths of the installed benchmark tools.
pub struct Tools {
    /// `ajv` from ajv-cli.
    pub ajv: PathBuf,
    /// `check-jsonschema`.
    pub check_jsonschema: PathBuf,
}

/// Installs (once) ajv-cli + ajv-formats with npm and check-jsonschema in a venv with pip.
pub fn install_tools(tools: &Path) -> Result<Tools, String> {
    std::fs::create_dir_all(tools)
        .map_err(|err| format!("cannot create {}: {err}", tools.display()))?;
    let ajv = tools.join("node_modules/.bin/ajv");
    if !ajv.exists() {
        println!(
            "installing {} into {}",
            AJV_PACKAGES.join(" "),
            tools.display()
        );
        let mut args = vec!["install", "--no-audit", "--no-fund", "--prefix"];
        let prefix = tools.to_str().ok_or("the tools directory is not utf-8")?;
        args.push(prefix);
        args.extend(AJV_PACKAGES);
        run("npm", &args)?;
    }
    let check_jsonschema = tools.join("venv/bin/check-jsonschema");
    if !check_jsonschema.exists() {
        println!(
            "installing {} into {}",
            CHECK_JSONSCHEMA.join(" "),
            tools.display()
        );
        let venv = tools.join("venv");
        run(
            "python3",
            &[OsStr::new("-m"), "venv".as_ref(), venv.as_os_str()],
        )?;
        let mut args = vec!["-m", "pip", "install", "--quiet"];
        args.extend(CHECK_JSONSCHEMA);
        run(venv_python(tools), &args)?;
    }
    Ok(Tools {
        ajv,
        check_jsonschema,
    })
}

fn run<S: AsRef<OsStr>>(program: impl AsRef<OsStr>, args: &[S]) -> Result<(), String> {
    let program = program.as_ref();
    let status = Command::new(program)
        .args(args)
        .status()
        .map_err(|err| format!("cannot run {}: {err}", program.to_string_lossy()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} failed: {status}", program.to_string_lossy()))
    }
}
