//! Typed step parameters: the words of a step that name an actor, a conversation, a change...
//! Each is a cucumber [`Parameter`] (a name and a regex), parsed with `FromStr`, so a step's
//! body gets typed values and a feature file cannot smuggle in something the type does not know.
//!
//! Step patterns are Cucumber Expressions over these parameters ([`expr`]).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use cucumber::Parameter;
use cucumber::codegen::{Expression, Regex};
use serde_json::Value;

use crate::backend::ListOrder;

/// Why a parameter did not parse.
#[derive(Debug)]
pub(crate) struct BadParameter(String);

impl fmt::Display for BadParameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person of the scenario, by chat identity (`alice`).
#[derive(Clone, Debug, PartialEq, Eq, Parameter)]
#[param(name = "actor", regex = "[a-z]+")]
pub(crate) struct Actor(pub(crate) String);

impl FromStr for Actor {
    type Err = BadParameter;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Several actors: `alice and bob`.
#[derive(Clone, Debug, PartialEq, Eq, Parameter)]
#[param(name = "actors", regex = "[a-z]+(?: and [a-z]+)*")]
pub(crate) struct Actors(pub(crate) Vec<String>);

impl FromStr for Actors {
    type Err = BadParameter;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.split(" and ").map(str::to_owned).collect()))
    }
}

/// A conversation by its unique name, quoted in the feature text (`"general"`).
#[derive(Clone, Debug, PartialEq, Eq, Parameter)]
#[param(name = "conversation", regex = "\"[^\"]+\"")]
pub(crate) struct Named(pub(crate) String);

impl FromStr for Named {
    type Err = BadParameter;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .map(|n| Self(n.to_owned()))
            .ok_or_else(|| BadParameter(format!("`{s}` is not a quoted name")))
    }
}

/// A quoted text (`"hello while syncing"`).
#[derive(Clone, Debug, PartialEq, Eq, Parameter)]
#[param(name = "text", regex = "\"[^\"]*\"")]
pub(crate) struct Text(pub(crate) String);

impl FromStr for Text {
    type Err = BadParameter;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.trim_matches('"').to_owned()))
    }
}

/// A JSON object (`{"topic": "news"}`).
#[derive(Clone, Debug, PartialEq, Parameter)]
#[param(name = "json", regex = "\\{.*\\}")]
pub(crate) struct Json(pub(crate) Value);

impl FromStr for Json {
    type Err = BadParameter;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_str(s)
            .map(Self)
            .map_err(|e| BadParameter(format!("`{s}` is not JSON: {e}")))
    }
}

/// A non-negative number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Parameter)]
#[param(name = "count", regex = "\\d+")]
pub(crate) struct Count(pub(crate) u64);

impl FromStr for Count {
    type Err = BadParameter;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse()
            .map(Self)
            .map_err(|_| BadParameter(format!("`{s}` is not a number")))
    }
}

impl Count {
    /// The number as a `u32`, or why it does not fit.
    pub(crate) fn small(self) -> Result<u32, BadParameter> {
        u32::try_from(self.0).map_err(|_| BadParameter(format!("{} is too large", self.0)))
    }
}

/// An operation an actor issued, as later steps refer to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Parameter)]
#[param(
    name = "operation",
    regex = "user update|update of \"[^\"]+\"|message to \"[^\"]+\""
)]
pub(crate) enum Operation {
    /// An update of the actor's own user.
    UserUpdate,
    /// An update of a conversation.
    UpdateOf(String),
    /// A message sent to a conversation.
    MessageTo(String),
}

impl FromStr for Operation {
    type Err = BadParameter;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let quoted = |prefix: &str| {
            s.strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('"'))
                .and_then(|r| r.strip_suffix('"'))
                .map(str::to_owned)
        };
        if s == "user update" {
            return Ok(Self::UserUpdate);
        }
        quoted("update of ")
            .map(Self::UpdateOf)
            .or_else(|| quoted("message to ").map(Self::MessageTo))
            .ok_or_else(|| BadParameter(format!("unknown operation `{s}`")))
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UserUpdate => f.write_str("user update"),
            Self::UpdateOf(n) => write!(f, "update of \"{n}\""),
            Self::MessageTo(n) => write!(f, "message to \"{n}\""),
        }
    }
}

/// A change to an existing conversation of the subscribed list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Parameter)]
#[param(
    name = "list_change",
    regex = "is announced as added|is updated by another writer|is bumped to the front|is removed while the list still shows it|is removed|is restored and announced"
)]
pub(crate) enum ListChange {
    /// `conversation_added` again.
    Announce,
    /// Another writer changes its attributes.
    Touch,
    /// A new message moves it to the front of the by-activity order.
    Bump,
    /// Deleted.
    Remove,
    /// Deleted while the list index still shows it.
    RemoveLagging,
    /// A deleted one brought back, with its sid, and announced.
    Restore,
}

impl FromStr for ListChange {
    type Err = BadParameter;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "is announced as added" => Self::Announce,
            "is updated by another writer" => Self::Touch,
            "is bumped to the front" => Self::Bump,
            "is removed" => Self::Remove,
            "is removed while the list still shows it" => Self::RemoveLagging,
            "is restored and announced" => Self::Restore,
            other => return Err(BadParameter(format!("unknown list change `{other}`"))),
        })
    }
}

/// How a new conversation comes into the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Parameter)]
#[param(name = "creation", regex = "and announced|without an announcement")]
pub(crate) enum Creation {
    /// With `conversation_added`.
    Announced,
    /// Silently: the client can learn of it only from the list or a later event.
    Quiet,
}

impl FromStr for Creation {
    type Err = BadParameter;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "and announced" => Ok(Self::Announced),
            "without an announcement" => Ok(Self::Quiet),
            other => Err(BadParameter(format!("unknown creation `{other}`"))),
        }
    }
}

/// Before or after a page of the list walk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Parameter)]
#[param(name = "when", regex = "before|after")]
pub(crate) enum When {
    /// When the page is requested.
    Before,
    /// When the next page is requested.
    After,
}

impl FromStr for When {
    type Err = BadParameter;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "before" => Ok(Self::Before),
            "after" => Ok(Self::After),
            other => Err(BadParameter(format!("`{other}` is not before or after"))),
        }
    }
}

/// The order the subscribed list is served in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Parameter)]
#[param(name = "order", regex = "creation|last activity")]
pub(crate) struct Order(pub(crate) ListOrder);

impl FromStr for Order {
    type Err = BadParameter;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "creation" => Ok(Self(ListOrder::Creation)),
            "last activity" => Ok(Self(ListOrder::Activity)),
            other => Err(BadParameter(format!("unknown list order `{other}`"))),
        }
    }
}

/// What another participant does to a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Parameter)]
#[param(name = "message_change", regex = "edits|removes")]
pub(crate) enum MessageChange {
    /// Edits its body.
    Edit,
    /// Deletes it.
    Remove,
}

impl FromStr for MessageChange {
    type Err = BadParameter;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "edits" => Ok(Self::Edit),
            "removes" => Ok(Self::Remove),
            other => Err(BadParameter(format!("unknown message change `{other}`"))),
        }
    }
}

fn parameters() -> HashMap<&'static str, &'static str> {
    macro_rules! params {
        ($($t:ty),* $(,)?) => {
            HashMap::from([$((<$t as Parameter>::NAME, <$t as Parameter>::REGEX)),*])
        };
    }
    params!(
        Actor,
        Actors,
        Named,
        Text,
        Json,
        Count,
        Operation,
        ListChange,
        Creation,
        When,
        Order,
        MessageChange,
    )
}

/// A step pattern: a Cucumber Expression over the parameters above (patterns are literals of
/// the step files, so a bad one is a bug found by every test run).
pub(crate) fn expr(expression: &str) -> Regex {
    let parameters = parameters();
    Expression::regex_with_parameters(expression, &parameters)
        .unwrap_or_else(|e| panic!("step expression `{expression}` is invalid: {e}"))
}

/// The captures of a matched step, read in order as typed parameters.
pub(crate) struct Args(std::vec::IntoIter<String>);

impl Args {
    pub(crate) fn from(ctx: &cucumber::step::Context) -> Self {
        let values: Vec<String> = ctx.matches.iter().skip(1).map(|(_, v)| v.clone()).collect();
        Self(values.into_iter())
    }

    /// The next parameter.
    pub(crate) fn next<T: FromStr<Err = BadParameter>>(&mut self) -> Result<T, BadParameter> {
        let raw = self.0.next().ok_or_else(|| {
            BadParameter("the step has fewer parameters than its body reads".into())
        })?;
        raw.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_capture_one_group_per_parameter() {
        let re = expr("{actor} updates the attributes of {conversation} to {json} without waiting");
        let caps = re
            .captures(r#"alice updates the attributes of "general" to {"a": 1} without waiting"#)
            .unwrap();
        assert_eq!(caps.len(), 4);
        assert_eq!(&caps[2], "\"general\"");
        let op: Operation = "update of \"general\"".parse().unwrap();
        assert_eq!(op.to_string(), "update of \"general\"");
    }
}
