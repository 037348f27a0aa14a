//! Automatic answers: RFC 3834's `Auto-Submitted`, the headers older
//! responders set, and out-of-office subjects in English, French and
//! Spanish (German too: delegations write from everywhere).

use super::Mail;

/// Subjects that an out-of-office or other automatic answer starts with,
/// lower-case, after any `[` or `(`.
const SUBJECT_PREFIXES: &[&str] = &[
    "out of office",
    "out of the office",
    "automatic reply",
    "auto reply",
    "auto-reply",
    "autoreply",
    "auto response",
    "auto-response",
    "autoresponse",
    "away from the office",
    "vacation reply",
    "réponse automatique",
    "reponse automatique",
    "absence du bureau",
    "absent du bureau",
    "absence :",
    "respuesta automática",
    "respuesta automatica",
    "fuera de la oficina",
    "fuera de oficina",
    "ausente de la oficina",
    "abwesenheitsnotiz",
    "automatische antwort",
];

/// Whether `mail` is an automatic answer.
pub fn is_auto_reply(mail: &Mail) -> bool {
    by_headers(mail) || by_subject(mail.subject.as_deref().unwrap_or_default())
}

fn by_headers(mail: &Mail) -> bool {
    let first_word = |name: &str| {
        mail.header(name).map(|value| {
            value
                .split([';', ' ', '\t', '\r', '\n'])
                .find(|w| !w.is_empty())
                .unwrap_or_default()
                .to_ascii_lowercase()
        })
    };
    // RFC 3834 §5: any value but "no" (auto-generated, auto-replied,
    // auto-notified, and extensions).
    if first_word("Auto-Submitted").is_some_and(|v| !v.is_empty() && v != "no") {
        return true;
    }
    // Not `X-Auto-Response-Suppress`: a person's Outlook sets it too.
    if mail.header("X-Autoreply").is_some()
        || mail.header("X-Autorespond").is_some()
        || mail.header("X-Autoresponder").is_some()
    {
        return true;
    }
    first_word("Precedence").is_some_and(|v| matches!(v.as_str(), "auto_reply" | "bulk" | "junk"))
}

fn by_subject(subject: &str) -> bool {
    let subject = subject.trim_start_matches(|c: char| c.is_whitespace() || c == '[' || c == '(');
    let lower = subject.to_lowercase();
    SUBJECT_PREFIXES.iter().any(|p| lower.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::by_subject;

    #[test]
    fn out_of_office_subjects_in_three_languages() {
        for subject in [
            "Out of Office: Reminder",
            "Automatic reply: Reminder",
            "[Out of Office] Reminder",
            "Réponse automatique : Rappel",
            "Absence du bureau",
            "Respuesta automática: Recordatorio",
            "RESPUESTA AUTOMÁTICA: Recordatorio",
            "Fuera de la oficina",
        ] {
            assert!(by_subject(subject), "{subject}");
        }
        for subject in ["Re: Reminder", "I will be out of office next week", ""] {
            assert!(!by_subject(subject), "{subject}");
        }
    }
}
