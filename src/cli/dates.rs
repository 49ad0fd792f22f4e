//! Dates as people type them on the command line: `today`, `tomorrow`, `yesterday`, a weekday
//! (`friday` or `fri`: the next one, today included), a step from today (`+3d`, `-1w`), or
//! `YYYY-MM-DD`. The server only ever sees `YYYY-MM-DD`.

use chrono::{Datelike, Days, NaiveDate, Weekday};

use super::InvalidInput;

/// Today, where the user is.
pub fn today() -> NaiveDate {
    chrono::Local::now().date_naive()
}

/// `text` as `YYYY-MM-DD`, counted from `today`.
pub fn resolve(text: &str, today: NaiveDate) -> Result<String, InvalidInput> {
    let lower = text.trim().to_ascii_lowercase();
    let date = match lower.as_str() {
        "today" => Some(today),
        "tomorrow" => today.checked_add_days(Days::new(1)),
        "yesterday" => today.checked_sub_days(Days::new(1)),
        word => match (word.parse::<Weekday>(), step(word)) {
            (Ok(weekday), _) => next(today, weekday),
            (_, Some(days)) => today.checked_add_signed(chrono::Duration::days(days)),
            _ => return iso(text),
        },
    };
    date.map(|date| date.format("%Y-%m-%d").to_string())
        .ok_or_else(|| InvalidInput::date(format!("{text:?} is too far from today")))
}

/// `+3d`, `-1w`, `2d`: days from today.
fn step(word: &str) -> Option<i64> {
    let (sign, rest) = match word.as_bytes().first()? {
        b'+' => (1, &word[1..]),
        b'-' => (-1, &word[1..]),
        _ => (1, word),
    };
    let (number, unit) = rest.split_at(rest.len().checked_sub(1)?);
    let n: i64 = number.parse().ok().filter(|n: &i64| *n <= 100_000)?;
    let per_unit = match unit {
        "d" => 1,
        "w" => 7,
        _ => return None,
    };
    Some(sign * n * per_unit)
}

/// The first `weekday` from `today` on.
fn next(today: NaiveDate, weekday: Weekday) -> Option<NaiveDate> {
    let ahead = (7 + weekday.num_days_from_monday() - today.weekday().num_days_from_monday()) % 7;
    today.checked_add_days(Days::new(u64::from(ahead)))
}

fn iso(text: &str) -> Result<String, InvalidInput> {
    crate::list::Date::parse(text)
        .map(|date| date.to_string())
        .map_err(|_| {
            InvalidInput::date(format!(
                "invalid date {text:?}: use YYYY-MM-DD, today, tomorrow, yesterday, a weekday, or +3d / -1w"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_weekdays_and_steps_count_from_today() {
        // 2026-12-04 is a Friday.
        let today = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        for (text, date) in [
            ("today", "2026-12-04"),
            ("Tomorrow", "2026-12-05"),
            ("yesterday", "2026-12-03"),
            ("friday", "2026-12-04"),
            ("fri", "2026-12-04"),
            ("monday", "2026-12-07"),
            ("thu", "2026-12-10"),
            ("+3d", "2026-12-07"),
            ("3d", "2026-12-07"),
            ("-1w", "2026-11-27"),
            ("+2w", "2026-12-18"),
            ("2027-01-31", "2027-01-31"),
        ] {
            assert_eq!(resolve(text, today).unwrap(), date, "{text}");
        }
        for text in [
            "",
            "someday",
            "+d",
            "3x",
            "2026-02-30",
            "+99999999d",
            "2026-1-5",
        ] {
            assert!(resolve(text, today).is_err(), "{text:?}");
        }
    }
}
