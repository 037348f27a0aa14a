//! The command line: argument parsing, dispatch, printing and exit codes.
//!
//! This is the only module that writes to stdout or stderr. Each command is
//! a thin layer over the library: load the config, call the planner or the
//! renderer, print the result.

mod check;
mod choices;
mod generate;
mod history;
pub mod import;
mod inbox;
mod init;
mod limits;
mod place;
mod plan;
mod preview;
mod run;
mod send;
mod state;
mod suppressions;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::clock::SystemClock;
use crate::config::Environment;
use crate::diagnostics::{Chain, Diagnostics};
use crate::outbox::{Outbox, OutboxError};
use crate::resolve::Calendars;
use crate::scheduler::Loaded;

/// herald: reminders and circulars for the focal points of a process.
#[derive(Debug, Parser)]
#[command(name = "herald", version, about, long_about = None)]
pub struct Cli {
    /// The configuration directory.
    #[arg(
        long,
        global = true,
        env = "HERALD_CONFIG",
        default_value = "/etc/herald",
        value_name = "DIR"
    )]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the whole configuration and the templates; print every problem, exit 1 if any.
    Check,
    /// Show what will be sent, when and to whom.
    Plan {
        /// Only sends due at or after this time (a date, an RFC 3339 time or "now"). Default: now.
        #[arg(long, value_name = "T")]
        from: Option<String>,
        /// Only sends due before this time.
        #[arg(long, value_name = "T")]
        until: Option<String>,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the exact message (RFC 5322) a recipient will get.
    Preview {
        /// The event of a reminder.
        #[arg(
            long,
            value_name = "ID",
            required_unless_present_any = ["letter", "digest"],
            conflicts_with = "letter"
        )]
        event: Option<String>,
        /// The lead time of the reminder (default: the first one the recipient gets).
        #[arg(long, value_name = "D", requires = "event")]
        lead: Option<String>,
        /// A letter (circular).
        #[arg(long, value_name = "ID")]
        letter: Option<String>,
        /// Instead of a reminder, the notice sent when the event changes
        /// ("update") or is cancelled ("cancellation").
        #[arg(long, value_name = "KIND", requires = "event", conflicts_with = "lead")]
        notice: Option<String>,
        /// The operator's daily digest as it would go now (to an address
        /// of herald.toml's `[digest]` `to`).
        #[arg(long, conflicts_with_all = ["event", "letter"])]
        digest: bool,
        /// The recipient's address.
        #[arg(long, value_name = "EMAIL")]
        to: String,
    },
    /// Run the daemon: send every planned mail at its time, exactly once.
    Run {
        /// The state directory (the outbox), instead of herald.toml's.
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// Rehearsal: start the clock at this instant instead of now.
        #[arg(long, value_name = "T")]
        rehearse_from: Option<String>,
        /// Rehearsal: run the clock this many times faster than real time.
        #[arg(long, value_name = "N", default_value_t = 1.0)]
        speed: f64,
        /// Rehearsal: jump from one send to the next instead of waiting (needs --until).
        #[arg(long)]
        fast_forward: bool,
        /// Stop once the clock passes this instant and nothing before it is due.
        #[arg(long, value_name = "T")]
        until: Option<String>,
        /// Rehearsal: deliver every mail to this address instead of its recipient.
        #[arg(long, value_name = "EMAIL")]
        redirect_to: Option<String>,
        /// Rehearsal over SMTP without --redirect-to: real people will receive the mail.
        #[arg(long, conflicts_with = "redirect_to")]
        real_recipients: bool,
        /// Log JSON lines on stderr instead of text (or the journal, under systemd).
        #[arg(long)]
        log_json: bool,
        /// Do not reload when the configuration directory changes (SIGHUP still reloads).
        #[arg(long)]
        no_watch: bool,
    },
    /// Show what was sent, failed, skipped, cancelled or suppressed, and why.
    History {
        /// Only sends in this state (planned, sending, sent, failed, skipped, cancelled, suppressed).
        #[arg(long, value_name = "STATE")]
        state: Option<String>,
        /// Only the sends of this event or letter.
        #[arg(long, value_name = "ID")]
        event: Option<String>,
        /// Only the sends to this address.
        #[arg(long, value_name = "EMAIL")]
        to: Option<String>,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// The state directory whose SQLite outbox to use, instead of herald.toml's (it wins over a database that herald.toml names).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Plan failed sends again (one by key, or all of them).
    Retry {
        /// The key of the send (from `herald history --json`).
        #[arg(required_unless_present = "all_failed", conflicts_with = "all_failed")]
        key: Option<String>,
        /// Every failed send.
        #[arg(long)]
        all_failed: bool,
        /// The state directory whose SQLite outbox to use, instead of herald.toml's (it wins over a database that herald.toml names).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// List the addresses herald does not send to (bounces, unsubscribes), or lift one's suppressions.
    #[command(args_conflicts_with_subcommands = true)]
    Suppressions {
        #[command(subcommand)]
        action: Option<SuppressionsAction>,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// The state directory whose SQLite outbox to use, instead of herald.toml's (it wins over a database that herald.toml names).
        #[arg(long, value_name = "DIR", global = true)]
        state_dir: Option<PathBuf>,
    },
    /// List the languages and time zones readers chose for themselves (over the configuration).
    Overrides {
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// The state directory whose SQLite outbox to use, instead of herald.toml's (it wins over a database that herald.toml names).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// List readers' requests for the operator (a successor named), or settle one.
    #[command(args_conflicts_with_subcommands = true)]
    Requests {
        #[command(subcommand)]
        action: Option<RequestsAction>,
        /// The settled requests too.
        #[arg(long)]
        all: bool,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
        /// The state directory whose SQLite outbox to use, instead of herald.toml's (it wins over a database that herald.toml names).
        #[arg(long, value_name = "DIR", global = true)]
        state_dir: Option<PathBuf>,
    },
    /// Send a letter now to every focal point of its lists, one message each.
    Send {
        /// The letter's id.
        #[arg(long, value_name = "ID")]
        letter: String,
        /// Show who would get it, and the subjects, without sending.
        #[arg(long)]
        dry_run: bool,
        /// The state directory whose SQLite outbox to use, instead of herald.toml's (it wins over a database that herald.toml names).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// The process's mailbox: what comes back to herald's mail.
    Inbox {
        #[command(subcommand)]
        command: InboxCommand,
    },
    /// Move the state elsewhere: copy an SQLite outbox into a PostgreSQL database.
    State {
        #[command(subcommand)]
        command: StateCommand,
    },
    /// Read the roadmap table of a circulated letter and print it as roadmap TOML.
    ImportRoadmap {
        /// The letter, as text (tab-separated table rows).
        file: PathBuf,
        /// The time zone of events that name no venue.
        #[arg(long, value_name = "ZONE")]
        time_zone: Option<String>,
        /// The venue id of events that name none (one of the venues of herald.toml).
        #[arg(long, value_name = "ID")]
        venue: Option<String>,
        /// The year of the first row, when the letter carries no date.
        #[arg(long, value_name = "YEAR")]
        year: Option<i16>,
        /// The roadmap's id (default: made from the letter's heading and date).
        #[arg(long, value_name = "ID")]
        id: Option<String>,
        /// A list whose focal points hear of the roadmap (repeat for several).
        #[arg(long = "list", value_name = "ID")]
        lists: Vec<String>,
        /// Import the rows that can be read, leaving out (and reporting) the others.
        #[arg(long)]
        skip_bad_rows: bool,
    },
    /// Write a new configuration directory that `herald check` accepts and
    /// that sends nothing until focal points and roadmaps are added.
    Init {
        /// The directory to create; it must not exist or be empty.
        dir: PathBuf,
        /// Import the roadmap of this letter (as `herald import-roadmap` does) into roadmaps/.
        #[arg(long, value_name = "FILE")]
        from_letter: Option<PathBuf>,
        /// The sender of the mail (`from` in herald.toml).
        #[arg(long, value_name = "EMAIL", default_value = "herald@localhost")]
        sender: String,
        /// The templates the configuration uses.
        #[arg(long, value_name = "DIR", default_value = init::PACKAGE_TEMPLATES)]
        templates: PathBuf,
    },
    /// Write the manual pages or the shell completions into DIR (for packaging).
    #[command(hide = true)]
    Generate {
        /// What to write.
        what: Generated,
        /// Where to write it.
        dir: PathBuf,
    },
}

/// The subcommands of `herald inbox`.
#[derive(Debug, Subcommand)]
pub enum InboxCommand {
    /// Say what each message file is (bounce, delay, unsubscribe,
    /// auto-reply or other), with the addresses, status and reason, and
    /// the send it is about when the outbox knows it.
    Classify {
        /// The messages, one file each (RFC 5322, as a maildir holds them).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Print one JSON object per line instead of a block per file.
        #[arg(long)]
        json: bool,
        /// The state directory whose SQLite outbox names the sends, instead of herald.toml's (it wins over a database that herald.toml names).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
}

/// The subcommands of `herald state`.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Copy everything the SQLite outbox of a state directory holds into an
    /// empty PostgreSQL database (for `[state]` `database`), and check the
    /// copy table by table. Stop the daemon first: the state directory is
    /// locked while copying, and the SQLite outbox is left as it was.
    Migrate {
        /// The outbox to copy: sqlite:PATH, PATH being the state directory or its outbox.sqlite3.
        #[arg(long, value_name = "sqlite:PATH")]
        from: String,
        /// The database to copy into, empty: postgres://USER@HOST:PORT/DATABASE (no password in it).
        #[arg(long, value_name = "URL")]
        to: String,
        /// The file holding the database user's password (none: connect without one).
        #[arg(long, value_name = "FILE", env = "HERALD_DATABASE_PASSWORD_FILE")]
        password_file: Option<PathBuf>,
        /// CA certificates for the server's TLS certificate (with ?sslmode=require in the URL).
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
    },
}

/// What `herald generate` writes.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Generated {
    /// herald(1) and a page per subcommand in DIR/man1, herald.toml(5) in DIR/man5.
    Man,
    /// Completions for bash, zsh and fish.
    Completions,
}

impl std::fmt::Display for Generated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Generated::Man => "manual pages",
            Generated::Completions => "shell completions",
        })
    }
}

/// What `herald suppressions` does besides listing.
#[derive(Debug, Subcommand)]
pub enum SuppressionsAction {
    /// Lift every suppression of an address (it works again, or its focal
    /// point asked to hear from herald again) and plan its sends still to
    /// come again.
    Remove {
        /// The address.
        email: String,
    },
}

/// What `herald requests` does besides listing.
#[derive(Debug, Subcommand)]
pub enum RequestsAction {
    /// Mark a request settled: the operator made the change by hand.
    Settle {
        /// The request's id (from `herald requests`).
        id: i64,
    },
}

/// Runs herald with the given arguments and returns the exit code.
pub fn run(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go to stdout with success; usage errors to stderr.
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let clock = SystemClock;
    let result = match &cli.command {
        Command::Check => check::run(&cli.config, &clock),
        Command::Plan { from, until, json } => {
            plan::run(&cli.config, &clock, from.as_deref(), until.as_deref(), *json)
        }
        Command::Preview { digest: true, to, .. } => preview::digest(&cli.config, &clock, to),
        Command::Preview {
            event,
            lead,
            letter,
            notice,
            digest: false,
            to,
        } => preview::run(
            &cli.config,
            &clock,
            &preview::Args {
                event: event.as_deref(),
                lead: lead.as_deref(),
                letter: letter.as_deref(),
                notice: notice.as_deref(),
                to,
            },
        ),
        Command::Run {
            state_dir,
            rehearse_from,
            speed,
            fast_forward,
            until,
            redirect_to,
            real_recipients,
            log_json,
            no_watch,
        } => run::run(
            &cli.config,
            &run::Args {
                state_dir: state_dir.as_deref(),
                rehearse_from: rehearse_from.as_deref(),
                speed: *speed,
                fast_forward: *fast_forward,
                until: until.as_deref(),
                redirect_to: redirect_to.as_deref(),
                real_recipients: *real_recipients,
                log_json: *log_json,
                watch: !*no_watch,
            },
        ),
        Command::History {
            state,
            event,
            to,
            json,
            state_dir,
        } => history::history(
            &cli.config,
            state_dir.as_deref(),
            &history::Filter {
                state: state.as_deref(),
                event: event.as_deref(),
                to: to.as_deref(),
            },
            *json,
        ),
        Command::Retry {
            key,
            all_failed: _,
            state_dir,
        } => history::retry(&cli.config, state_dir.as_deref(), key.as_deref(), &clock),
        Command::Suppressions {
            action,
            json,
            state_dir,
        } => match action {
            None => suppressions::list(&cli.config, state_dir.as_deref(), *json),
            Some(SuppressionsAction::Remove { email }) => {
                suppressions::remove(&cli.config, state_dir.as_deref(), email, &clock)
            }
        },
        Command::Overrides { json, state_dir } => {
            choices::overrides(&cli.config, state_dir.as_deref(), *json)
        }
        Command::Requests {
            action,
            all,
            json,
            state_dir,
        } => match action {
            None => choices::requests(&cli.config, state_dir.as_deref(), *all, *json),
            Some(RequestsAction::Settle { id }) => {
                choices::settle(&cli.config, state_dir.as_deref(), *id, &clock)
            }
        },
        Command::Send {
            letter,
            dry_run,
            state_dir,
        } => send::run(
            &cli.config,
            state_dir.as_deref(),
            letter,
            *dry_run,
            std::sync::Arc::new(SystemClock),
        ),
        Command::Inbox {
            command:
                InboxCommand::Classify {
                    files,
                    json,
                    state_dir,
                },
        } => inbox::classify_files(&cli.config, state_dir.as_deref(), files, *json),
        Command::State {
            command:
                StateCommand::Migrate {
                    from,
                    to,
                    password_file,
                    ca_file,
                },
        } => state::migrate(&state::Args {
            from,
            to,
            password_file: password_file.as_deref(),
            ca_file: ca_file.as_deref(),
        }),
        Command::ImportRoadmap {
            file,
            time_zone,
            venue,
            year,
            id,
            lists,
            skip_bad_rows,
        } => import::run(
            &cli.config,
            &import::Args {
                file,
                time_zone: time_zone.as_deref(),
                venue: venue.as_deref(),
                year: *year,
                id: id.as_deref(),
                lists,
                skip_bad_rows: *skip_bad_rows,
            },
        ),
        Command::Init {
            dir,
            from_letter,
            sender,
            templates,
        } => init::run(&init::Args {
            dir,
            from_letter: from_letter.as_deref(),
            sender,
            templates,
        }),
        Command::Generate { what, dir } => generate::run(*what, dir),
    };
    match result {
        Ok(code) => code,
        // A reader that stops early (`herald plan | head`) is not an error.
        Err(err)
            if err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("herald: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the config and compiles and checks the templates; on failure
/// prints every problem and gives the exit code to return.
/// Loads and checks the whole configuration as the daemon does, every event
/// included; prints every problem and gives the exit code if there is one.
fn load(config: &std::path::Path) -> Result<Loaded, ExitCode> {
    Loaded::load(config, &Environment::from_process(), None).map_err(|d| print_problems(config, &d))
}

/// `loaded` with the readers' overrides kept in `outbox` laid over it, as
/// the daemon plans and renders with them; without them, after a warning,
/// when they cannot be read. An override of an address no longer in the
/// configuration is left alone: the daemon removes it at its next load.
fn with_overrides(loaded: Loaded, outbox: Option<&dyn Outbox>) -> Loaded {
    let Some(outbox) = outbox else {
        return loaded;
    };
    match outbox.overrides() {
        Ok(overrides) if overrides.is_empty() => loaded,
        Ok(overrides) => {
            let (loaded, ignored) = loaded.with_overrides(&overrides);
            for ignored in ignored {
                if !matches!(ignored, crate::scheduler::Ignored::Gone(_)) {
                    eprintln!("herald: warning: {ignored}");
                }
            }
            loaded
        }
        Err(err) => {
            let place = place::Place::of(&loaded.delivery);
            warn_unread(&place, "readers' overrides are not applied", &err);
            loaded
        }
    }
}

/// The outbox at `place`: the SQLite file, if herald has run with that
/// state directory, or the database of `[state]`; a command that only
/// shows what it holds (`for_what`) goes on without it, after a warning,
/// when it cannot be read (often: not the user `herald`, or the database
/// is not reachable).
fn existing_outbox(place: &place::Place, for_what: &str) -> Option<Box<dyn Outbox>> {
    if !place.exists() {
        return None;
    }
    place
        .open()
        .map_err(|err| warn_unread(place, for_what, &err))
        .ok()
}

/// What calendars were told of each event, from `outbox` (that at
/// `place`) when there is one; none (every SEQUENCE 0) otherwise.
fn calendars(outbox: Option<&dyn Outbox>, place: &place::Place) -> Calendars {
    let Some(outbox) = outbox else {
        return Calendars::default();
    };
    match outbox.calendar_rows() {
        Ok(rows) => Calendars::new(rows),
        Err(err) => {
            warn_unread(place, "invitations show SEQUENCE 0", &err);
            Calendars::default()
        }
    }
}

fn warn_unread(place: &place::Place, consequence: &str, err: &OutboxError) {
    eprintln!(
        "herald: warning: cannot read the outbox in {place} ({}); {consequence}{}",
        Chain(err),
        place.advice()
    );
}

fn print_problems(config: &std::path::Path, diagnostics: &Diagnostics) -> ExitCode {
    for diagnostic in diagnostics.iter() {
        eprintln!("error: {diagnostic}");
    }
    let n = diagnostics.len();
    eprintln!(
        "herald: {n} problem{} in {}; fix {} and run `herald --config {} check` again",
        if n == 1 { "" } else { "s" },
        config.display(),
        if n == 1 { "it" } else { "them" },
        config.display()
    );
    ExitCode::FAILURE
}

/// The result of a command: an exit code, or an error to print.
type CommandResult = anyhow::Result<ExitCode>;
