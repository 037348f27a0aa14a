//! The rate limit's state, kept in the outbox across restarts: a restart
//! resumes the token bucket rather than starting it full.

use jiff::Timestamp;
use tracing::warn;

use crate::diagnostics::Chain;
use crate::outbox::Outbox;
use crate::send::Mailer;

/// The name under which the rate limiter's state is kept in the outbox.
const RATE_STATE: &str = "rate_limit";

/// Saves the rate limit's state, if there is a limit. Blocks (a commit).
pub(super) fn save_rate(outbox: &dyn Outbox, mailer: &Mailer) {
    let Some((tokens, at)) = mailer.rate_state() else {
        return; // No rate limit.
    };
    if let Err(err) = outbox.set_value(RATE_STATE, &format!("{tokens}@{at}")) {
        warn!(error = %Chain(&err), "could not save the rate limit's state");
    }
}

/// Puts back the rate limit's state saved before the last stop. A state
/// that cannot be read is reported, and the limit starts full.
pub(super) fn restore_rate(outbox: &dyn Outbox, mailer: &Mailer) {
    let saved = match outbox.get_value(RATE_STATE) {
        Ok(Some(saved)) => saved,
        // Never saved: no rate limit so far, or a first start.
        Ok(None) => return,
        Err(err) => {
            warn!(error = %Chain(&err), "cannot read the rate limit's saved state; the limit starts full");
            return;
        }
    };
    match parse_rate_state(&saved) {
        Ok((tokens, at)) => mailer.restore_rate_state(tokens, at),
        Err(why) => {
            warn!(%saved, "the rate limit's saved state is unreadable ({why}); the limit starts full")
        }
    }
}

/// Reads "tokens@instant", as `save_rate` writes it.
fn parse_rate_state(saved: &str) -> Result<(f64, Timestamp), &'static str> {
    let (tokens, at) = saved.split_once('@').ok_or("not tokens@instant")?;
    let tokens = tokens.parse::<f64>().map_err(|_| "the tokens are not a number")?;
    let at = at.parse::<Timestamp>().map_err(|_| "the instant is not a time")?;
    Ok((tokens, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    const NOW: &str = "2017-10-02T12:00:00Z";

    #[test]
    fn the_rate_state_reads_back_what_is_saved() {
        let saved = format!("{}@{}", -2.5, at(NOW));
        assert_eq!(parse_rate_state(&saved), Ok((-2.5, at(NOW))));
        assert_eq!(parse_rate_state("1.0"), Err("not tokens@instant"));
        assert_eq!(
            parse_rate_state("x@2017-10-02T12:00:00Z"),
            Err("the tokens are not a number")
        );
        assert_eq!(
            parse_rate_state("1.0@yesterday"),
            Err("the instant is not a time")
        );
    }
}
