//! One `chaincode.externalBuilders` entry of `core.yaml`, and its validation.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::process::Step;

/// Variables every builder receives when the peer has them, whatever its configuration says
/// (Fabric's default list).
pub const ALWAYS_PROPAGATED: [&str; 4] = ["LD_LIBRARY_PATH", "LIBPATH", "PATH", "TMPDIR"];

/// An external builder: `{name, path, propagateEnvironment}` in `core.yaml`.
///
/// `environmentWhitelist`, Fabric's older name for `propagateEnvironment`, is accepted too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExternalBuilder {
    /// Names the builder in logs and in the record of which builder built a package.
    pub name: String,
    /// The builder's directory (absolute), holding `bin/detect`, `bin/build`, and optionally
    /// `bin/release` and `bin/run`.
    pub path: PathBuf,
    /// Environment variables of the peer passed on to the builder's programs.
    #[serde(default, alias = "environmentWhitelist")]
    pub propagate_environment: Vec<String>,
}

/// An external builder configuration that cannot be used. Raised at start-up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuilderConfigError {
    /// The entry has no name.
    #[error("chaincode.externalBuilders: the builder at {path} has no name; give every builder a unique name")]
    EmptyName { path: PathBuf },
    /// Two entries share a name.
    #[error("chaincode.externalBuilders: the name '{name}' is used by more than one builder; names must be unique")]
    DuplicateName { name: String },
    /// The path is relative.
    #[error("external builder '{name}': path {path} is not absolute; chaincode.externalBuilders paths must be absolute")]
    RelativePath { name: String, path: PathBuf },
    /// A program of the builder is missing or cannot be executed.
    #[error("external builder '{name}': {file} {problem}")]
    Program {
        name: String,
        file: PathBuf,
        problem: String,
    },
    /// A `propagateEnvironment` entry is not a variable name.
    #[error("external builder '{name}': propagateEnvironment entry {var:?} is not an environment variable name")]
    BadVariable { name: String, var: String },
}

impl ExternalBuilder {
    pub fn new(name: impl Into<String>, path: impl Into<PathBuf>) -> Self {
        ExternalBuilder {
            name: name.into(),
            path: path.into(),
            propagate_environment: Vec::new(),
        }
    }

    /// Also pass these variables of the peer's environment to the builder.
    pub fn propagating<I, S>(mut self, vars: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.propagate_environment
            .extend(vars.into_iter().map(Into::into));
        self
    }

    /// The path of one of the builder's programs (`<path>/bin/<step>`).
    pub fn program(&self, step: Step) -> PathBuf {
        self.path.join("bin").join(step.program_name())
    }

    /// Whether the builder has the optional program for `step`.
    pub fn has(&self, step: Step) -> bool {
        self.program(step).exists()
    }

    /// The variables passed to the builder: `propagateEnvironment`, then
    /// [`ALWAYS_PROPAGATED`], without repeats.
    pub fn environment_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for name in self
            .propagate_environment
            .iter()
            .map(String::as_str)
            .chain(ALWAYS_PROPAGATED)
        {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// Checks the entry against the file system: a name, an absolute path, executable
    /// `bin/detect` and `bin/build`, and executable `bin/release` / `bin/run` when present.
    pub fn validate(&self) -> Result<(), BuilderConfigError> {
        if self.name.trim().is_empty() {
            return Err(BuilderConfigError::EmptyName {
                path: self.path.clone(),
            });
        }
        if !self.path.is_absolute() {
            return Err(BuilderConfigError::RelativePath {
                name: self.name.clone(),
                path: self.path.clone(),
            });
        }
        for var in &self.propagate_environment {
            if var.is_empty() || var.contains('=') || var.contains('\0') {
                return Err(BuilderConfigError::BadVariable {
                    name: self.name.clone(),
                    var: var.clone(),
                });
            }
        }
        for step in [Step::Detect, Step::Build] {
            self.check_program(&self.program(step), true)?;
        }
        for step in [Step::Release, Step::Run] {
            self.check_program(&self.program(step), false)?;
        }
        Ok(())
    }

    fn check_program(&self, file: &Path, required: bool) -> Result<(), BuilderConfigError> {
        let problem = |problem: String| BuilderConfigError::Program {
            name: self.name.clone(),
            file: file.to_owned(),
            problem,
        };
        match std::fs::metadata(file) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if required {
                    Err(problem(
                        "is missing; every builder needs bin/detect and bin/build".to_owned(),
                    ))
                } else {
                    Ok(())
                }
            }
            Err(e) => Err(problem(format!("cannot be inspected: {e}"))),
            Ok(meta) if !meta.is_file() => Err(problem("is not a regular file".to_owned())),
            Ok(meta) if meta.permissions().mode() & 0o111 == 0 => Err(problem(format!(
                "is not executable (mode {:o}); make it executable (chmod +x)",
                meta.permissions().mode() & 0o7777
            ))),
            Ok(_) => Ok(()),
        }
    }
}
