//! Bad input: each kind gets a clear message naming the file and the place,
//! and nothing is half-loaded (loading returns every problem and no model).

use crate::harness::{ConfigDir, Daemon, FUTURE_ROADMAP, stderr, stdout};

const CSV: &str = "config/lists/permanent-missions.csv";
const ROADMAP_2016: &str = "config/roadmaps/2016-modalities-consultations.toml";
const ROADMAP_2017: &str = "config/roadmaps/2017-modalities-resolution.toml";
const HERALD_TOML: &str = "config/herald.toml";

#[test]
fn the_example_config_is_valid() {
    let config = ConfigDir::example();
    assert_eq!(config.problems(), Vec::<String>::new());
    let output = config.herald(&["check"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.contains("2 roadmaps, 13 events; 12 focal points on 3 lists; 1 letter"),
        "{out}"
    );
    assert!(out.contains("templates in ar, en, es, fr, ru, zh"), "{out}");
}

#[test]
fn invalid_address_in_a_csv_list() {
    let config = ConfigDir::example();
    config.edit(
        CSV,
        "cmendoza@mexico-mission.example.org",
        "cmendoza-at-mexico-mission.example.org",
    );
    assert_eq!(
        config.problems(),
        [format!(
            "ROOT/{CSV}:4: column email: invalid e-mail address \"cmendoza-at-mexico-mission.example.org\""
        )]
    );
}

#[test]
fn unknown_list_in_a_roadmap() {
    let config = ConfigDir::example();
    config.edit(
        ROADMAP_2017,
        "lists = [\"member-states\"]",
        "lists = [\"member-state\"]",
    );
    let problems = config.problems();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].starts_with(&format!(
            "ROOT/{ROADMAP_2017}:7:10: unknown list \"member-state\": lists are declared in herald.toml as [lists.ID]; the known lists are: civil-society, geneva-experts, member-states"
        )),
        "{}",
        problems[0]
    );
}

#[test]
fn duplicate_event_id_across_roadmaps() {
    let config = ConfigDir::example();
    config.edit(ROADMAP_2017, "id = \"first-reading\"", "id = \"elements-paper\"");
    let problems = config.problems();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].starts_with(&format!(
            "ROOT/{ROADMAP_2017}:25:6: duplicate event id \"elements-paper\": already used at ROOT/{ROADMAP_2016}:27:6"
        )),
        "{}",
        problems[0]
    );
}

#[test]
fn unknown_time_zone_suggests_the_right_one() {
    let config = ConfigDir::example();
    config.edit(
        HERALD_TOML,
        "time_zone = \"Europe/Zurich\"",
        "time_zone = \"Europe/Geneva\"",
    );
    let problems = config.problems();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].starts_with(&format!(
            "ROOT/{HERALD_TOML}:85:13: unknown time zone \"Europe/Geneva\" (did you mean \"Europe/Zurich\"?)"
        )),
        "{}",
        problems[0]
    );
}

#[test]
fn unparseable_lead_time_and_date() {
    let config = ConfigDir::example();
    config.edit(
        HERALD_TOML,
        "leads = [\"7d\", \"1d\"]",
        "leads = [\"7d\", \"1 fortnight\"]",
    );
    config.edit(ROADMAP_2017, "date = \"2017-10-31\"", "date = \"2017-10-32\"");
    let problems = config.problems();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[0].starts_with(&format!(
            "ROOT/{HERALD_TOML}:52:16: invalid lead time \"1 fortnight\": write it like \"7d\", \"1d\", \"2h\" or \"30m\""
        )),
        "{}",
        problems[0]
    );
    assert!(
        problems[1].starts_with(&format!(
            "ROOT/{ROADMAP_2017}:56:8: invalid date \"2017-10-32\": write it as YYYY-MM-DD, like \"2017-10-02\""
        )),
        "{}",
        problems[1]
    );
}

#[test]
fn end_before_start() {
    let config = ConfigDir::example();
    config.edit(
        ROADMAP_2016,
        "end_date = \"2016-12-02\"",
        "end_date = \"2016-11-30\"",
    );
    config.edit(
        ROADMAP_2016,
        "start = \"15:00\"\nend = \"18:00\"",
        "start = \"15:00\"\nend = \"13:00\"",
    );
    let problems = config.problems();
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(
        problems[0].contains(":22:7: end 13:00:00 is not after start 15:00:00: the end is before the start"),
        "{}",
        problems[0]
    );
    assert!(
        problems[1].contains(
            ":37:12: end_date 2016-11-30 is not after date 2016-12-01: the end is before the start"
        ),
        "{}",
        problems[1]
    );
}

#[test]
fn template_syntax_error() {
    let config = ConfigDir::example();
    config.edit(
        "templates/fr/reminder.txt.hbs",
        "{{> signature}}",
        "{{#if event.venue}}\n{{> signature}}",
    );
    let problems = config.problems();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].starts_with("ROOT/templates/fr/reminder.txt.hbs:"),
        "{}",
        problems[0]
    );
    assert!(problems[0].contains("template syntax error"), "{}", problems[0]);
}

#[test]
fn template_naming_an_unknown_variable() {
    let config = ConfigDir::example();
    config.edit(
        "templates/en/reminder.txt.hbs",
        "{{> event-details}}",
        "{{event.titel}}",
    );
    let problems = config.problems();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].starts_with("ROOT/templates/en/reminder.txt.hbs:7:1: the template names \"event.titel\", which the data does not have"),
        "{}",
        problems[0]
    );
}

#[test]
fn csv_row_with_a_missing_column() {
    let config = ConfigDir::example();
    config.edit(
        CSV,
        "Priya Raman,priya.raman@india-mission.example.org,Permanent Mission of India,Ms.,en,",
        "Priya Raman,priya.raman@india-mission.example.org,Permanent Mission of India,Ms.,",
    );
    assert_eq!(
        config.problems(),
        [format!(
            "ROOT/{CSV}:8: this row has 6 fields but the header has 7: a missing or extra column (quote a field that contains a comma)"
        )]
    );
}

#[test]
fn line_break_in_a_name() {
    let config = ConfigDir::example();
    config.edit(
        "config/lists/civil-society.toml",
        "name = \"Grace Mwangi\"",
        "name = \"Grace Mwangi\\r\\nBcc: everyone@example.org\"",
    );
    assert_eq!(
        config.problems(),
        [
            "ROOT/config/lists/civil-society.toml:5:8: the name contains a carriage return (CR); write it on one line\n    | name = \"Grace Mwangi\\r\\nBcc: everyone@example.org\"\n    |        ^"
        ]
    );
}

#[test]
fn line_break_in_a_subject() {
    let config = ConfigDir::example();
    config.write(
        "../templates/en/cover-letter.subject.hbs",
        "{{roadmap.title}}\nBcc: everyone@example.org\n",
    );
    let problems = config.problems();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].starts_with(
            "ROOT/templates/en/cover-letter.subject.hbs: the subject renders on more than one line"
        ),
        "{}",
        problems[0]
    );
}

#[test]
fn every_problem_at_once_and_no_model() {
    let config = ConfigDir::example();
    config.edit(CSV, "cmendoza@mexico-mission.example.org", "not-an-address");
    config.edit(
        ROADMAP_2017,
        "part_of_day = \"afternoon\"",
        "part_of_day = \"teatime\"",
    );
    config.edit(
        "config/letters/2017-09-14-modalities-roadmap.toml",
        "roadmap = \"gcm-modalities-2017\"",
        "roadmap = \"gcm-2017\"",
    );
    let result = config.load();
    let problems = result.expect_err("a config with problems must not load");
    let text = problems.to_string();
    assert_eq!(problems.len(), 3, "{text}");
    assert!(
        text.contains("invalid e-mail address \"not-an-address\""),
        "{text}"
    );
    assert!(
        text.contains("unknown part of day \"teatime\": the known parts are afternoon, morning"),
        "{text}"
    );
    assert!(text.contains("unknown roadmap \"gcm-2017\""), "{text}");

    let output = config.herald(&["check"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert_eq!(err.matches("error: ").count(), 3, "{err}");
    assert!(err.contains("3 problems in"), "{err}");
}

#[test]
fn a_syntax_error_in_herald_toml_is_placed() {
    let config = ConfigDir::example();
    config.edit(HERALD_TOML, "default_language = \"en\"", "default_language = en");
    let problems = config.problems();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].starts_with(&format!("ROOT/{HERALD_TOML}:18:20: string values must be quoted")),
        "{}",
        problems[0]
    );
}

#[test]
fn a_misspelt_key_is_an_error() {
    let config = ConfigDir::example();
    config.edit(
        ROADMAP_2017,
        "part_of_day = \"morning\"",
        "part_of_the_day = \"morning\"",
    );
    let problems = config.problems();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].contains("unknown field `part_of_the_day`"),
        "{}",
        problems[0]
    );
}

#[test]
fn a_password_in_the_config_is_refused() {
    let config = ConfigDir::example();
    config.edit(HERALD_TOML, "transport = \"maildir\"", "transport = \"smtp\"");
    let text = std::fs::read_to_string(config.path().join("herald.toml")).unwrap();
    config.write("herald.toml", &format!("{text}\n[delivery.smtp]\nhost = \"relay.example.org\"\nusername = \"herald\"\npassword = \"hunter2\"\n"));
    let problems = config.problems().join("\n");
    assert!(
        problems.contains("passwords are not kept in herald.toml"),
        "{problems}"
    );
    assert!(
        !problems.contains("hunter2"),
        "the password is printed: {problems}"
    );
}

#[test]
fn the_smtp_password_comes_from_a_file_or_a_systemd_credential() {
    use herald::config::Environment;
    use herald::send::Transport;
    let config = ConfigDir::example();
    config.edit(HERALD_TOML, "transport = \"maildir\"", "transport = \"smtp\"");
    let text = std::fs::read_to_string(config.path().join("herald.toml")).unwrap();
    let smtp = "\n[delivery.smtp]\nhost = \"relay.example.org\"\nusername = \"herald\"\n";
    config.write("herald.toml", &format!("{text}{smtp}"));
    // Under systemd, without the credential.
    let no_credential = tempfile::tempdir().unwrap();
    let env = Environment::default().with(
        "CREDENTIALS_DIRECTORY",
        &no_credential.path().display().to_string(),
    );
    let problems = herald::config::load(&config.path(), &env)
        .expect_err("no password")
        .to_string();
    assert!(
        problems.contains("`username` is set but no password was found"),
        "{problems}"
    );

    let smtp_of = |config: herald::config::Config| match config.delivery.transport {
        Transport::Smtp(smtp) => smtp,
        Transport::Maildir(_) => panic!("smtp expected"),
    };
    // A systemd credential (LoadCredential=smtp-password:...).
    let credentials = tempfile::tempdir().unwrap();
    std::fs::write(credentials.path().join("smtp-password"), "s3cret from systemd\n").unwrap();
    let env = Environment::default()
        .with("CREDENTIALS_DIRECTORY", &credentials.path().display().to_string())
        .with("HERALD_SMTP_HOST", "relay2.example.org");
    let model = herald::config::load(&config.path(), &env).unwrap();
    assert!(
        !format!("{model:?}").contains("s3cret"),
        "the password must never be printed"
    );
    let settings = smtp_of(model);
    assert_eq!(settings.password.as_deref(), Some("s3cret from systemd"));
    assert_eq!(
        settings.host, "relay2.example.org",
        "HERALD_SMTP_HOST overrides herald.toml"
    );
    assert_eq!(settings.port, 587);

    // A password file named in herald.toml, relative to the config directory.
    config.write("smtp-password", "s3cret from a file\n");
    config.write(
        "herald.toml",
        &format!("{text}{smtp}password_file = \"smtp-password\"\n"),
    );
    let settings = smtp_of(config.load_config().unwrap());
    assert_eq!(settings.password.as_deref(), Some("s3cret from a file"));
}

/// An address on two list files: reported at the second, naming the first
/// by its line (and column, in TOML).
#[test]
fn an_address_listed_twice() {
    let config = ConfigDir::example();
    config.write(
        "lists/zz-again.toml",
        "[[focal_points]]\nname = \"Amina again\"\nemail = \"Amina.Diallo@senegal-mission.example.org\"\nlists = [\"member-states\"]\n",
    );
    assert_eq!(
        config.problems(),
        [format!(
            "ROOT/config/lists/zz-again.toml:3:9: Amina.Diallo@senegal-mission.example.org is listed twice; the first is at ROOT/{CSV}:2: merge the two (a focal point can be on several lists)\n    | email = \"Amina.Diallo@senegal-mission.example.org\"\n    |         ^"
        )]
    );
}

/// The daemon renders only the events that can still send: a template
/// mistake that only past events would show does not stop it, and one that
/// an event to come shows does.
#[test]
fn the_daemon_checks_the_templates_against_the_events_to_come() {
    use herald::clock::{Clock, ManualClock};
    use herald::daemon::{Options, load};

    let config = ConfigDir::example();
    config.edit(
        "templates/en/reminder.txt.hbs",
        "{{> event-details}}",
        "{{event.titel}}",
    );
    let options_at = |now: &str| {
        let clock: std::sync::Arc<dyn Clock> = std::sync::Arc::new(ManualClock::new(now.parse().unwrap()));
        Options::new(config.path(), herald::config::Environment::default(), clock)
    };
    // In 2026 the example's roadmaps (2016 and 2017) are long past.
    assert!(load(&options_at("2026-11-25T12:00:00Z")).is_ok());
    // While they were to come, the mistake stops the daemon, with its place.
    let problems = load(&options_at("2017-09-13T00:00:00Z"))
        .err()
        .expect("the template mistake is found");
    assert!(
        problems.iter().any(|p| p.to_string().contains(
            "templates/en/reminder.txt.hbs:7:1: the template names \"event.titel\", which the data does not have"
        )),
        "{problems:?}"
    );
}

#[test]
fn a_notice_delay_that_is_not_a_duration() {
    let config = ConfigDir::example();
    config.edit(HERALD_TOML, "notice_delay = \"10m\"", "notice_delay = \"soon\"");
    let problems = config.problems();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].starts_with(&format!(
            "ROOT/{HERALD_TOML}:61:16: invalid duration \"soon\": write it like \"6h\", \"30m\" or \"30s\""
        )),
        "{}",
        problems[0]
    );
}

/// Two partials that include each other used to overflow the stack and
/// abort `herald check` (and the daemon at every reload); the cycle is
/// now refused at load, named with its files and lines.
#[test]
fn partials_that_include_each_other_are_refused_by_name() {
    let config = ConfigDir::example();
    config.write("../templates/en/partials/a.txt.hbs", "A\n{{> b}}\n");
    config.write("../templates/en/partials/b.txt.hbs", "{{> a}}\n");
    config.edit("templates/en/partials/signature.txt.hbs", "{{", "{{> a}}{{");
    let expected = "ROOT/templates/en/partials/a.txt.hbs:2: partials include each other: a → b → a \
        (ROOT/templates/en/partials/a.txt.hbs:2 includes b, ROOT/templates/en/partials/b.txt.hbs:1 includes a); \
        rendering would never end";
    assert_eq!(config.problems(), vec![expected.to_owned()]);
    let output = config.herald(&["check"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("a → b → a"), "{}", stderr(&output));
}

/// Handlebars compiles a template in time that grows with the square of its
/// size: under the `templates` fuzz target a 42 KB template took 27 s to
/// load and a 168 KB one 7 minutes, keeping `herald check`, the daemon's
/// start and every reload busy. A template over 32 KiB is refused at load,
/// by name, before anything compiles it.
#[test]
fn a_template_too_large_to_compile_in_time_is_refused_by_name() {
    let config = ConfigDir::example();
    let line = "<p>{{event.title}}</p>\n";
    let large = line.repeat(32 * 1024 / line.len() + 1);
    assert_eq!(large.len().div_ceil(1024), 33);
    config.write("../templates/en/reminder.html.hbs", &large);
    assert_eq!(
        config.problems(),
        vec![
            "ROOT/templates/en/reminder.html.hbs: the template is 33 KiB; templates may be at most 32 KiB \
             (keep long texts in partials)"
                .to_owned()
        ]
    );
    // At the limit, it loads.
    let mut at_limit = line.repeat(32 * 1024 / line.len());
    at_limit.push_str(&" ".repeat(32 * 1024 - at_limit.len()));
    config.write("../templates/en/reminder.html.hbs", &at_limit);
    assert_eq!(config.problems(), Vec::<String>::new());
}

/// Longer cycles, a partial that includes itself, inline partials, and a
/// cycle a French partial closes through an English one it falls back to.
#[test]
fn every_kind_of_include_cycle_is_refused() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("en/partials/a.html.hbs", "{{#if lang}}{{> b}}{{/if}}"),
                ("en/partials/b.html.hbs", "{{#each lists}}{{> c}}{{/each}}"),
                ("en/partials/c.html.hbs", "{{#> a}}x{{/a}}"),
            ],
            "partials include each other: a → b → c → a",
        ),
        (
            &[(
                "en/partials/a.txt.hbs",
                "{{#unless lang}}x{{else}}{{> a}}{{/unless}}",
            )],
            "a partial includes itself: a → a",
        ),
        (
            &[(
                "en/partials/a.txt.hbs",
                "{{#*inline \"x\"}}{{> y}}{{/inline}}{{#*inline \"y\"}}{{> x}}{{/inline}}{{> x}}",
            )],
            "partials include each other: x (inline in a) → y (inline in a) → x (inline in a)",
        ),
        (
            &[
                ("en/partials/a.txt.hbs", "{{> b}}"),
                ("en/partials/b.txt.hbs", "b"),
                ("fr/partials/b.txt.hbs", "{{> a}}"),
            ],
            "partials include each other: a → b → a (ROOT/templates/en/partials/a.txt.hbs:1 includes b, ROOT/templates/fr/partials/b.txt.hbs:1 includes a)",
        ),
    ];
    for (files, expected) in cases {
        let config = ConfigDir::example();
        for (path, text) in *files {
            config.write(&format!("../templates/{path}"), text);
        }
        let problems = config.problems();
        assert_eq!(problems.len(), 1, "{files:?}: {problems:#?}");
        assert!(problems[0].contains(expected), "{files:?}: {}", problems[0]);
        let output = config.herald(&["check"]);
        assert_eq!(output.status.code(), Some(1), "{files:?}: {}", stderr(&output));
    }
}

/// Nesting deep enough to exhaust a thread's stack (handlebars has no
/// limit of its own) is refused with its place, whether it is written in
/// one template, chained with `{{else if}}`, or reached through a long
/// chain of partials; and a partial's name must be written out, or no
/// cycle could be found. Nesting up to the limit renders.
#[test]
fn nesting_too_deep_to_render_is_refused() {
    let nested = |depth: usize| format!("{}x{}", "{{#if lang}}".repeat(depth), "{{/if}}".repeat(depth));
    let chain = |length: usize| -> Vec<(String, String)> {
        (0..length)
            .map(|i| {
                (
                    format!("en/partials/p{i}.txt.hbs"),
                    format!("{{{{> p{}}}}}", i + 1),
                )
            })
            .chain([(format!("en/partials/p{length}.txt.hbs"), "end".to_owned())])
            .collect()
    };
    let used = |config: &ConfigDir| {
        config.edit("templates/en/partials/signature.txt.hbs", "{{", "{{> p0}}{{");
    };
    let config = ConfigDir::example();
    config.write(
        "../templates/en/partials/p0.txt.hbs",
        &format!("\n{}", nested(33)),
    );
    used(&config);
    assert_eq!(
        config.problems(),
        vec![
            "ROOT/templates/en/partials/p0.txt.hbs:2: blocks nest more than 32 deep here; herald allows 32, so that rendering cannot run out of stack"
        ]
    );

    // As long a chain as a template can hold (templates are at most 32 KiB).
    let config = ConfigDir::example();
    let chained = format!("{{{{#if lang}}}}{}x{{{{/if}}}}", "{{else if lang}}".repeat(2_000));
    config.write("../templates/en/partials/p0.txt.hbs", &chained);
    used(&config);
    let problems = config.problems();
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].contains("p0.txt.hbs:1: blocks nest more than 32 deep"),
        "{}",
        problems[0]
    );

    let config = ConfigDir::example();
    for (path, text) in chain(2_000) {
        config.write(&format!("../templates/{path}"), &text);
    }
    used(&config);
    let problems = config.problems();
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(
        problems.iter().any(|p| p.starts_with(
            "ROOT/templates/en/reminder.txt.hbs: reminder.txt nests blocks and partials 2002 deep"
        )),
        "{problems:#?}"
    );
    let output = config.herald(&["check"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));

    let config = ConfigDir::example();
    config.write("../templates/en/partials/p0.txt.hbs", "{{> (lang)}}");
    used(&config);
    assert_eq!(
        config.problems(),
        vec![
            "ROOT/templates/en/partials/p0.txt.hbs:1:1: a partial's name must be written out ({{> name}}), not computed: herald checks at load that partials do not include each other"
        ]
    );

    // At the limit, through partials and blocks, herald checks and renders.
    let config = ConfigDir::example();
    let mut files = chain(16);
    files.last_mut().expect("a last partial").1 = nested(12);
    for (path, text) in files {
        config.write(&format!("../templates/{path}"), &text);
    }
    used(&config);
    assert_eq!(config.problems(), Vec::<String>::new());
    let output = config.herald(&["check"]);
    assert!(output.status.success(), "{}", stderr(&output));
}

/// A running daemon given partials that include each other at a reload
/// refuses them and keeps running (it used to abort on the stack overflow).
#[test]
fn a_reload_with_an_include_cycle_keeps_the_daemon_running() {
    let config = ConfigDir::example();
    config.write("roadmaps/future.toml", FUTURE_ROADMAP);
    let state = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::spawn(
        config
            .run_before_the_future_meeting(state.path())
            .arg("--no-watch"),
    );
    daemon.wait_for("herald::daemon: ready");
    config.write("../templates/en/partials/a.txt.hbs", "{{> b}}");
    config.write("../templates/en/partials/b.txt.hbs", "{{> a}}");
    daemon.signal("HUP");
    let problem = daemon.wait_for("partials include each other");
    assert!(problem.contains("a → b → a"), "{problem}");
    daemon.wait_for("keeping the last good one running");
    daemon.signal("TERM");
    daemon.wait_for("stopped");
    let status = daemon.wait();
    assert!(status.success(), "{status:?}");
}

/// The example configuration switched to SMTP, with `table` appended to
/// herald.toml (a `[delivery.smtp]` table, or nothing).
fn smtp_config(table: &str) -> ConfigDir {
    let config = ConfigDir::example();
    config.edit(HERALD_TOML, "transport = \"maildir\"", "transport = \"smtp\"");
    let text = std::fs::read_to_string(config.path().join("herald.toml")).unwrap();
    config.write("herald.toml", &format!("{text}{table}"));
    config
}

/// Every HERALD_* variable the README lists is used, with a
/// `[delivery.smtp]` table or without one (port and security used to be
/// ignored without it, 587 and STARTTLS hard-coded).
#[test]
fn every_herald_variable_works_with_or_without_an_smtp_table() {
    use herald::config::Environment;
    use herald::send::{Security, Transport};
    let files = tempfile::tempdir().unwrap();
    let password_file = files.path().join("password");
    std::fs::write(&password_file, "from the environment\n").unwrap();
    let ca_file = files.path().join("ca.pem");
    std::fs::write(&ca_file, "").unwrap();
    let path = |p: &std::path::Path| p.display().to_string();
    let env = Environment::default()
        .with("HERALD_TRANSPORT", "smtp")
        .with("HERALD_STATE_DIR", "/srv/herald-state")
        .with("HERALD_REDIRECT_TO", "rehearsal@example.org")
        .with("HERALD_SMTP_HOST", "relay.example.net")
        .with("HERALD_SMTP_PORT", "2525")
        .with("HERALD_SMTP_SECURITY", "tls")
        .with("HERALD_SMTP_USERNAME", "env-user")
        .with("HERALD_SMTP_PASSWORD_FILE", &path(&password_file))
        .with("HERALD_SMTP_CA_FILE", &path(&ca_file));
    let table = "\n[delivery.smtp]\nhost = \"relay.example.org\"\nport = 25\nsecurity = \"none\"\nusername = \"file-user\"\npassword_file = \"missing\"\nca_file = \"missing.pem\"\n";
    for (what, config) in [
        ("no table", ConfigDir::example()),
        ("a table", smtp_config(table)),
    ] {
        let loaded = herald::config::load(&config.path(), &env)
            .unwrap_or_else(|problems| panic!("{what}: {problems}"));
        assert_eq!(
            loaded.delivery.state_dir,
            std::path::Path::new("/srv/herald-state"),
            "{what}"
        );
        assert_eq!(
            loaded.delivery.redirect_to.map(|a| a.to_string()).as_deref(),
            Some("rehearsal@example.org"),
            "{what}"
        );
        let Transport::Smtp(smtp) = loaded.delivery.transport else {
            panic!("{what}: HERALD_TRANSPORT=smtp is ignored");
        };
        assert_eq!(smtp.host, "relay.example.net", "{what}");
        assert_eq!(smtp.port, 2525, "{what}");
        assert_eq!(smtp.security, Security::Tls, "{what}");
        assert_eq!(smtp.username.as_deref(), Some("env-user"), "{what}");
        assert_eq!(smtp.password.as_deref(), Some("from the environment"), "{what}");
        assert_eq!(smtp.ca_file.as_deref(), Some(ca_file.as_path()), "{what}");
    }
    // Without HERALD_SMTP_PORT, the default port follows the security.
    let env = Environment::default()
        .with("HERALD_TRANSPORT", "smtp")
        .with("HERALD_SMTP_HOST", "relay.example.net")
        .with("HERALD_SMTP_SECURITY", "tls");
    let loaded = herald::config::load(&ConfigDir::example().path(), &env).unwrap();
    let Transport::Smtp(smtp) = loaded.delivery.transport else {
        panic!("smtp expected");
    };
    assert_eq!((smtp.port, smtp.security), (465, Security::Tls));
    // HERALD_MAILDIR, with the maildir transport.
    let env = Environment::default().with("HERALD_MAILDIR", "/srv/mail");
    let loaded = herald::config::load(&ConfigDir::example().path(), &env).unwrap();
    assert!(
        matches!(&loaded.delivery.transport, Transport::Maildir(dir) if dir == std::path::Path::new("/srv/mail")),
        "{:?}",
        loaded.delivery.transport
    );
}

/// A bad value in a HERALD_* variable is an error naming the variable,
/// with a table and without (the port and security were not checked
/// without one, and an unreadable password file was ignored).
#[test]
fn a_bad_herald_variable_is_an_error_naming_it() {
    use herald::config::Environment;
    let table = "\n[delivery.smtp]\nhost = \"relay.example.org\"\n";
    let cases = [
        ("HERALD_TRANSPORT", "smpt", "unknown transport \"smpt\""),
        (
            "HERALD_SMTP_HOST",
            "smtp://relay.example.org",
            "invalid host \"smtp://relay.example.org\"",
        ),
        ("HERALD_REDIRECT_TO", "not an address", ""),
        ("HERALD_SMTP_PORT", "twenty-five", "invalid port \"twenty-five\""),
        ("HERALD_SMTP_PORT", "0", "invalid port \"0\""),
        ("HERALD_SMTP_PORT", "70000", "invalid port \"70000\""),
        ("HERALD_SMTP_SECURITY", "ssl", "unknown security \"ssl\""),
        (
            "HERALD_SMTP_PASSWORD_FILE",
            "/nonexistent/password",
            "cannot read the password file /nonexistent/password",
        ),
        (
            "HERALD_SMTP_CA_FILE",
            "/nonexistent/ca.pem",
            "ca_file /nonexistent/ca.pem is not a readable file",
        ),
    ];
    for (with_table, config) in [(false, ConfigDir::example()), (true, smtp_config(table))] {
        for (var, value, message) in cases {
            let mut env = Environment::default().with(var, value);
            if var != "HERALD_TRANSPORT" {
                env = env.with("HERALD_TRANSPORT", "smtp");
            }
            if !with_table && var != "HERALD_SMTP_HOST" {
                env = env.with("HERALD_SMTP_HOST", "relay.example.net");
            }
            let problems: Vec<String> = match herald::config::load(&config.path(), &env) {
                Ok(_) => Vec::new(),
                Err(problems) => problems.iter().map(ToString::to_string).collect(),
            };
            assert_eq!(
                problems.len(),
                1,
                "{var}={value} (table: {with_table}): {problems:#?}"
            );
            assert!(
                problems[0].starts_with(&format!("${var}: {message}")),
                "{var}={value} (table: {with_table}): {}",
                problems[0]
            );
        }
    }
}

/// A password written in herald.toml is refused, and never shown: not in
/// the refusal's source line, nor in a syntax or type error on that line,
/// by `herald check` or by the daemon's log.
#[test]
fn a_password_in_herald_toml_is_never_printed() {
    let secret = "Hunter2Secret";
    let tables = [
        format!("\n[delivery.smtp]\nhost = \"relay.example.org\"\npassword = \"{secret}\"\n"),
        format!("\n[delivery.smtp]\nhost = \"relay.example.org\"\npassword = '{secret}'   # the relay's\n"),
        format!("\n[delivery.smtp]\nhost = \"relay.example.org\"\npassword = {secret}\n"),
        "\n[delivery.smtp]\nhost = \"relay.example.org\"\npassword = 20240611\n".to_owned(),
        format!("\n[delivery.smtp]\nhost = \"relay.example.org\"\n\"password\" = [\"{secret}\"]\n"),
        format!("\n[delivery.smtp]\nhost = \"relay.example.org\"\npassword = \"{secret}\nport = 25\n"),
    ];
    for table in &tables {
        let secret = if table.contains("20240611") {
            "20240611"
        } else {
            secret
        };
        let config = smtp_config(table);
        let state = tempfile::tempdir().unwrap();
        for output in [
            config.herald(&["check"]),
            config.run_command(state.path()).output().unwrap(),
        ] {
            assert!(!output.status.success(), "{table}");
            let printed = format!("{}{}", stdout(&output), stderr(&output));
            assert!(
                !printed.contains(secret),
                "{table}: the secret is printed:\n{printed}"
            );
            assert!(printed.contains("herald.toml"), "{table}: {printed}");
        }
    }
}

/// `herald check` from a shell, with the password a systemd credential as
/// README recommends: the check passes and says the password is read at run
/// time; the daemon without the credential refuses to start, saying how to
/// give it.
#[test]
fn check_passes_with_a_note_when_the_password_is_a_systemd_credential() {
    let config = smtp_config("\n[delivery.smtp]\nhost = \"relay.example.org\"\nusername = \"herald\"\n");
    let output = config.herald(&["check"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("note: the SMTP password is not checked here: it is read when herald runs, from the systemd credential `smtp-password`"),
        "{}",
        stdout(&output)
    );
    let state = tempfile::tempdir().unwrap();
    let run = config.run_command(state.path()).output().unwrap();
    assert!(!run.status.success());
    assert!(
        stderr(&run).contains("a username (\"herald\") is set but no password was given: set password_file, or run herald under systemd with the credential `smtp-password`"),
        "{}",
        stderr(&run)
    );
}

/// `[state]`: each refused value at its line and column, the password from
/// a file (never from the URL, never shown), the node's name from
/// `$HERALD_NODE`.
#[test]
fn the_state_table_is_checked_value_by_value() {
    use herald::config::Environment;
    let config = ConfigDir::example();
    let text = std::fs::read_to_string(config.path().join("herald.toml")).unwrap();
    let with_state = |table: &str| config.write("herald.toml", &format!("{text}\n[state]\n{table}"));

    with_state("database = \"postgres://herald:hunter2@db.example.org/herald\"\nlease = \"2s\"\n");
    let problems = config.problems().join("\n");
    assert!(
        problems.contains("herald.toml:") && problems.contains("holds a password"),
        "{problems}"
    );
    assert!(problems.contains("at least 6 s"), "{problems}");
    assert!(
        !problems.contains("hunter2"),
        "the password is printed: {problems}"
    );

    with_state("database = \"mysql://db.example.org/herald\"\n");
    let problems = config.problems().join("\n");
    assert!(problems.contains("invalid database URL"), "{problems}");

    with_state("lease = \"30s\"\n");
    let problems = config.problems().join("\n");
    assert!(problems.contains("[state] needs database"), "{problems}");

    with_state(
        "database = \"postgres://herald@db.example.org:5433/herald\"\npassword_file = \"missing-password\"\n",
    );
    let problems = config.problems().join("\n");
    assert!(
        problems.contains("cannot read the password file") && problems.contains("missing-password"),
        "{problems}"
    );

    config.write("db-password", "s3cret from a file\n");
    with_state(
        "database = \"postgres://herald@db.example.org:5433/herald\"\npassword_file = \"db-password\"\n",
    );
    let env = Environment::default().with("HERALD_NODE", "herald-2");
    let loaded = herald::config::load(&config.path(), &env).unwrap();
    assert!(
        !format!("{loaded:?}").contains("s3cret"),
        "the password must never be printed"
    );
    let database = loaded.delivery.database.expect("[state] names a database");
    assert_eq!(database.node, "herald-2");
    assert_eq!(database.config.get_password(), Some(&b"s3cret from a file"[..]));
    assert_eq!(database.lease, std::time::Duration::from_secs(30));

    let env = Environment::default().with("HERALD_NODE", "not a name");
    let problems = herald::config::load(&config.path(), &env)
        .unwrap_err()
        .to_string();
    assert!(
        problems.contains("$HERALD_NODE") && problems.contains("invalid node name"),
        "{problems}"
    );
}

/// The configuration's digest, which nodes sharing a database compare
/// before planning: the same files give the same digest wherever they
/// are; an edit changes it; an editor's swap file does not.
#[test]
fn the_configuration_s_fingerprint_follows_its_files() {
    let (one, two) = (ConfigDir::example(), ConfigDir::example());
    let first = one.load_config().unwrap().fingerprint;
    assert_eq!(first.len(), 64);
    assert_eq!(first, two.load_config().unwrap().fingerprint);
    one.write(".herald.toml.swp", "editor state");
    assert_eq!(first, one.load_config().unwrap().fingerprint);
    one.edit(
        HERALD_TOML,
        "transport = \"maildir\"",
        "transport = \"maildir\"\n# edited",
    );
    assert_ne!(first, one.load_config().unwrap().fingerprint);
}
