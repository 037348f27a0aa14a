//! A date cell as tokens: numbers (ordinal suffixes dropped), clock times,
//! words, dashes and ampersands; and how a token is named in a message.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Token {
    /// A run of digits; an ordinal suffix ("22nd") is dropped.
    Number {
        value: u32,
        digits: usize,
    },
    /// "15:00", "15.00", "15h00".
    Clock {
        hour: u32,
        minute: u32,
    },
    /// Letters, lowercased and without dots in `norm` ("Dec." -> "dec",
    /// "p.m." -> "pm"); `text` as written, for messages.
    Word {
        norm: String,
        text: String,
    },
    /// '-', en dash, em dash and their cousins.
    Dash,
    Ampersand,
}

/// Splits a cell into tokens. Commas, parentheses and stray full stops carry
/// no meaning in these cells ("December 5, 2016", "(afternoon)") and are
/// dropped; anything else unexpected is an error.
pub(super) fn tokenize(cell: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = cell.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c.is_whitespace() || matches!(c, ',' | '(' | ')' | '.' | ';') {
            i += 1;
        } else if c.is_ascii_digit() {
            i = number_token(&chars, i, &mut tokens)?;
        } else if c.is_alphabetic() {
            let begin = i;
            // Dots inside a word belong to it ("p.m."), and so does one
            // trailing dot of an abbreviation ("Dec.").
            while let Some(&c) = chars.get(i) {
                let dotted_letter = c == '.' && chars.get(i + 1).is_some_and(|n| n.is_alphabetic());
                if c.is_alphabetic() || dotted_letter {
                    i += 1;
                } else {
                    break;
                }
            }
            let text: String = chars[begin..i].iter().collect();
            let norm = text.to_lowercase().replace('.', "");
            tokens.push(Token::Word { norm, text });
        } else if matches!(c, '-' | '\u{2010}'..='\u{2015}' | '\u{2212}') {
            tokens.push(Token::Dash);
            i += 1;
        } else if c == '&' {
            tokens.push(Token::Ampersand);
            i += 1;
        } else {
            return Err(format!("unexpected {c:?} in the date"));
        }
    }
    Ok(tokens)
}

/// Reads the number starting at `begin` and returns where it ends.
fn number_token(chars: &[char], begin: usize, tokens: &mut Vec<Token>) -> Result<usize, String> {
    let digits_end = |from: usize| {
        let mut end = from;
        while chars.get(end).is_some_and(char::is_ascii_digit) {
            end += 1;
        }
        end
    };
    let parse = |from: usize, to: usize| -> Result<u32, String> {
        let text: String = chars[from..to].iter().collect();
        text.parse::<u32>()
            .map_err(|_| format!("'{text}' is not a number that can be part of a date"))
    };
    let end = digits_end(begin);
    let value = parse(begin, end)?;
    let digits = end - begin;

    // A clock time: "15:00", "15.00", "15h00" (exactly two digits of minutes,
    // so that "5.1" or "Dec. 5" are not taken for times).
    if digits <= 2 && matches!(chars.get(end), Some(':' | '.' | 'h')) {
        let minutes_end = digits_end(end + 1);
        if minutes_end - (end + 1) == 2 {
            let minute = parse(end + 1, minutes_end)?;
            tokens.push(Token::Clock { hour: value, minute });
            return Ok(minutes_end);
        }
    }

    // An ordinal: "22nd", "1st". Only when the suffix is a whole word of its
    // own, so that "3pm" stays a number and a meridiem.
    let suffix_end = {
        let mut end2 = end;
        while chars.get(end2).is_some_and(|c| c.is_alphabetic()) {
            end2 += 1;
        }
        end2
    };
    let suffix: String = chars[end..suffix_end].iter().collect::<String>().to_lowercase();
    tokens.push(Token::Number { value, digits });
    if matches!(suffix.as_str(), "st" | "nd" | "rd" | "th") {
        return Ok(suffix_end);
    }
    Ok(end)
}

pub(super) fn describe(token: Option<&Token>) -> String {
    match token {
        None => "the end of the date".to_string(),
        Some(Token::Number { value, .. }) => format!("'{value}'"),
        Some(Token::Clock { hour, minute }) => format!("'{hour:02}:{minute:02}'"),
        Some(Token::Word { text, .. }) => format!("'{text}'"),
        Some(Token::Dash) => "'-'".to_string(),
        Some(Token::Ampersand) => "'&'".to_string(),
    }
}
