//! Backend states as JSON files (`fixtures/*.json`), embedded in the binary.
//!
//! A fixture lists users and conversations (with participants and messages). Loading one adds it to
//! the backend silently, as state that existed before the scenario began: no events are published.

use include_dir::{Dir, include_dir};
use serde::Deserialize;
use serde_json::Value;

static FIXTURES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/fixtures");

/// A backend state to start from.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixture {
    /// Users.
    #[serde(default)]
    pub users: Vec<FixtureUser>,
    /// Conversations.
    #[serde(default)]
    pub conversations: Vec<FixtureConversation>,
}

/// A user of a fixture.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureUser {
    /// Chat identity.
    pub identity: String,
    /// Attributes.
    #[serde(default)]
    pub attributes: Option<Value>,
}

/// A conversation of a fixture.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureConversation {
    /// Unique name (scenarios refer to conversations by it).
    pub unique_name: String,
    /// Display name.
    #[serde(default)]
    pub friendly_name: Option<String>,
    /// Attributes.
    #[serde(default)]
    pub attributes: Option<Value>,
    /// Participant identities.
    pub participants: Vec<String>,
    /// Messages, oldest first.
    #[serde(default)]
    pub messages: Vec<FixtureMessage>,
}

/// A message of a fixture.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureMessage {
    /// Author identity.
    pub author: String,
    /// Text.
    pub body: String,
}

/// A fixture could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// No fixture of that name.
    #[error("no fixture `{name}`; available: {}", available().join(", "))]
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// The file is not a valid fixture.
    #[error("fixture `{name}` is invalid: {source}")]
    Invalid {
        /// The fixture's name.
        name: String,
        /// Why.
        source: serde_json::Error,
    },
}

/// Names of the embedded fixtures.
pub fn available() -> Vec<String> {
    let mut names: Vec<String> = FIXTURES
        .files()
        .filter_map(|f| f.path().to_str()?.strip_suffix(".json").map(str::to_owned))
        .collect();
    names.sort();
    names
}

impl Fixture {
    /// Loads an embedded fixture by name (`basic` for `fixtures/basic.json`).
    pub fn named(name: &str) -> Result<Self, FixtureError> {
        let file =
            FIXTURES
                .get_file(format!("{name}.json"))
                .ok_or_else(|| FixtureError::NotFound {
                    name: name.to_owned(),
                })?;
        serde_json::from_slice(file.contents()).map_err(|source| FixtureError::Invalid {
            name: name.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_fixture_parses() {
        assert!(!available().is_empty());
        for name in available() {
            Fixture::named(&name).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn an_unknown_fixture_lists_the_available_ones() {
        let err = Fixture::named("nope").unwrap_err().to_string();
        assert!(err.contains("basic"), "{err}");
    }
}
