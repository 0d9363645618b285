//! [`run_suite`]: the one runner behind `cargo test` and `convo-tck run`.

use std::borrow::Cow;
use std::io::{self, Write};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cucumber::event::{ScenarioFinished, StepError};
use cucumber::gherkin::tagexpr::TagOperation;
use cucumber::tag::Ext as _;
use cucumber::writer::{self, Coloring, Stats as _, Verbosity};
use cucumber::{Cucumber, WriterExt as _, gherkin, runner};

use super::features::{Embedded, looks_like_rule};
use super::steps;
use super::world::{RunContext, ScenarioRecord, TckWorld};
use crate::adapter::{Adapter, Hello, Profile};
use crate::checks::Finding;
use crate::harness::panics::{quiet_marked_panics, unmarked};
use crate::rules::{RuleId, UnknownRule};

/// How to run the suite.
#[derive(Clone, Debug)]
pub struct SuiteOptions {
    /// A cucumber tag expression selecting scenarios (`@SYNC-1 or @UPD-2`).
    pub tags: Option<String>,
    /// Only scenarios tagged with one of these rules (all when empty).
    pub rules: Vec<RuleId>,
    /// Seed for sids and token secrets.
    pub seed: u64,
    /// Real-time bound on every wait for the adapter.
    pub safety: Duration,
    /// Print cucumber's progress to stderr.
    pub progress: bool,
    /// Scenarios run at once.
    pub concurrency: usize,
    /// The profile to judge by when the adapter never said hello (it could not be started).
    pub profile: Profile,
    /// Only the scenario of this name (exact, as reports print it).
    pub scenario: Option<String>,
    /// Only this shard of the selected scenarios.
    pub partition: Option<Partition>,
    /// The command-line arguments that select this client (`--adapter ...`, `--fault ...`,
    /// `--profile ...`): replay commands repeat them.
    pub client_args: Vec<String>,
    /// Told when the selection is known and as each scenario ends (a progress bar's feed).
    pub on_progress: Option<ProgressFeed>,
}

/// What a [`ProgressFeed`] is told.
#[derive(Clone, Copy, Debug)]
pub enum SuiteProgress<'a> {
    /// The run will play this many scenarios.
    Selected(usize),
    /// A scenario ended.
    Ended {
        /// Its feature.
        feature: &'a str,
        /// Its name.
        scenario: &'a str,
        /// Whether a check was violated in it or it hit a harness error.
        failed: bool,
    },
}

/// A callback fed the run's [`SuiteProgress`].
#[derive(Clone)]
pub struct ProgressFeed(Arc<dyn Fn(SuiteProgress<'_>) + Send + Sync>);

impl ProgressFeed {
    /// A feed calling `f`.
    pub fn new(f: impl Fn(SuiteProgress<'_>) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }
}

impl std::fmt::Debug for ProgressFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProgressFeed(..)")
    }
}

/// Shard `index` of `count` (both from 1): `--partition 2/4`. The selected scenarios, sorted by
/// feature and name, are dealt round-robin, so every scenario lands in exactly one shard and a
/// shard's share does not depend on the machine or the order features were read in.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Partition {
    /// This shard, from 1.
    pub index: u32,
    /// How many shards.
    pub count: u32,
}

impl Partition {
    /// The most shards a run may be split into.
    pub const MAX_COUNT: u32 = 1024;

    /// Whether the `nth` (from 0) of the sorted selection belongs to this shard.
    pub fn owns(self, nth: usize) -> bool {
        nth % self.count as usize == (self.index - 1) as usize
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A `--partition` that is not `K/N` with `1 <= K <= N <= 1024`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid partition `{given}`: expected K/N with 1 <= K <= N <= {max}, e.g. 2/4", max = Partition::MAX_COUNT)]
pub struct BadPartition {
    /// What was given (elided if long).
    pub given: String,
}

impl FromStr for Partition {
    type Err = BadPartition;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadPartition {
            given: elide(s).into_owned(),
        };
        // nextest's spelling is accepted too: `count:2/4`.
        let (k, n) = s
            .trim()
            .trim_start_matches("count:")
            .split_once('/')
            .ok_or_else(bad)?;
        let (index, count) = (
            k.trim().parse::<u32>().map_err(|_| bad())?,
            n.trim().parse::<u32>().map_err(|_| bad())?,
        );
        if index == 0 || index > count || count > Self::MAX_COUNT {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

impl Default for SuiteOptions {
    fn default() -> Self {
        Self {
            tags: None,
            rules: Vec::new(),
            seed: 1,
            safety: Duration::from_secs(10),
            progress: false,
            concurrency: 16,
            profile: Profile::Mobile,
            scenario: None,
            partition: None,
            client_args: Vec::new(),
            on_progress: None,
        }
    }
}

/// The longest tag expression accepted, in bytes.
pub const MAX_TAGS_LEN: usize = 1024;
/// The deepest nesting of parentheses accepted in a tag expression.
pub const MAX_TAGS_DEPTH: usize = 32;
/// The most operators (`and`, `or`, `not`) accepted in a tag expression.
pub const MAX_TAGS_OPERATORS: usize = 64;
/// How many characters of a user's input an error message quotes.
pub const QUOTE_CHARS: usize = 80;

/// `input` as an error message quotes it: whole when short, else its first [`QUOTE_CHARS`]
/// characters, an ellipsis and its total length, so no argument is echoed back unbounded.
pub fn elide(input: &str) -> Cow<'_, str> {
    match input.char_indices().nth(QUOTE_CHARS) {
        None => Cow::Borrowed(input),
        Some((cut, _)) => Cow::Owned(format!("{}… ({} bytes in all)", &input[..cut], input.len())),
    }
}

/// The suite could not be run as asked.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// The tag expression does not parse.
    #[error("invalid tag expression `{expr}`: {reason}")]
    BadTags {
        /// The expression (elided if long).
        expr: String,
        /// Why.
        reason: String,
    },
    /// The tag expression is longer than [`MAX_TAGS_LEN`] bytes.
    #[error("tag expression too long: {len} bytes, at most {max} are accepted: `{expr}`")]
    TagsTooLong {
        /// The expression (elided).
        expr: String,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The tag expression nests parentheses deeper than [`MAX_TAGS_DEPTH`].
    #[error(
        "tag expression nested too deep: {depth} levels of parentheses, at most {max} are accepted: `{expr}`"
    )]
    TagsTooDeep {
        /// The expression (elided if long).
        expr: String,
        /// Its deepest nesting.
        depth: usize,
        /// The limit.
        max: usize,
    },
    /// The tag expression has more than [`MAX_TAGS_OPERATORS`] operators.
    #[error(
        "tag expression too complex: {operators} operators (and, or, not), at most {max} are accepted: `{expr}`"
    )]
    TagsTooComplex {
        /// The expression (elided if long).
        expr: String,
        /// How many operators it has.
        operators: usize,
        /// The limit.
        max: usize,
    },
    /// A rule id (in `--rule` or in the tag expression) is not in the catalog.
    #[error(transparent)]
    UnknownRule(#[from] UnknownRule),
    /// Two scenarios share a name (an outline's examples included): a replay or a shard could
    /// not tell them apart.
    #[error("two scenarios are named `{name}`: scenario names must be unique across the features")]
    DuplicateScenario {
        /// The name.
        name: String,
    },
    /// `--scenario` names no embedded scenario.
    #[error("no scenario is named `{given}`{}", nearest.as_ref().map(|n| format!("; the nearest is `{n}`")).unwrap_or_default())]
    UnknownScenario {
        /// The name given (elided if long).
        given: String,
        /// The closest scenario name, if one is close.
        nearest: Option<String>,
    },
}

/// Everything a run produced.
#[derive(Debug)]
pub struct SuiteRun {
    /// The profile the adapter declared (the rules it must follow).
    pub profile: Profile,
    /// The adapter's name.
    pub adapter: String,
    /// Its handshake (from the first session).
    pub hello: Option<Hello>,
    /// One record per scenario run, sorted by feature and name.
    pub scenarios: Vec<ScenarioRecord>,
    /// Feature files that failed to parse.
    pub parse_errors: usize,
    /// The seed used.
    pub seed: u64,
    /// Whether the run was restricted to some scenarios.
    pub filtered: bool,
    /// The shard this run was, if it was one.
    pub partition: Option<Partition>,
    /// The arguments that select the client, for replay commands.
    pub client_args: Vec<String>,
    /// How many scenarios the selection holds before it is cut into shards.
    pub selected: usize,
}

fn rules_of(feature: &gherkin::Feature, scenario: &gherkin::Scenario) -> Vec<RuleId> {
    let mut ids: Vec<RuleId> = scenario
        .tags
        .iter()
        .chain(&feature.tags)
        .filter(|t| looks_like_rule(t))
        .filter_map(|t| t.parse().ok())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

fn step_error(finished: &ScenarioFinished) -> Option<String> {
    match finished {
        ScenarioFinished::StepPassed => None,
        ScenarioFinished::StepSkipped => Some("a step matched no step definition".into()),
        ScenarioFinished::BeforeHookFailed(_) => Some("the scenario set-up panicked".into()),
        ScenarioFinished::StepFailed(_, _, err) => Some(match err {
            StepError::Panic(info) => unmarked(info.as_ref()),
            other => other.to_string(),
        }),
    }
}

/// Checks a tag expression's size before it is parsed: the parser (and the evaluation of what
/// it builds) recurses once per nesting level and operator, so an expression nested thousands
/// deep would overflow the stack. Escaped parentheses (`\(`) are part of a tag, not nesting.
fn check_tags_size(expr: &str) -> Result<(), SuiteError> {
    if expr.len() > MAX_TAGS_LEN {
        return Err(SuiteError::TagsTooLong {
            expr: elide(expr).into_owned(),
            len: expr.len(),
            max: MAX_TAGS_LEN,
        });
    }
    let (mut depth, mut deepest, mut escaped) = (0usize, 0usize, false);
    for c in expr.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_TAGS_DEPTH {
        return Err(SuiteError::TagsTooDeep {
            expr: elide(expr).into_owned(),
            depth: deepest,
            max: MAX_TAGS_DEPTH,
        });
    }
    let operators = expr
        .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .filter(|w| matches!(*w, "and" | "or" | "not"))
        .count();
    if operators > MAX_TAGS_OPERATORS {
        return Err(SuiteError::TagsTooComplex {
            expr: elide(expr).into_owned(),
            operators,
            max: MAX_TAGS_OPERATORS,
        });
    }
    Ok(())
}

/// Parses a tag expression; rule-id tags are checked against the catalog and written the
/// catalog's way (`@upd-1` selects `@UPD-1`).
fn validate_tags(expr: &str) -> Result<TagOperation, SuiteError> {
    check_tags_size(expr)?;
    let mut canonical = String::with_capacity(expr.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| -> Result<(), SuiteError> {
        match word
            .strip_prefix('@')
            .filter(|t| looks_like_rule(&t.to_ascii_uppercase()))
        {
            Some(tag) => {
                out.push('@');
                let id = tag.parse::<RuleId>().map_err(|e| UnknownRule {
                    given: elide(&e.given).into_owned(),
                })?;
                out.push_str(id.as_str());
            }
            None => out.push_str(word),
        }
        word.clear();
        Ok(())
    };
    for c in expr.chars() {
        if c.is_whitespace() || c == '(' || c == ')' {
            flush(&mut word, &mut canonical)?;
            canonical.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut canonical)?;
    TagOperation::from_str(&canonical).map_err(|e| SuiteError::BadTags {
        expr: elide(expr).into_owned(),
        reason: e.to_string(),
    })
}

/// Runs the embedded features against `adapter`.
pub async fn run_suite(
    adapter: Arc<dyn Adapter>,
    opts: &SuiteOptions,
) -> Result<SuiteRun, SuiteError> {
    let tags = opts.tags.as_deref().map(validate_tags).transpose()?;
    tracing::debug!(
        adapter = %adapter.name(),
        seed = opts.seed,
        tags = opts.tags.as_deref().map(elide).as_deref(),
        rules = ?opts.rules,
        concurrency = opts.concurrency,
        "suite starts"
    );
    quiet_marked_panics();
    let ctx = Arc::new(RunContext {
        adapter: adapter.clone(),
        seed: opts.seed,
        safety: opts.safety,
        records: Mutex::new(Vec::new()),
        hello: Mutex::new(None),
    });
    let out: Box<dyn Write> = if opts.progress {
        Box::new(io::stderr())
    } else {
        Box::new(io::sink())
    };
    let runner = runner::Basic::default()
        .max_concurrent_scenarios(opts.concurrency.max(1))
        .steps(steps::collection());
    let filtered = tags.is_some() || !opts.rules.is_empty() || opts.scenario.is_some();
    let (chosen, selected) = select(opts, tags.as_ref())?;
    if let Some(feed) = &opts.on_progress {
        (feed.0)(SuiteProgress::Selected(chosen.len()));
    }
    let before_ctx = ctx.clone();
    let after_ctx = ctx.clone();
    let feed = opts.on_progress.clone();
    let cucumber = Cucumber::<_, _, _, _, _, cucumber::cli::Empty>::custom(
        Embedded,
        runner,
        writer::Basic::new(out, Coloring::Never, Verbosity::Default).summarized(),
    )
    .with_default_cli()
    .fail_on_skipped()
    .before(move |feature, _, scenario, world: &mut TckWorld| {
        let ctx = before_ctx.clone();
        let rules = rules_of(feature, scenario);
        world.boundary = scenario
            .tags
            .iter()
            .chain(&feature.tags)
            .any(|t| t == "boundary");
        tracing::debug!(feature = %feature.name, scenario = %scenario.name, ?rules, "scenario starts");
        Box::pin(async move { world.set_up(ctx, rules).await })
    })
    .after(move |feature, _, scenario, finished, world| {
        let ctx = after_ctx.clone();
        let feed = feed.clone();
        let feature = feature.name.clone();
        let name = scenario.name.clone();
        let error = step_error(finished);
        Box::pin(async move {
            let record = match world {
                Some(w) => w.tear_down(&feature, &name, error).await,
                None => ScenarioRecord::lost(
                    feature,
                    name,
                    error.unwrap_or_else(|| "the scenario never got a world".into()),
                ),
            };
            if tracing::enabled!(tracing::Level::DEBUG) {
                let violated = record
                    .judgements
                    .iter()
                    .filter(|j| matches!(j.finding, Finding::Violated { .. }))
                    .count();
                tracing::debug!(
                    feature = %record.feature,
                    scenario = %record.scenario,
                    judgements = record.judgements.len(),
                    violated,
                    error = record.error.as_deref(),
                    not_applicable = record.not_applicable.as_deref(),
                    "scenario ends"
                );
            }
            if let Some(feed) = &feed {
                (feed.0)(SuiteProgress::Ended {
                    feature: &record.feature,
                    scenario: &record.scenario,
                    failed: record.error.is_some()
                        || record.judgements.iter().any(|j| j.finding.is_violated()),
                });
            }
            ctx.records
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(record);
        })
    });
    let writer = cucumber
        .filter_run((), move |feature, _, scenario| {
            chosen.contains(&(feature.name.clone(), scenario.name.clone()))
        })
        .await;
    tracing::debug!(parse_errors = writer.parsing_errors(), "suite ends");
    let mut scenarios = std::mem::take(&mut *ctx.records.lock().unwrap_or_else(|p| p.into_inner()));
    scenarios.sort_by(|a, b| (&a.feature, &a.scenario).cmp(&(&b.feature, &b.scenario)));
    let hello = ctx.hello.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let profile = hello.as_ref().map_or(opts.profile, |h| h.profile);
    Ok(SuiteRun {
        profile,
        adapter: adapter.name(),
        hello,
        scenarios,
        parse_errors: writer.parsing_errors(),
        seed: opts.seed,
        filtered,
        partition: opts.partition,
        client_args: opts.client_args.clone(),
        selected,
    })
}

/// The `(feature, scenario)` names this run plays: the scenarios the tags, rules and name
/// select, sorted, then this shard's share of them.
#[allow(clippy::type_complexity)]
fn select(
    opts: &SuiteOptions,
    tags: Option<&TagOperation>,
) -> Result<(std::collections::HashSet<(String, String)>, usize), SuiteError> {
    let features = super::features::parsed();
    let mut all: Vec<(String, String)> = Vec::new();
    let mut selected: Vec<(String, String)> = Vec::new();
    for feature in &features {
        let in_rules = feature
            .rules
            .iter()
            .flat_map(|r| r.scenarios.iter().map(move |s| (Some(r), s)));
        for (rule, scenario) in feature.scenarios.iter().map(|s| (None, s)).chain(in_rules) {
            let name = (feature.name.clone(), scenario.name.clone());
            all.push(name.clone());
            let by_tags = tags.is_none_or(|t| {
                t.eval(
                    feature
                        .tags
                        .iter()
                        .chain(rule.iter().flat_map(|r: &&gherkin::Rule| &r.tags))
                        .chain(scenario.tags.iter()),
                )
            });
            let by_rule = opts.rules.is_empty()
                || rules_of(feature, scenario)
                    .iter()
                    .any(|r| opts.rules.contains(r));
            let by_name = opts.scenario.as_ref().is_none_or(|n| *n == scenario.name);
            if by_tags && by_rule && by_name {
                selected.push(name);
            }
        }
    }
    if let Some(given) = &opts.scenario
        && !all.iter().any(|(_, s)| s == given)
    {
        return Err(SuiteError::UnknownScenario {
            given: elide(given).into_owned(),
            nearest: nearest(given, all.iter().map(|(_, s)| s.as_str())),
        });
    }
    // A scenario name is how replays and shards find a scenario: it must name one.
    let mut names: Vec<&String> = all.iter().map(|(_, s)| s).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(SuiteError::DuplicateScenario {
            name: elide(w[0]).into_owned(),
        });
    }
    selected.sort();
    let count = selected.len();
    let chosen = selected
        .into_iter()
        .enumerate()
        .filter(|(i, _)| opts.partition.is_none_or(|p| p.owns(*i)))
        .map(|(_, name)| name)
        .collect();
    Ok((chosen, count))
}

/// The candidate sharing the most words with `given` (the shorter on a tie), if it shares at
/// least half of them (a typo, a changed number), so an error can say what was probably meant.
fn nearest<'a>(given: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    let words = |s: &str| -> Vec<String> {
        s.split_whitespace()
            .map(|w| w.to_lowercase())
            .collect::<Vec<_>>()
    };
    let wanted = words(given);
    candidates
        .map(|c| {
            let have = words(c);
            let shared = wanted.iter().filter(|w| have.contains(w)).count();
            (shared, c)
        })
        .filter(|(shared, _)| *shared * 2 >= wanted.len().max(1))
        .max_by_key(|(shared, c)| (*shared, std::cmp::Reverse(c.len())))
        .map(|(_, c)| c.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_expressions_within_the_limits_parse() {
        let all_rules = RuleId::ALL
            .iter()
            .map(|r| format!("@{}", r.as_str()))
            .collect::<Vec<_>>()
            .join(" or ");
        assert!(validate_tags(&all_rules).is_ok());
        let nested = format!("{}@upd-1{}", "(".repeat(32), ")".repeat(32));
        assert!(validate_tags(&nested).is_ok());
        assert!(validate_tags(r"@a\(\(\( or not @UPD-1").is_ok());
    }

    #[test]
    fn oversized_tag_expressions_are_refused_before_parsing() {
        let deep = format!("{}@UPD-1{}", "(".repeat(20_000), ")".repeat(20_000));
        assert!(matches!(
            validate_tags(&deep),
            Err(SuiteError::TagsTooLong { len: 40_006, .. })
        ));
        let deep = format!("{}@UPD-1{}", "(".repeat(33), ")".repeat(33));
        assert!(matches!(
            validate_tags(&deep),
            Err(SuiteError::TagsTooDeep { depth: 33, .. })
        ));
        let nots = format!("{}@UPD-1", "not ".repeat(65));
        assert!(matches!(
            validate_tags(&nots),
            Err(SuiteError::TagsTooComplex { operators: 65, .. })
        ));
        let ors = vec!["@UPD-1"; 66].join(" or ");
        assert!(matches!(
            validate_tags(&ors),
            Err(SuiteError::TagsTooComplex { operators: 65, .. })
        ));
        let ors = vec!["@UPD-1"; 10_000].join(" or ");
        assert!(matches!(
            validate_tags(&ors),
            Err(SuiteError::TagsTooLong { .. })
        ));
    }

    #[test]
    fn errors_quote_user_input_bounded() {
        let long = format!("@{}", "x".repeat(2_000));
        let e = validate_tags(&long).unwrap_err().to_string();
        assert!(e.len() < 300, "{e}");
        assert!(e.contains("2001 bytes"), "{e}");
        let e = validate_tags(&format!("@UPD-{}", "9".repeat(900)))
            .unwrap_err()
            .to_string();
        assert!(!e.contains(&"9".repeat(81)), "{e}");
        let e = validate_tags(&format!("@a {}", "b".repeat(900)))
            .unwrap_err()
            .to_string();
        assert!(e.len() < 400, "{e}");
        assert_eq!(elide("short"), "short");
        let cut = elide(&"é".repeat(100)).into_owned();
        assert!(cut.starts_with(&"é".repeat(80)) && cut.ends_with("(200 bytes in all)"));
    }
}
