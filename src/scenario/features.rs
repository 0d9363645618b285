//! The Gherkin features, embedded in the binary so `convo-tck run` works from any directory.

use std::path::PathBuf;

use cucumber::feature::Ext as _;
use cucumber::gherkin::{self, GherkinEnv};
use cucumber::parser::{self, Parser};
use futures::stream;
use include_dir::{Dir, include_dir};

static FEATURES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/features");

/// Every embedded feature file as `(path, text)`, sorted by path.
pub fn sources() -> Vec<(String, &'static str)> {
    let mut files: Vec<(String, &'static str)> = FEATURES
        .files()
        .filter(|f| f.path().extension().is_some_and(|e| e == "feature"))
        .filter_map(|f| {
            Some((
                format!("features/{}", f.path().display()),
                f.contents_utf8()?,
            ))
        })
        .collect();
    files.sort();
    files
}

/// Parses the embedded features (cucumber's parser reads files from disk; ours reads the binary).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Embedded;

impl Parser<()> for Embedded {
    type Cli = cucumber::cli::Empty;
    type Output = stream::Iter<std::vec::IntoIter<parser::Result<gherkin::Feature>>>;

    fn parse(self, _: (), _: Self::Cli) -> Self::Output {
        let parsed: Vec<_> = sources()
            .into_iter()
            .map(|(path, text)| {
                let path = PathBuf::from(path);
                gherkin::Feature::parse(text, GherkinEnv::default())
                    .map_err(|source| {
                        parser::Error::from(gherkin::ParseFileError::Parsing {
                            path: path.clone(),
                            error: None,
                            source,
                        })
                    })
                    .and_then(|mut f| {
                        f.path = Some(path);
                        f.expand_examples().map_err(parser::Error::from)
                    })
            })
            .collect();
        stream::iter(parsed)
    }
}

/// The embedded features that parse, with their examples expanded (what the runner runs).
pub(crate) fn parsed() -> Vec<gherkin::Feature> {
    sources()
        .into_iter()
        .filter_map(|(path, text)| {
            let mut f = gherkin::Feature::parse(text, GherkinEnv::default()).ok()?;
            f.path = Some(PathBuf::from(path));
            f.expand_examples().ok()
        })
        .collect()
}

/// All rule-id tags (`@SYNC-1` → `SYNC-1`) of the embedded features, with where they appear.
pub fn rule_tags() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, text) in sources() {
        let Ok(feature) = gherkin::Feature::parse(text, GherkinEnv::default()) else {
            continue;
        };
        let scenarios = feature
            .scenarios
            .iter()
            .chain(feature.rules.iter().flat_map(|r| r.scenarios.iter()));
        for s in scenarios {
            for tag in s.tags.iter().chain(feature.tags.iter()) {
                if looks_like_rule(tag) {
                    out.push((tag.clone(), format!("{path}: {}", s.name)));
                }
            }
        }
    }
    out
}

/// Whether a tag is shaped like a rule id (`ABC-1`).
pub(crate) fn looks_like_rule(tag: &str) -> bool {
    let tag = tag.trim_start_matches('@');
    tag.split_once('-').is_some_and(|(family, n)| {
        !family.is_empty()
            && family.chars().all(|c| c.is_ascii_uppercase())
            && !n.is_empty()
            && n.chars().all(|c| c.is_ascii_digit())
    })
}
