//! Bad input: each kind gets a clear message naming the file and the place,
//! and nothing is half-loaded (loading returns every problem and no model).

use crate::harness::{ConfigDir, stderr, stdout};

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
    assert!(out.contains("templates in en, fr"), "{out}");
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
            "ROOT/{HERALD_TOML}:69:13: unknown time zone \"Europe/Geneva\" (did you mean \"Europe/Zurich\"?)"
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
            "ROOT/{HERALD_TOML}:36:16: invalid lead time \"1 fortnight\": write it like \"7d\", \"1d\", \"2h\" or \"30m\""
        )),
        "{}",
        problems[0]
    );
    assert!(
        problems[1].starts_with(&format!(
            "ROOT/{ROADMAP_2017}:48:8: invalid date \"2017-10-32\": write it as YYYY-MM-DD, like \"2017-10-02\""
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
        !problems.contains("hunter2") || problems.contains("| password"),
        "the password is only quoted as the source line: {problems}"
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
    let problems = config.problems().join("\n");
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
            "ROOT/{HERALD_TOML}:45:16: invalid duration \"soon\": write it like \"6h\", \"30m\" or \"30s\""
        )),
        "{}",
        problems[0]
    );
}
