//! The `convo-tck` command line: `run`, `rules`, `explain`, `faults`. Thin: it parses arguments,
//! calls the library and maps the report to an exit code (0 pass, 1 MUST failure, 2 error).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use convo_tck::Profile;
use convo_tck::reference::{Fault, FaultSet, ReferenceAdapter};
use convo_tck::report::{self, Report};
use convo_tck::rules::{self, CATALOG, RuleId};
use convo_tck::scenario::{SuiteOptions, run_suite};

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

#[derive(Subcommand)]
enum Cmd {
    /// Run the suite (against the built-in reference client) and print the compliance matrix.
    Run {
        /// Which profile's rules are required: js or mobile.
        #[arg(long, default_value = "mobile")]
        profile: Profile,
        /// Switch on a planted bug of the reference client (repeatable); see `convo-tck faults`.
        #[arg(long = "fault")]
        faults: Vec<Fault>,
        /// Cucumber tag expression selecting scenarios, e.g. "@UPD-1 or @SYNC-2".
        #[arg(long)]
        tags: Option<String>,
        /// Only scenarios of this rule (repeatable).
        #[arg(long = "rule")]
        rules: Vec<RuleId>,
        /// Seed for sids and token secrets.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output format.
        #[arg(long, value_enum, default_value = "table")]
        format: Format,
        /// Write the report here instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Show cucumber's scenario progress on stderr.
        #[arg(long)]
        progress: bool,
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

async fn run(cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Run {
            profile,
            faults,
            tags,
            rules,
            seed,
            format,
            out,
            progress,
        } => {
            let adapter = Arc::new(ReferenceAdapter::with_faults(
                profile,
                faults.into_iter().collect::<FaultSet>(),
            ));
            let opts = SuiteOptions {
                tags,
                rules,
                seed,
                progress,
                profile,
                ..SuiteOptions::default()
            };
            let suite = match run_suite(adapter, &opts).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(2));
                }
            };
            let report = Report::build(&suite);
            let text = match format {
                Format::Table => report::table::render(&report),
                Format::Json => report::json::to_string(&report),
            };
            match out {
                Some(path) => {
                    std::fs::write(&path, text)
                        .with_context(|| format!("writing {}", path.display()))?;
                    let s = &report.summary;
                    eprintln!(
                        "wrote {}: {} pass, {} fail, {} n/a, {} untested; exit {}",
                        path.display(),
                        s.pass,
                        s.fail,
                        s.not_applicable,
                        s.untested,
                        s.exit_code
                    );
                }
                None => print!("{text}"),
            }
            Ok(ExitCode::from(report.exit_code() as u8))
        }
        Cmd::Rules { format } => {
            match format {
                Format::Table => print!("{}", rules_table()),
                Format::Json => {
                    // The catalog, with the checks and the planted bugs that prove each rule.
                    println!("{}", serde_json::to_string_pretty(CATALOG)?);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Explain { rule } => {
            print!("{}", explain(rule));
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Faults => {
            for f in Fault::ALL {
                let targets: Vec<_> = rules::targets_of(*f).iter().map(|r| r.as_str()).collect();
                println!(
                    "{:<30} fails {:<8} {}",
                    f.name(),
                    targets.join(","),
                    f.description()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
