//! The `convo-tck` command line: `run`, `rules`, `explain`, `faults`. Thin: it parses arguments,
//! calls the library and maps the report to an exit code (0 pass, 1 MUST failure, 2 error).
//!
//! It never panics on its input or its output: a reader that goes away (a broken pipe) ends the
//! output quietly and leaves the exit code as it would have been; any other write error is
//! exit 2 with one line on stderr; user input quoted in an error is elided.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use convo_tck::Profile;
use convo_tck::adapter::process::{ProcessAdapter, ProcessLimits};
use convo_tck::reference::{Fault, FaultSet, ReferenceAdapter};
use convo_tck::report::{self, Report};
use convo_tck::rules::{self, CATALOG, RuleId};
use convo_tck::scenario::{Partition, QUOTE_CHARS, SuiteOptions, elide, run_suite};

#[derive(Parser)]
#[command(
    name = "convo-tck",
    version,
    about = "Lifecycle conformance kit for Conversations-style chat client SDKs"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

/// `convo-tck properties`'s arguments.
#[derive(clap::Args)]
struct PropertiesArgs {
    /// Which profile's rules are held (its required MUST rules, unless --rule says).
    /// With --adapter, give the profile the adapter declares. [default: mobile]
    #[arg(long)]
    profile: Option<Profile>,
    /// Switch on a planted bug of the reference client (repeatable).
    #[arg(long = "fault")]
    faults: Vec<Fault>,
    /// Test this adapter process instead of the reference client.
    #[arg(long, conflicts_with = "faults")]
    adapter: Option<String>,
    /// Hold exactly these rules (repeatable) instead of the profile's required MUST rules.
    #[arg(long = "rule")]
    rules: Vec<RuleId>,
    /// Which campaigns.
    #[arg(long, value_enum, default_value = "all")]
    campaign: CampaignChoice,
    /// Random cases per campaign (split across shards with --partition).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    cases: u32,
    /// Longest random lifecycle, in steps.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(2..=500))]
    max_steps: u64,
    /// Seed of the case generator: same seed, same cases.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run only shard K of N: its share of the cases, from its own seed.
    #[arg(long)]
    partition: Option<Partition>,
    /// Play this counterexample again (the JSON a violation prints) instead of a campaign.
    #[arg(long, conflicts_with_all = ["campaign", "cases", "partition"])]
    replay: Option<String>,
}

/// Which property campaigns to run.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CampaignChoice {
    Lifecycle,
    Lists,
    All,
}

/// A report writer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReportFormat {
    Table,
    Json,
    Junit,
    Markdown,
}

impl ReportFormat {
    const ALL: [(&'static str, ReportFormat); 4] = [
        ("table", ReportFormat::Table),
        ("json", ReportFormat::Json),
        ("junit", ReportFormat::Junit),
        ("markdown", ReportFormat::Markdown),
    ];

    /// The file it is written to under `--out DIR`.
    fn file_name(self) -> &'static str {
        match self {
            Self::Table => "matrix.txt",
            Self::Json => "report.json",
            Self::Junit => "junit.xml",
            Self::Markdown => "summary.md",
        }
    }

    fn render(self, report: &Report) -> String {
        match self {
            Self::Table => report::table::render(report),
            Self::Json => report::json::to_string(report),
            Self::Junit => report::junit::render(report),
            Self::Markdown => report::markdown::render(report),
        }
    }
}

/// One `--format` item: `junit` (to `--out DIR`, or stdout) or `junit=PATH`.
#[derive(Clone, Debug)]
struct Output {
    format: ReportFormat,
    path: Option<PathBuf>,
}

fn parse_output(item: &str) -> Result<Output, String> {
    let (name, path) = match item.split_once('=') {
        Some((n, p)) if !p.is_empty() => (n, Some(PathBuf::from(p))),
        Some(_) => return Err(format!("`{}` names no file after `=`", elide(item))),
        None => (item, None),
    };
    let format = ReportFormat::ALL
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.trim()))
        .map(|(_, f)| *f)
        .ok_or_else(|| {
            format!(
                "unknown format `{}`: one of table, json, junit, markdown (optionally =PATH)",
                elide(name)
            )
        })?;
    Ok(Output { format, path })
}

/// Where each report goes: `--format` items, under `--out DIR` when they name no file, else
/// stdout (for at most one of them).
#[derive(clap::Args, Clone, Debug)]
struct Outputs {
    /// Report formats, comma-separated or repeated: table, json, junit, markdown; each may name
    /// its own file (`junit=reports/junit.xml`). [default: table]
    #[arg(long = "format", value_delimiter = ',', value_parser = parse_output)]
    formats: Vec<Output>,
    /// Write the reports into this directory (created if missing): matrix.txt, report.json,
    /// junit.xml, summary.md.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the suite against the built-in reference client, or an adapter process (--adapter),
    /// and print the compliance matrix.
    Run {
        /// Which profile's rules are required: js or mobile. With --adapter, the adapter's hello
        /// decides, and this is only the profile to report by if it never says hello.
        /// [default: mobile]
        #[arg(long)]
        profile: Option<Profile>,
        /// Switch on a planted bug of the reference client (repeatable); see `convo-tck faults`.
        #[arg(long = "fault")]
        faults: Vec<Fault>,
        /// Cucumber tag expression selecting scenarios, e.g. "@UPD-1 or @SYNC-2".
        #[arg(long)]
        tags: Option<String>,
        /// Only scenarios of this rule (repeatable).
        #[arg(long = "rule")]
        rules: Vec<RuleId>,
        /// Only the scenario of this name (exactly as reports print it; replay commands use it).
        #[arg(long)]
        scenario: Option<String>,
        /// Run only shard K of N (e.g. 2/4): the selected scenarios, sorted, dealt round-robin.
        /// `convo-tck merge` combines the shards' JSON reports.
        #[arg(long)]
        partition: Option<Partition>,
        /// Seed for sids and token secrets.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[command(flatten)]
        outputs: Outputs,
        /// Show cucumber's scenario progress on stderr.
        #[arg(long)]
        progress: bool,
        /// Test this adapter process instead of the reference client: a command line started
        /// once per scenario, speaking the JSON-lines protocol on stdio (docs/protocol.md).
        /// Also read from `[adapter] command` of ./convo-tck.toml.
        #[arg(long, conflicts_with = "faults")]
        adapter: Option<String>,
        /// Scenarios run at once (default: 1 with --adapter, 16 with the reference client).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
        jobs: Option<u16>,
        /// Real-time bound on every wait for the adapter, in milliseconds (default 10000),
        /// extended up to five times while the adapter or backend keeps doing something;
        /// independent of the virtual time scenarios move.
        #[arg(long, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
        timeout_ms: Option<u64>,
        /// How long an adapter process may take to say hello, in milliseconds (default 10000).
        #[arg(long, value_parser = clap::value_parser!(u64).range(10..=3_600_000))]
        hello_timeout_ms: Option<u64>,
    },
    /// Run property campaigns: random lifecycles (starts, updates, gates, held events, other
    /// writers, outages, background spells, tokens, counts, time) and random subscribed lists,
    /// every selected rule an invariant after every step; a violation is shrunk to a minimal
    /// case and printed with the command that replays it. Exit 0 held, 1 violated, 2 error.
    Properties(PropertiesArgs),
    /// Merge the JSON reports of a sharded run (`run --partition K/N --format json=...`) into
    /// the matrix one run would have given; exit code as `run`'s.
    Merge {
        /// The shards' JSON reports, one per shard.
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        #[command(flatten)]
        outputs: Outputs,
    },
    /// Print the rule catalog.
    Rules {
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
    },
    /// Explain one rule: its text, source, how it is provoked and what makes it fail.
    Explain {
        /// Rule id, e.g. UPD-1.
        rule: RuleId,
    },
    /// List the reference client's planted bugs and the rules each must fail.
    Faults,
    /// Serve the reference client as a JSON-lines adapter process on stdin and stdout (to try
    /// the process path: `convo-tck run --adapter "convo-tck reference-adapter"`).
    #[command(hide = true)]
    ReferenceAdapter {
        /// Which profile it declares.
        #[arg(long, default_value = "mobile")]
        profile: Profile,
        /// Planted bugs (repeatable).
        #[arg(long = "fault")]
        faults: Vec<Fault>,
    },
    /// Run the suite many times, several at once, and fail (exit 1) if any two runs give
    /// different reports (verdicts, harness errors, a compliant run's evidence).
    Stress {
        /// Which profile's rules are required: js or mobile.
        #[arg(long, default_value = "mobile")]
        profile: Profile,
        /// Switch on a planted bug of the reference client (repeatable).
        #[arg(long = "fault")]
        faults: Vec<Fault>,
        /// Only scenarios of this rule (repeatable).
        #[arg(long = "rule")]
        rules: Vec<RuleId>,
        /// Seed for sids.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// How many runs.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(2..))]
        runs: u16,
        /// How many runs at once.
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
        jobs: u16,
    },
    /// Serve the mock service alone on loopback, with a control API, until interrupted: for
    /// developing an adapter by hand.
    Backend(convo_tck::standalone::BackendArgs),
}

fn rules_table() -> String {
    let mut out = format!(
        "{:<8} {:<7} {:<7} {:<12} RULE\n",
        "ID", "LEVEL", "PROFILE", "STATUS"
    );
    for r in CATALOG {
        let status = match (r.is_judged(), r.is_implemented()) {
            (false, _) => "not judged",
            (true, true) => "checked",
            (true, false) => "untested",
        };
        out.push_str(&format!(
            "{:<8} {:<7} {:<7} {:<12} {}\n",
            r.id, r.level, r.profile, status, r.summary
        ));
    }
    out
}

fn explain(id: RuleId) -> String {
    let r = id.rule();
    let names = |faults: &[Fault]| {
        if faults.is_empty() {
            "none yet".to_owned()
        } else {
            faults
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let mut out = format!(
        "{} ({} for profile {})\n  {}\n  source: \"{}\" section of the vendor's best-practice page\n  provoked by: {}\n",
        r.id, r.level, r.profile, r.summary, r.source, r.provoke,
    );
    if r.checks.is_empty() {
        out.push_str("  fails when: no check yet: the rule is reported UNTESTED\n");
    }
    for c in r.checks {
        out.push_str(&format!("  fails when: {}\n", c.fails_when));
    }
    if !r.sees.is_empty() {
        out.push_str(&format!("  a PASS means: {}\n", r.sees));
    }
    out.push_str(&format!(
        "  faults that must fail it: {}\n  if it fails, check: {}\n",
        names(r.faults),
        r.hint
    ));
    if let Some(w) = r.not_judged {
        out.push_str(&format!("  not judged: {w}\n"));
    }
    out
}

/// Writes `text` to stdout. A reader that went away (`EPIPE`: `convo-tck rules | head -1`) is not
/// an error: what it did not read is dropped and the command ends as if it had. Any other
/// error (a full disk) is returned, naming standard output.
fn emit(text: &str) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(anyhow::Error::new(e).context("cannot write to standard output"))
        }
        _ => Ok(()),
    }
}

/// Writes one line to stderr; stderr is the last resort, so its errors are ignored (eprintln!
/// would panic on them).
fn note(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(io::stderr().lock(), "{line}");
}

/// The report file, opened for writing before the suite runs so that a path that cannot be
/// written is reported at once. It is not truncated until the report is written: a run that
/// ends in an error leaves an existing file as it was (and removes one it created).
struct OutFile {
    path: PathBuf,
    file: File,
    created: bool,
}

impl OutFile {
    fn open(path: PathBuf) -> anyhow::Result<Self> {
        let created = std::fs::symlink_metadata(&path).is_err();
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot write the report to {}", shown(&path)))?;
        Ok(Self {
            path,
            file,
            created,
        })
    }

    fn write(mut self, text: &str) -> anyhow::Result<()> {
        // A device (`--out /dev/null`) cannot be truncated, and need not be.
        let regular = self.file.metadata().is_ok_and(|m| m.is_file());
        (if regular {
            self.file.set_len(0)
        } else {
            Ok(())
        })
        .and_then(|()| self.file.write_all(text.as_bytes()))
        .with_context(|| format!("cannot write the report to {}", shown(&self.path)))
    }

    fn abandon(self) {
        if self.created {
            drop(self.file);
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Where one report goes.
enum Sink {
    Stdout,
    File(OutFile),
}

/// The reports' destinations, opened before the suite runs.
struct Destinations(Vec<(ReportFormat, Sink)>);

impl Destinations {
    fn open(outputs: Outputs) -> anyhow::Result<Self> {
        let mut formats = outputs.formats;
        if formats.is_empty() {
            formats.push(Output {
                format: ReportFormat::Table,
                path: None,
            });
        }
        if let Some(dir) = &outputs.out {
            if dir.is_file() {
                anyhow::bail!(
                    "--out {} is a file: --out names a directory now (one file per format); to write one report to a file, use --format FORMAT=PATH",
                    shown(dir)
                );
            }
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the report directory {}", shown(dir)))?;
        }
        let to_stdout = formats
            .iter()
            .filter(|o| o.path.is_none() && outputs.out.is_none())
            .count();
        if to_stdout > 1 {
            anyhow::bail!(
                "{to_stdout} formats would go to standard output: give --out DIR, or a file for each (--format junit=junit.xml)"
            );
        }
        let mut planned: Vec<(ReportFormat, Option<PathBuf>)> = Vec::new();
        for o in formats {
            let path = o
                .path
                .or_else(|| outputs.out.as_ref().map(|d| d.join(o.format.file_name())));
            if let Some(p) = &path
                && let Some((other, _)) = planned.iter().find(|(_, q)| q.as_ref() == Some(p))
            {
                anyhow::bail!(
                    "{} would hold two reports ({other:?} and {:?}): give each format its own file",
                    shown(p),
                    o.format
                );
            }
            planned.push((o.format, path));
        }
        let mut opened = Self(Vec::new());
        for (format, path) in planned {
            let sink = match path {
                Some(p) => match OutFile::open(p) {
                    Ok(f) => Sink::File(f),
                    Err(e) => {
                        opened.abandon();
                        return Err(e);
                    }
                },
                None => Sink::Stdout,
            };
            opened.0.push((format, sink));
        }
        Ok(opened)
    }

    /// Writes every report; a note on stderr for each file.
    fn write(self, report: &Report) -> anyhow::Result<()> {
        let mut sinks = self.0.into_iter();
        while let Some((format, sink)) = sinks.next() {
            let text = format.render(report);
            match sink {
                Sink::File(out) => {
                    let path = shown(&out.path);
                    if let Err(e) = out.write(&text) {
                        // The reports not yet written are not left behind empty.
                        Self(sinks.collect()).abandon();
                        return Err(e);
                    }
                    let s = &report.summary;
                    note(format_args!(
                        "wrote {}: {} pass, {} fail, {} n/a, {} untested; exit {}",
                        path, s.pass, s.fail, s.not_applicable, s.untested, s.exit_code
                    ));
                }
                // A broken pipe here keeps the verdict's exit code: the verdict was reached.
                Sink::Stdout => emit(&text)?,
            }
        }
        Ok(())
    }

    /// Removes the files this run created: it produced no report.
    fn abandon(self) {
        for (_, sink) in self.0 {
            if let Sink::File(out) = sink {
                out.abandon();
            }
        }
    }
}

/// A progress bar on stderr when it is a terminal; hidden (and free) otherwise, so logs and CI
/// output stay clean.
fn progress_bar(prefix: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal as _;
    if !io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {wide_msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(prefix.to_owned());
    bar
}

/// Feeds a suite run's progress to `bar`: one tick per scenario, each failing scenario printed
/// above the bar as it ends.
fn suite_feed(bar: &indicatif::ProgressBar) -> convo_tck::scenario::ProgressFeed {
    use convo_tck::scenario::SuiteProgress;
    let bar = bar.clone();
    convo_tck::scenario::ProgressFeed::new(move |p| match p {
        SuiteProgress::Selected(n) => bar.set_length(n as u64),
        SuiteProgress::Ended {
            feature,
            scenario,
            failed,
        } => {
            if failed {
                bar.println(format!("failed: {feature}: {scenario}"));
            }
            bar.set_message(scenario.to_owned());
            bar.inc(1);
        }
    })
}

/// The adapter a `run` or `properties` command tests, with the arguments a replay command
/// repeats to get the same client.
fn client(
    command: Option<&String>,
    profile: Profile,
    explicit_profile: bool,
    faults: &[Fault],
    hello_timeout_ms: Option<u64>,
) -> anyhow::Result<(Arc<dyn convo_tck::Adapter>, Vec<String>)> {
    let mut args = Vec::new();
    if let Some(line) = command {
        args.extend(["--adapter".to_owned(), line.clone()]);
    }
    if command.is_none() || explicit_profile {
        args.extend(["--profile".to_owned(), profile.to_string()]);
    }
    for f in faults {
        args.extend(["--fault".to_owned(), f.name().to_owned()]);
    }
    let adapter: Arc<dyn convo_tck::Adapter> = match command {
        Some(line) => {
            if !faults.is_empty() {
                anyhow::bail!(
                    "--fault plants bugs in the reference client; it cannot be combined with an adapter"
                );
            }
            let mut limits = ProcessLimits::default();
            if let Some(ms) = hello_timeout_ms {
                limits.hello_timeout = std::time::Duration::from_millis(ms);
            }
            Arc::new(ProcessAdapter::new(line)?.with_limits(limits))
        }
        None => Arc::new(ReferenceAdapter::with_faults(
            profile,
            faults.iter().copied().collect::<FaultSet>(),
        )),
    };
    Ok((adapter, args))
}

/// `convo-tck properties`: runs outside the async runtime (each case drives its own).
fn properties(args: PropertiesArgs) -> anyhow::Result<ExitCode> {
    use convo_tck::properties::{self as props, CampaignResult, Counterexample};
    let PropertiesArgs {
        profile,
        faults,
        adapter,
        rules,
        campaign,
        cases,
        max_steps,
        seed,
        partition,
        replay,
    } = args;
    let config = Config::load()?;
    let command = adapter.or(config.adapter.command.clone());
    let profile = profile
        .or(config.adapter.profile.filter(|_| command.is_some()))
        .unwrap_or(Profile::Mobile);
    // The profile decides the invariants: a replay names it, whatever decided it here.
    let (adapter, mut client_args) = client(
        command.as_ref(),
        profile,
        true,
        &faults,
        config.adapter.hello_timeout_ms,
    )?;
    let judged: Vec<RuleId> = if rules.is_empty() {
        CATALOG
            .iter()
            .filter(|r| {
                r.is_implemented() && r.level == rules::Level::Must && r.profile.requires(profile)
            })
            .map(|r| r.id)
            .collect()
    } else {
        for r in &rules {
            client_args.extend(["--rule".to_owned(), r.as_str().to_owned()]);
        }
        rules
    };
    let replay_command = |c: &Counterexample| {
        let mut words = vec!["convo-tck".to_owned(), "properties".to_owned()];
        words.extend(client_args.iter().cloned());
        words.extend(["--replay".to_owned(), c.to_json()]);
        report::shell_words(&words)
    };
    let mut text = format!(
        "property campaigns against {}, profile {profile}; invariants: {}\n",
        adapter.name(),
        judged
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(json) = replay {
        let case: Counterexample = serde_json::from_str(&json).map_err(|e| {
            anyhow::anyhow!(
                "--replay `{}` is not a counterexample (the JSON a violation prints): {e}",
                elide(&json)
            )
        })?;
        let code = match case.replay(adapter, &judged) {
            Ok(()) => {
                text.push_str(&format!("replay of {} step(s): held\n", case.len()));
                0
            }
            Err(m) if m.contains("harness error") => {
                text.push_str(&format!("replay: harness error: {m}\n"));
                2
            }
            Err(m) => {
                text.push_str(&format!("replay of {} step(s): VIOLATED {m}\n", case.len()));
                1
            }
        };
        emit(&text)?;
        return Ok(ExitCode::from(code));
    }
    let (index, count) = partition.map_or((1, 1), |p| (p.index, p.count));
    let (share, shard_seed) = props::shard(cases, seed, index, count);
    if let Some(p) = partition {
        text.push_str(&format!(
            "shard {p}: {share} of {cases} case(s) per campaign, from seed {shard_seed}\n"
        ));
    }
    emit(&text)?;
    let mut code = 0u8;
    let kinds: &[(&str, CampaignChoice)] = &[
        ("lifecycle", CampaignChoice::Lifecycle),
        ("lists", CampaignChoice::Lists),
    ];
    for (name, kind) in kinds {
        if campaign != CampaignChoice::All && campaign != *kind {
            continue;
        }
        if share == 0 {
            emit(&format!("{name}: no case in this shard\n"))?;
            continue;
        }
        let bar = progress_bar(name);
        bar.set_length(u64::from(share));
        let feed = {
            let bar = bar.clone();
            let share = u64::from(share);
            props::Progress::new(move |n| {
                if n > share {
                    bar.set_message(format!("shrinking a violation: step {}", n - share));
                } else {
                    bar.set_position(n);
                }
            })
        };
        let result: CampaignResult<Counterexample> = match kind {
            CampaignChoice::Lifecycle => {
                let c = props::Campaign {
                    cases: share,
                    max_steps: usize::try_from(max_steps).unwrap_or(30),
                    seed: shard_seed,
                    rules: judged.clone(),
                    progress: Some(feed),
                    ..props::Campaign::default()
                };
                props::run_campaign(adapter.clone(), &c).map(Counterexample::Lifecycle)
            }
            _ => {
                let c = props::ListCampaign {
                    cases: share,
                    seed: shard_seed,
                    rules: judged.clone(),
                    progress: Some(feed),
                    ..props::ListCampaign::default()
                };
                props::lists::run_list_campaign_with(adapter.clone(), &c).map(Counterexample::List)
            }
        };
        bar.finish_and_clear();
        let line = match result {
            CampaignResult::Held { cases } => {
                format!("{name}: {cases} case(s), every invariant held\n")
            }
            CampaignResult::Error { message } => {
                code = 2;
                format!("{name}: harness error: {message}\n")
            }
            CampaignResult::Violated {
                counterexample,
                message,
            } => {
                code = code.max(1);
                format!(
                    "{name}: VIOLATED {message}\n  shrunk to {} step(s): {}\n  replay: {}\n",
                    counterexample.len(),
                    counterexample.to_json(),
                    replay_command(&counterexample)
                )
            }
        };
        emit(&line)?;
    }
    Ok(ExitCode::from(code))
}

/// A path as an error message quotes it.
fn shown(path: &Path) -> String {
    elide(&path.display().to_string()).into_owned()
}

async fn run(cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Run {
            profile,
            faults,
            tags,
            rules,
            scenario,
            partition,
            seed,
            outputs,
            progress,
            adapter,
            jobs,
            timeout_ms,
            hello_timeout_ms,
        } => {
            let config = Config::load()?;
            let command = adapter.or(config.adapter.command.clone());
            let explicit_profile = profile;
            // The flag, then the file (for an adapter), then mobile.
            let profile = profile
                .or(config.adapter.profile.filter(|_| command.is_some()))
                .unwrap_or(Profile::Mobile);
            let mut defaults = SuiteOptions::default();
            if let Some(ms) = timeout_ms.or(config.adapter.timeout_ms) {
                defaults.safety = std::time::Duration::from_millis(ms);
            }
            let (adapter, client_args) = client(
                command.as_ref(),
                profile,
                explicit_profile.is_some(),
                &faults,
                hello_timeout_ms.or(config.adapter.hello_timeout_ms),
            )?;
            if command.is_some() {
                defaults.concurrency = 1;
            }
            // Every report file is opened (or refused) before the suite runs.
            let out = Destinations::open(outputs)?;
            // The file's `jobs` is about the adapter process; the flag applies to any run.
            if let Some(j) = jobs.or(config.adapter.jobs.filter(|_| command.is_some())) {
                defaults.concurrency = usize::from(j);
            }
            // cucumber's own lines with --progress; else a bar on a terminal.
            let bar = if progress {
                indicatif::ProgressBar::hidden()
            } else {
                progress_bar("scenarios")
            };
            let opts = SuiteOptions {
                tags,
                rules,
                seed,
                progress,
                profile,
                scenario,
                partition,
                client_args,
                on_progress: Some(suite_feed(&bar)),
                ..defaults
            };
            let suite = run_suite(adapter, &opts).await;
            bar.finish_and_clear();
            let suite = match suite {
                Ok(s) => s,
                Err(e) => {
                    note(format_args!("error: {e}"));
                    out.abandon();
                    return Ok(ExitCode::from(2));
                }
            };
            let report = Report::build(&suite);
            out.write(&report)?;
            Ok(ExitCode::from(report.exit_code() as u8))
        }
        Cmd::Merge { reports, outputs } => {
            let out = Destinations::open(outputs)?;
            let mut inputs = Vec::new();
            for path in &reports {
                match std::fs::read_to_string(path) {
                    Ok(text) => inputs.push((shown(path), text)),
                    Err(e) => {
                        out.abandon();
                        return Err(anyhow::Error::new(e)
                            .context(format!("cannot read the report {}", shown(path))));
                    }
                }
            }
            let report = match report::merge(&inputs) {
                Ok(r) => r,
                Err(e) => {
                    out.abandon();
                    return Err(e.into());
                }
            };
            out.write(&report)?;
            Ok(ExitCode::from(report.exit_code() as u8))
        }
        Cmd::Rules { format } => {
            match format {
                Format::Table => emit(&rules_table())?,
                Format::Json => {
                    // The catalog, with the checks and the planted bugs that prove each rule.
                    emit(&format!("{}\n", serde_json::to_string_pretty(CATALOG)?))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Explain { rule } => {
            emit(&explain(rule))?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Stress {
            profile,
            faults,
            rules,
            seed,
            runs,
            jobs,
        } => {
            let faults: FaultSet = faults.into_iter().collect();
            let make = || -> Arc<dyn convo_tck::Adapter> {
                Arc::new(ReferenceAdapter::with_faults(profile, faults.clone()))
            };
            let opts = SuiteOptions {
                rules,
                seed,
                profile,
                ..SuiteOptions::default()
            };
            let stress =
                match convo_tck::stress::repeat(make, &opts, runs.into(), jobs.into()).await {
                    Ok(s) => s,
                    Err(e) => {
                        note(format_args!("error: {e}"));
                        return Ok(ExitCode::from(2));
                    }
                };
            let mut text = format!(
                "{} runs, {} at once, in {:.1} s: {} outcome(s)\n",
                stress.runs,
                stress.jobs,
                stress.wall.as_secs_f64(),
                stress.outcomes.len()
            );
            for (i, o) in stress.outcomes.iter().enumerate() {
                text.push_str(&format!("  outcome {}: {} run(s)\n", i + 1, o.runs.len()));
            }
            for line in stress.difference() {
                text.push_str(&format!("{line}\n"));
            }
            emit(&text)?;
            Ok(if stress.is_deterministic() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Cmd::Properties(_) => unreachable!("handled before the runtime runs commands"),
        Cmd::ReferenceAdapter { profile, faults } => {
            let adapter = ReferenceAdapter::with_faults(profile, faults.into_iter().collect());
            convo_tck::adapter::stdio::serve(&adapter).await?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Faults => {
            let mut text = String::new();
            for f in Fault::ALL {
                let targets: Vec<_> = rules::targets_of(*f).iter().map(|r| r.as_str()).collect();
                text.push_str(&format!(
                    "{:<30} fails {:<8} {}\n",
                    f.name(),
                    targets.join(","),
                    f.description()
                ));
            }
            emit(&text)?;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Backend(args) => {
            convo_tck::standalone::run(args).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The log writer: each formatted event is buffered whole, then written to stderr with every
/// token-shaped value replaced by its fingerprint ([`convo_tck::scrub`]), so no log line
/// carries a credential whoever emitted it.
struct ScrubbedStderr;

/// One event's formatted text, scrubbed and written when the formatter is done with it.
struct ScrubbedLine(Vec<u8>);

impl io::Write for ScrubbedLine {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ScrubbedLine {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let _ = write_scrubbed(&self.0, &mut io::stderr().lock());
    }
}

fn write_scrubbed(event: &[u8], to: &mut impl io::Write) -> io::Result<()> {
    to.write_all(convo_tck::scrub(&String::from_utf8_lossy(event)).as_bytes())
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for ScrubbedStderr {
    type Writer = ScrubbedLine;

    fn make_writer(&'a self) -> Self::Writer {
        ScrubbedLine(Vec::new())
    }
}

/// Logs of the harness's own diagnostics on stderr, filtered by `RUST_LOG` (warnings only when
/// it is unset; a directive that does not parse is ignored).
fn install_logs() {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::filter::LevelFilter;
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::WARN.into())
        .from_env_lossy();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(ScrubbedStderr)
        .with_ansi(false)
        .try_init();
}

/// The most a clap error message may take; past it, it is cut.
const MAX_USAGE_ERROR: usize = 2048;

/// Reports a command line clap refused (exit 2) or a `--help`/`--version` (exit 0). Clap quotes
/// the offending value whole; a long argument is elided in its message.
fn usage(e: clap::Error) -> ExitCode {
    let code = ExitCode::from(e.exit_code().clamp(0, 255) as u8);
    let long: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .flat_map(|a| {
            let value = a.split_once('=').map(|(_, v)| v.to_owned());
            [Some(a), value]
        })
        .flatten()
        .filter(|a| a.chars().count() > QUOTE_CHARS)
        .collect();
    if !e.use_stderr() || long.is_empty() {
        // Help, version, or an error quoting only short arguments: clap's own (colored) output;
        // a closed stdout or stderr is no reason to fail.
        let _ = e.print();
        return code;
    }
    let mut text = e.render().to_string();
    for a in &long {
        text = text.replace(a.as_str(), &elide(a));
    }
    if let Some((cut, _)) = text.char_indices().nth(MAX_USAGE_ERROR) {
        text.truncate(cut);
        text.push_str("…\n");
    }
    let _ = io::stderr().lock().write_all(text.as_bytes());
    code
}

/// `./convo-tck.toml`: what a vendor's CI would otherwise repeat on every command line.
///
/// ```toml
/// [adapter]
/// command = "node examples/adapters/node/adapter.js"
/// profile = "js"          # the profile to judge by if the adapter never says hello
/// jobs = 2                # scenarios at once
/// timeout_ms = 10000      # real-time bound on every wait for the adapter
/// hello_timeout_ms = 10000
/// ```
///
/// Command-line flags win over the file.
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    adapter: AdapterConfig,
}

#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AdapterConfig {
    command: Option<String>,
    profile: Option<Profile>,
    jobs: Option<u16>,
    timeout_ms: Option<u64>,
    hello_timeout_ms: Option<u64>,
}

impl Config {
    const FILE: &'static str = "convo-tck.toml";

    fn load() -> anyhow::Result<Self> {
        let text = match std::fs::read_to_string(Self::FILE) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("cannot read {}", Self::FILE)));
            }
        };
        let config: Self = toml::from_str(&text)
            .with_context(|| format!("{} is not a valid configuration", Self::FILE))?;
        config.adapter.check()?;
        Ok(config)
    }
}

impl AdapterConfig {
    /// The same bounds as the flags'.
    fn check(&self) -> anyhow::Result<()> {
        let within = |name: &str, v: Option<u64>, lo: u64, hi: u64| match v {
            Some(v) if !(lo..=hi).contains(&v) => Err(anyhow::anyhow!(
                "{}: [adapter] {name} = {v} is out of range: {lo}..={hi}",
                Config::FILE
            )),
            _ => Ok(()),
        };
        within("jobs", self.jobs.map(u64::from), 1, 256)?;
        within("timeout_ms", self.timeout_ms, 10, 3_600_000)?;
        within("hello_timeout_ms", self.hello_timeout_ms, 10, 3_600_000)?;
        if self.command.as_deref().is_some_and(|c| c.trim().is_empty()) {
            anyhow::bail!("{}: [adapter] command is empty", Config::FILE);
        }
        Ok(())
    }
}

/// Kills every adapter process group if the run is interrupted (SIGINT, SIGTERM), so no adapter
/// outlives the harness.
fn reap_adapters_on_interrupt(runtime: &tokio::runtime::Runtime) {
    runtime.spawn(async {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            let code = tokio::select! {
                _ = int.recv() => 130,
                _ = term.recv() => 143,
            };
            convo_tck::adapter::process::terminate_all();
            note(format_args!(
                "interrupted: every adapter process was stopped"
            ));
            std::process::exit(code);
        }
    });
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage(e),
    };
    install_logs();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            note(format_args!("error: cannot start the async runtime: {e}"));
            return ExitCode::from(2);
        }
    };
    // Only runs start adapter processes; `backend` handles its signals itself.
    if matches!(
        cli.command,
        Cmd::Run { .. } | Cmd::Stress { .. } | Cmd::Properties { .. }
    ) {
        reap_adapters_on_interrupt(&runtime);
    }
    // Property campaigns drive their own runtimes, case by case.
    if let Cmd::Properties(args) = cli.command {
        return match properties(args) {
            Ok(code) => code,
            Err(e) => {
                note(format_args!("error: {e:#}"));
                ExitCode::from(2)
            }
        };
    }
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            note(format_args!("error: {e:#}"));
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_carry_no_token() {
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlc2lnbmF0dXJl";
        let event = format!("WARN convo_tck: refused token={jwt} url=/v1/x?Token=abc123secret\n");
        let mut out = Vec::new();
        write_scrubbed(event.as_bytes(), &mut out).unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(!out.contains("eyJ"), "{out}");
        assert!(!out.contains("abc123secret"), "{out}");
        assert!(
            out.starts_with("WARN convo_tck: refused token=tok:"),
            "{out}"
        );
    }
}
