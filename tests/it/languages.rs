//! The six official languages of the United Nations: each message family
//! rendered in each, as snapshots; Arabic HTML right to left; lead times
//! with their plural forms; and letters' bodies per language.

use mail_parser::{Message, MessageParser, MimeHeaders};

use crate::harness::{ConfigDir, stdout};

/// Focal points reading Arabic, Chinese and Russian, whom the example
/// configuration (English, French, Spanish and German readers) lacks: for
/// each language one head of mission, addressed as "Excellency", and one
/// delegate with an honorific written in the reader's language, as an
/// operator would write it (the templates agree with it: "Уважаемая г-жа").
const THREE_MORE_LANGUAGES: &str = r#"
[[focal_points]]
name = "عمر المنصوري"
email = "o.almansouri@arab-mission.example.org"
honorific = "Excellency"
language = "ar"
time_zone = "Africa/Cairo"
lists = ["member-states"]

[[focal_points]]
name = "ليلى حداد"
email = "l.haddad@arab-mission.example.org"
honorific = "السيدة"
language = "ar"
time_zone = "America/New_York"
lists = ["member-states"]

[[focal_points]]
name = "李华"
email = "li.hua@china-mission.example.org"
honorific = "Excellency"
language = "zh"
time_zone = "Asia/Shanghai"
lists = ["member-states"]

[[focal_points]]
name = "陈静"
email = "chen.jing@china-mission.example.org"
honorific = "女士"
language = "zh"
time_zone = "America/New_York"
lists = ["member-states"]

[[focal_points]]
name = "Алексей Петров"
email = "a.petrov@russia-mission.example.org"
honorific = "Excellency"
language = "ru"
time_zone = "Europe/Moscow"
lists = ["member-states"]

[[focal_points]]
name = "Ирина Смирнова"
email = "i.smirnova@russia-mission.example.org"
honorific = "г-жа"
language = "ru"
time_zone = "America/New_York"
lists = ["member-states"]
"#;

/// Per language: a head of mission (reminders, the cover letter) and a
/// delegate (notices), all on the list "member-states".
const READERS: [(&str, &str, &str); 6] = [
    (
        "ar",
        "o.almansouri@arab-mission.example.org",
        "l.haddad@arab-mission.example.org",
    ),
    (
        "zh",
        "li.hua@china-mission.example.org",
        "chen.jing@china-mission.example.org",
    ),
    (
        "en",
        "k.watanabe@japan-mission.example.org",
        "priya.raman@india-mission.example.org",
    ),
    (
        "fr",
        "amina.diallo@senegal-mission.example.org",
        "jm.dubois@swiss-mission.example.org",
    ),
    (
        "ru",
        "a.petrov@russia-mission.example.org",
        "i.smirnova@russia-mission.example.org",
    ),
    (
        "es",
        "cmendoza@mexico-mission.example.org",
        "lfernandez@mexico-mission.example.org",
    ),
];

fn six_languages() -> ConfigDir {
    let config = ConfigDir::example();
    config.write("lists/three-more-languages.toml", THREE_MORE_LANGUAGES);
    config
}

fn parse(raw: &[u8]) -> Message<'_> {
    MessageParser::default().parse(raw).expect("an RFC 5322 message")
}

/// The message as a reader sees it: the subject and recipient decoded,
/// then the text and HTML parts decoded. The invitation is left out (it
/// does not depend on the language; tests/it/calendar.rs reads it), and so
/// is the Date header, which for a notice is the time of the preview.
fn as_read(raw: &[u8]) -> String {
    let message = parse(raw);
    let to = message
        .to()
        .and_then(|to| to.first())
        .map(|to| format!("{} <{}>", to.name().unwrap_or(""), to.address().unwrap_or("")))
        .unwrap_or_default();
    let mut out = format!("Subject: {}\nTo: {to}\n", message.subject().unwrap_or(""));
    for part in message.parts.iter().skip(1) {
        let content_type = part
            .content_type()
            .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("")))
            .unwrap_or_default();
        if content_type == "text/calendar" {
            continue;
        }
        out.push_str(&format!("\n----- {content_type} -----\n"));
        out.push_str(part.text_contents().unwrap_or_default());
    }
    // The directional isolates of Arabic text are invisible; shown, so a
    // reviewer sees where they are.
    out.replace('\u{2068}', "<FSI>").replace('\u{2069}', "<PDI>")
}

fn reminder(config: &ConfigDir, to: &str) -> Vec<u8> {
    config.preview(&["--event", "first-reading", "--lead", "7d", "--to", to])
}

fn notice(config: &ConfigDir, kind: &str, to: &str) -> Vec<u8> {
    config.preview(&["--event", "first-reading", "--notice", kind, "--to", to])
}

fn cover_letter(config: &ConfigDir, to: &str) -> Vec<u8> {
    config.preview(&["--letter", "modalities-roadmap-2017", "--to", to])
}

/// Every family in every language, as the reader gets it. These snapshots
/// are the translations' evidence: review them as a reader of the language
/// would.
#[test]
fn every_message_in_the_six_languages() {
    let config = six_languages();
    for (language, head_of_mission, delegate) in READERS {
        insta::assert_snapshot!(
            format!("reminder_{language}"),
            as_read(&reminder(&config, head_of_mission))
        );
        insta::assert_snapshot!(
            format!("update_{language}"),
            as_read(&notice(&config, "update", delegate))
        );
        insta::assert_snapshot!(
            format!("cancellation_{language}"),
            as_read(&notice(&config, "cancellation", delegate))
        );
        insta::assert_snapshot!(
            format!("cover_letter_{language}"),
            as_read(&cover_letter(&config, head_of_mission))
        );
    }
}

/// With herald's pages (`[http]` and a link secret), the footer of every
/// message has the reader's own links, in the reader's language: their
/// preferences and leaving the list. The address is fixed, so the
/// snapshots are; the port is never bound (preview serves nothing).
#[test]
fn the_footer_has_the_readers_links_in_the_six_languages() {
    let config = six_languages();
    crate::support::web::write_secrets(&config, &[crate::support::web::SECRET]);
    let herald = std::fs::read_to_string(config.path().join("herald.toml")).unwrap();
    config.write(
        "herald.toml",
        &format!(
            "{herald}\n[http]\npublic = \"127.0.0.1:8080\"\npublic_url = \"https://herald.example.org\"\nsecret_file = \"link-secret\"\n"
        ),
    );
    for (language, head_of_mission, _) in READERS {
        let raw = reminder(&config, head_of_mission);
        insta::assert_snapshot!(format!("reminder_links_{language}"), as_read(&raw));
        let message = parse(&raw);
        let html = message.body_html(0).expect("an HTML part");
        for page in ["preferences", "unsubscribe"] {
            assert!(
                html.contains(&format!(
                    "<a href=\"https://herald.example.org/{page}/u1.member-states."
                )),
                "{language}: {html}"
            );
        }
    }
}

/// Arabic HTML is right to left, on the root and on a container inside the
/// body (webmail keeps the body's contents, not the html or body element's
/// attributes); what is written left to right inside it (a Latin title, the
/// reply address) is isolated. Every other language's HTML says its
/// language and is left to right.
#[test]
fn arabic_html_is_right_to_left() {
    let config = six_languages();
    for raw in [
        reminder(&config, "o.almansouri@arab-mission.example.org"),
        notice(&config, "update", "l.haddad@arab-mission.example.org"),
        notice(&config, "cancellation", "l.haddad@arab-mission.example.org"),
        cover_letter(&config, "o.almansouri@arab-mission.example.org"),
    ] {
        let message = parse(&raw);
        let html = message.body_html(0).expect("an HTML part");
        assert!(html.contains(r#"<html lang="ar" dir="rtl">"#), "{html}");
        assert!(html.contains(r#"<div dir="rtl" lang="ar""#), "{html}");
        assert!(
            html.contains(r#"<a href="mailto:gcmigration@gcm.example.org" dir="ltr">"#),
            "{html}"
        );
        assert!(
            html.contains("<bdi>Modalities resolution for the intergovernmental conference"),
            "{html}"
        );
        // Dates and times in the digits of United Nations Arabic texts.
        assert!(html.contains("2 أكتوبر"), "{html}");
        assert!(!html.contains('٢'), "Arabic-Indic digits in {html}");
    }
    for (language, head_of_mission, _) in READERS.iter().filter(|(l, ..)| *l != "ar") {
        let raw = reminder(&config, head_of_mission);
        let message = parse(&raw);
        let html = message.body_html(0).expect("an HTML part");
        assert!(
            html.contains(&format!("<html lang=\"{language}\">")),
            "{language}: {html}"
        );
        assert!(!html.contains("rtl"), "{language}: {html}");
    }
    // An isolated value is escaped in HTML like any other, and left as it
    // is in the subject and the text.
    config.edit(
        "config/roadmaps/2017-modalities-resolution.toml",
        "title = \"1st reading\"",
        "title = \"1st reading <draft> & notes\"",
    );
    let raw = reminder(&config, "o.almansouri@arab-mission.example.org");
    let message = parse(&raw);
    let html = message.body_html(0).expect("an HTML part");
    assert!(
        html.contains("<bdi>1st reading &lt;draft&gt; &amp; notes</bdi>"),
        "{html}"
    );
    assert_eq!(
        message.subject(),
        Some("تذكير: \u{2068}1st reading <draft> & notes\u{2069}، 2 أكتوبر (بعد الظهر)")
    );
}

/// Lead times in words take the plural form CLDR's rules give the count:
/// Russian has one (1, 21), few (2–4) and many (5–20); Arabic a dual (2),
/// few (3–10) and many (11–99). One day is "tomorrow" in every language.
#[test]
fn lead_times_take_their_plural_forms() {
    let model = ConfigDir::example().model();
    let renderer = herald::render::Renderer::new(&model).expect("the templates compile");
    let words = |lead: &str, language: &str| {
        renderer
            .localizer()
            .lead_in_words(lead.parse().expect("a span"), language)
    };
    let days = |language: &str| ["1d", "2d", "3d", "5d", "11d", "22d"].map(|lead| words(lead, language));
    assert_eq!(
        days("ru"),
        [
            "завтра",
            "через 2 дня",
            "через 3 дня",
            "через 5 дней",
            "через 11 дней",
            "через 22 дня",
        ]
    );
    assert_eq!(
        days("ar"),
        [
            "غدًا",
            "بعد يومين",
            "بعد 3 أيام",
            "بعد 5 أيام",
            "بعد 11 يومًا",
            "بعد 22 يومًا",
        ]
    );
    assert_eq!(
        days("en"),
        [
            "tomorrow",
            "in 2 days",
            "in 3 days",
            "in 5 days",
            "in 11 days",
            "in 22 days"
        ]
    );
    // 21 days are three weeks as a lead time; the phrase's own forms, by
    // count, including 1 (which a lead time says as "tomorrow").
    let counted = |language: &str, n: i64| renderer.localizer().counted(language, "in_days", n);
    assert_eq!(
        [1, 2, 5, 21].map(|n| counted("ru", n)),
        ["через 1 день", "через 2 дня", "через 5 дней", "через 21 день"]
    );
    assert_eq!(
        [1, 2, 3, 11].map(|n| counted("ar", n)),
        ["بعد يوم واحد", "بعد يومين", "بعد 3 أيام", "بعد 11 يومًا"]
    );
    assert_eq!(words("21d", "ru"), "через 3 недели");
    // A regional variant reads its language's phrases and rules.
    assert_eq!(words("5d", "ru-RU"), "через 5 дней");
    // Weeks, hours and minutes too.
    assert_eq!(words("14d", "ru"), "через 2 недели");
    assert_eq!(words("35d", "ru"), "через 5 недель");
    assert_eq!(words("14d", "ar"), "بعد أسبوعين");
    assert_eq!(words("2h", "ar"), "بعد ساعتين");
    assert_eq!(words("3h", "ar"), "بعد 3 ساعات");
    assert_eq!(words("1h", "ru"), "через час");
    assert_eq!(words("22h", "ru"), "через 22 часа");
    assert_eq!(words("1m", "en"), "in 1 minute");
    assert_eq!(words("30m", "en"), "in 30 minutes");
    assert_eq!(words("21m", "ru"), "через 21 минуту");
    assert_eq!(words("2d", "zh"), "2天后");
    assert_eq!(words("2d", "es"), "dentro de 2 días");
}

/// Plural forms are checked when the templates are read: the categories
/// are CLDR's, `other` is there, and only phrases with a count have them.
#[test]
fn plural_forms_are_checked() {
    let config = ConfigDir::example();
    config.edit(
        "templates/ru/phrases.toml",
        "in_days = { one = \"через {n} день\", few = \"через {n} дня\", many = \"через {n} дней\", other = \"через {n} дня\" }",
        "in_days = { one = \"через {n} день\", few = \"через {n} дня\", several = \"через {n} дней\" }",
    );
    config.edit(
        "templates/ar/phrases.toml",
        "in_days = { one = \"بعد يوم واحد\", two = \"بعد يومين\", few = \"بعد {n} أيام\", many = \"بعد {n} يومًا\", other = \"بعد {n} يوم\" }",
        "in_days = { one = \"بعد يوم واحد\", two = \"بعد يومين\" }",
    );
    config.edit(
        "templates/es/phrases.toml",
        "ongoing = \"En curso\"",
        "ongoing = { one = \"En curso\", other = \"En curso\" }",
    );
    let problems: Vec<String> = config
        .problems()
        .iter()
        .map(|problem| problem.lines().next().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        problems,
        [
            "ROOT/templates/ar/phrases.toml:25:11: in_days has no `other` form: add one, for the counts its other forms do not cover",
            "ROOT/templates/es/phrases.toml:4:11: ongoing: only the phrases with a count (in_minutes, in_hours, in_days, in_weeks) may give plural forms; write it as one text in quotes",
            "ROOT/templates/ru/phrases.toml:24:11: in_days: unknown plural category \"several\"; the categories are CLDR's: zero, one, two, few, many, other",
        ],
        "{problems:#?}"
    );
}

/// A letter's body is read in the reader's own language when the letter
/// has it; `herald check` names the languages of its readers it has no
/// body in, with how many readers each, and the file.
#[test]
fn check_warns_of_readers_without_a_body_in_their_language() {
    let config = six_languages();
    let output = config.herald(&["check"]);
    assert!(output.status.success());
    let letter = config.path().join("letters/2017-09-14-modalities-roadmap.toml");
    let warning = |languages: &str, first: &str| {
        format!(
            "  warning: {}: letter \"modalities-roadmap-2017\" has no body in {languages}; they will read its body in en: add theirs under [body] ({first} = \"\"\"…\"\"\")\n",
            letter.display()
        )
    };
    // Anna Keller reads German, which neither the templates nor the letter have.
    assert!(
        stdout(&output).ends_with(&warning("de (1 reader)", "de")),
        "{}",
        stdout(&output)
    );

    config.edit(
        "config/letters/2017-09-14-modalities-roadmap.toml",
        "\nru = \"\"\"",
        "\nru-RU = \"\"\"",
    );
    config.edit(
        "config/letters/2017-09-14-modalities-roadmap.toml",
        "\nzh = \"\"\"",
        "\nzh-Hant = \"\"\"",
    );
    let output = config.herald(&["check"]);
    assert!(
        stdout(&output).ends_with(&warning("de (1 reader), ru (2 readers), zh (2 readers)", "de")),
        "{}",
        stdout(&output)
    );
    // A body for the language serves its regional variants.
    config.edit(
        "config/lists/three-more-languages.toml",
        "language = \"ru\"\ntime_zone = \"Europe/Moscow\"",
        "language = \"ru-RU\"\ntime_zone = \"Europe/Moscow\"",
    );
    config.edit(
        "config/letters/2017-09-14-modalities-roadmap.toml",
        "\nru-RU = \"\"\"",
        "\nru = \"\"\"",
    );
    let output = config.herald(&["check"]);
    assert!(
        stdout(&output).ends_with(&warning("de (1 reader), zh (2 readers)", "de")),
        "{}",
        stdout(&output)
    );
    let raw = cover_letter(&config, "a.petrov@russia-mission.example.org");
    let text = parse(&raw).body_text(0).expect("a text part").into_owned();
    assert!(text.contains("Имею честь настоящим препроводить"), "{text}");
}

/// `herald check` renders every language's templates; the daemon's start
/// and reloads only those of the languages its focal points read (and the
/// default language's), since it can send in no other. A mistake in the
/// Chinese templates is reported by `check` at once, and stops the daemon
/// from loading the configuration as soon as someone reads Chinese.
#[test]
fn the_daemon_renders_only_the_languages_it_sends_in() {
    let daemon_load = |config: &ConfigDir| {
        herald::scheduler::Loaded::load(
            &config.path(),
            &herald::config::Environment::default(),
            Some(jiff::Timestamp::UNIX_EPOCH),
        )
        .map(|_| ())
        .map_err(|problems| problems.to_string())
    };
    let config = ConfigDir::example();
    config.edit(
        "templates/zh/reminder.txt.hbs",
        "{{> event-details}}",
        "{{> event-details}}{{event.agenda}}",
    );
    let output = config.herald(&["check"]);
    assert_eq!(output.status.code(), Some(1));
    let problem = "templates/zh/reminder.txt.hbs:7:20: the template names \"event.agenda\", which the data does not have";
    assert!(
        crate::harness::stderr(&output).contains(problem),
        "{}",
        crate::harness::stderr(&output)
    );
    assert_eq!(daemon_load(&config), Ok(()));

    config.write("lists/three-more-languages.toml", THREE_MORE_LANGUAGES);
    let problems = daemon_load(&config).expect_err("a reader of Chinese");
    assert!(problems.contains(problem), "{problems}");
}
