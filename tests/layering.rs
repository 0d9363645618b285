//! The layers of `docs/architecture.md`, enforced: each module's `//!` says what it must not
//! import, and this test reads the sources (code lines, not comments) to hold it to that. A new
//! import that crosses a layer fails here with the file and the line.

use std::path::{Path, PathBuf};

/// Modules of the crate, bottom up.
const MODULES: &[&str] = &[
    "clock",
    "secrets",
    "wire",
    "adapter",
    "backend",
    "journal",
    "reference",
    "checks",
    "rules",
    "harness",
    "scenario",
    "properties",
    "report",
    "mutants",
    "stress",
    "standalone",
];

/// What each module must not import, besides everything above it in [`MODULES`] unless listed
/// in `allowed_up`.
struct Layer {
    module: &'static str,
    /// Modules listed later in MODULES that it may still import.
    allowed_up: &'static [&'static str],
    /// Modules listed earlier that it must not import either.
    forbidden_down: &'static [&'static str],
}

const LAYERS: &[Layer] = &[
    Layer {
        module: "clock",
        allowed_up: &[],
        forbidden_down: &[],
    },
    Layer {
        module: "secrets",
        allowed_up: &[],
        forbidden_down: &["clock"],
    },
    Layer {
        module: "wire",
        allowed_up: &[],
        forbidden_down: &["secrets"],
    },
    Layer {
        module: "adapter",
        allowed_up: &[],
        forbidden_down: &["secrets"],
    },
    Layer {
        module: "backend",
        allowed_up: &[],
        forbidden_down: &["adapter"],
    },
    Layer {
        module: "journal",
        allowed_up: &[],
        forbidden_down: &[],
    },
    Layer {
        module: "reference",
        allowed_up: &[],
        forbidden_down: &["backend", "journal", "secrets"],
    },
    // The catalog (rules) owns the reference client's faults; checks stay below both.
    Layer {
        module: "checks",
        allowed_up: &[],
        forbidden_down: &["reference"],
    },
    Layer {
        module: "rules",
        allowed_up: &[],
        forbidden_down: &[],
    },
    Layer {
        module: "harness",
        allowed_up: &[],
        forbidden_down: &["reference"],
    },
    Layer {
        module: "scenario",
        allowed_up: &[],
        forbidden_down: &["reference"],
    },
    Layer {
        module: "properties",
        allowed_up: &[],
        forbidden_down: &["scenario"],
    },
    Layer {
        module: "report",
        allowed_up: &[],
        forbidden_down: &["harness", "properties", "reference", "backend"],
    },
    Layer {
        module: "mutants",
        allowed_up: &[],
        forbidden_down: &["harness", "properties", "backend", "journal", "checks"],
    },
    Layer {
        module: "stress",
        allowed_up: &[],
        forbidden_down: &["reference", "mutants", "backend", "properties"],
    },
    // The mock service alone: the backend and its journal, nothing that drives a client.
    Layer {
        module: "standalone",
        allowed_up: &[],
        forbidden_down: &[
            "adapter",
            "reference",
            "checks",
            "rules",
            "harness",
            "scenario",
            "properties",
            "report",
            "mutants",
            "stress",
        ],
    },
];

/// Layers inside the backend, bottom up: (path prefix, what its files must not name).
const BACKEND: &[(&str, &[&str])] = &[
    (
        "src/backend/endpoint.rs",
        &[
            "model",
            "fact",
            "render",
            "service",
            "transport",
            "controls",
            "tokens",
        ],
    ),
    (
        "src/backend/model/",
        &[
            "backend::fact",
            "backend::render",
            "backend::service",
            "backend::transport",
            "backend::controls",
            "backend::tokens",
        ],
    ),
    (
        "src/backend/fact.rs",
        &[
            "super::render",
            "super::service",
            "super::transport",
            "super::controls",
        ],
    ),
    (
        "src/backend/render.rs",
        &[
            "super::service",
            "super::transport",
            "super::controls",
            "super::fact",
        ],
    ),
    (
        "src/backend/service.rs",
        &["super::transport", "super::controls"],
    ),
    (
        "src/backend/transport/",
        &["backend::controls", "backend::Backend", "backend::fixture"],
    ),
];

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every code line (not a comment) of every file of `module`, with its place.
fn code_lines(module: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let dir = root.join(module);
    if dir.is_dir() {
        files_under(&dir, &mut files);
    } else {
        files.push(root.join(format!("{module}.rs")));
    }
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let rel = f
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .unwrap()
            .display()
            .to_string();
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            out.push((format!("{rel}:{}", i + 1), line.to_owned()));
        }
    }
    out
}

#[test]
fn every_module_imports_only_the_layers_below_it() {
    let mut crossings = Vec::new();
    for (index, layer) in LAYERS.iter().enumerate() {
        assert_eq!(MODULES[index], layer.module, "LAYERS follows MODULES");
        let forbidden: Vec<&str> = MODULES[index + 1..]
            .iter()
            .filter(|m| !layer.allowed_up.contains(m))
            .chain(layer.forbidden_down)
            .copied()
            .collect();
        for (place, line) in code_lines(layer.module) {
            for m in &forbidden {
                if line.contains(&format!("crate::{m}::")) || line.contains(&format!("crate::{m};"))
                {
                    crossings.push(format!(
                        "{place}: {} imports {m}: {}",
                        layer.module,
                        line.trim()
                    ));
                }
            }
        }
    }
    assert!(
        crossings.is_empty(),
        "imports across layers:\n{}",
        crossings.join("\n")
    );
}

#[test]
fn the_backend_layers_import_only_downwards() {
    let mut crossings = Vec::new();
    for (place, line) in code_lines("backend") {
        for (prefix, forbidden) in BACKEND {
            if !place.starts_with(prefix) {
                continue;
            }
            for name in *forbidden {
                if line.contains(name) && (line.contains("use ") || line.contains("::")) {
                    crossings.push(format!("{place}: names {name}: {}", line.trim()));
                }
            }
        }
    }
    assert!(
        crossings.is_empty(),
        "backend imports across layers:\n{}",
        crossings.join("\n")
    );
}
