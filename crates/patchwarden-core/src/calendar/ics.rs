//! An iCalendar (RFC 5545) writer for the maintenance calendar: one `VCALENDAR` with `PRODID`
//! and `VERSION`, and one `VEVENT` per event, each with a stable `UID`, a `DTSTAMP`, UTC start
//! and end times, a `SUMMARY` and a `DESCRIPTION`.
//!
//! What RFC 5545 asks of the text, and where it is done:
//! - lines end with CRLF (§3.1);
//! - a line longer than 75 octets is folded: CRLF and one space, the space counting towards
//!   the next line's 75 (§3.1); a fold never splits a UTF-8 character, since a calendar client
//!   that unfolds the lines must find valid UTF-8 again ([`fold`]);
//! - in TEXT values, backslash, comma and semicolon are escaped with a backslash and a newline
//!   is written `\n` (§3.3.11); other control characters have no escape and are dropped
//!   ([`escape_text`]);
//! - times are UTC (`20261127T200000Z`, §3.3.5 form #2), so no `VTIMEZONE` is needed.
//!
//! Recurring windows are not written as `RRULE`s: they are computed in their own time zone
//! (with the daylight-saving rules of `calendar`), and an `RRULE` in UTC would drift by an
//! hour at each change of the clocks while one in local time would need the zone's rules
//! as a `VTIMEZONE`. The caller expands each window over a bounded horizon instead, so every
//! client shows exactly the openings Patchwarden itself computes.
//!
//! Pure: the events and the stamp are values.

use jiff::Timestamp;

/// The longest line, in octets, without its CRLF.
pub const MAX_LINE_OCTETS: usize = 75;

/// One event: a window's opening or a freeze.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Stable across requests: the same opening has the same UID each time the feed is read,
    /// so a client updates it instead of adding a copy.
    pub uid: String,
    /// When this information was last changed (the calendar entry's last update).
    pub stamp: Timestamp,
    pub start: Timestamp,
    pub end: Timestamp,
    pub summary: String,
    pub description: String,
    /// `CATEGORIES`: the kind and the groups, for clients that filter by them.
    pub categories: Vec<String>,
}

/// A whole calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    /// `PRODID`: who made it (`-//Patchwarden//Maintenance calendar//EN`).
    pub product: String,
    /// `X-WR-CALNAME`: the name a client shows for the subscription.
    pub name: String,
    pub events: Vec<Event>,
}

/// The calendar as RFC 5545 text: CRLF line ends, folded lines, escaped texts.
pub fn write(calendar: &Calendar) -> String {
    let mut out = String::new();
    let mut line = |name: &str, value: &str| {
        out.push_str(&fold(&format!("{name}:{value}")));
        out.push_str("\r\n");
    };
    line("BEGIN", "VCALENDAR");
    line("VERSION", "2.0");
    line("PRODID", &escape_text(&calendar.product));
    line("CALSCALE", "GREGORIAN");
    line("METHOD", "PUBLISH");
    line("X-WR-CALNAME", &escape_text(&calendar.name));
    for e in &calendar.events {
        line("BEGIN", "VEVENT");
        line("UID", &escape_text(&e.uid));
        line("DTSTAMP", &utc(e.stamp));
        line("DTSTART", &utc(e.start));
        line("DTEND", &utc(e.end));
        line("SUMMARY", &escape_text(&e.summary));
        line("DESCRIPTION", &escape_text(&e.description));
        if !e.categories.is_empty() {
            let cats: Vec<String> = e.categories.iter().map(|c| escape_text(c)).collect();
            line("CATEGORIES", &cats.join(","));
        }
        line("TRANSP", "OPAQUE");
        line("END", "VEVENT");
    }
    line("END", "VCALENDAR");
    out
}

/// A UTC time in RFC 5545's basic form (`20261127T200000Z`); sub-second parts are dropped.
pub fn utc(t: Timestamp) -> String {
    t.strftime("%Y%m%dT%H%M%SZ").to_string()
}

/// A TEXT value with `\`, `;`, `,` escaped and newlines as `\n` (a CR before a LF is dropped,
/// a lone CR becomes a newline); other control characters are dropped.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push_str("\\n");
                }
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds one content line (without its CRLF) into lines of at most [`MAX_LINE_OCTETS`]
/// octets, joined by CRLF and a space, never inside a UTF-8 character.
pub fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + line.len() / 70 * 3);
    // The first line may hold 75 octets; each continuation line's leading space takes one.
    let mut room = MAX_LINE_OCTETS;
    let mut used = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if used + n > room {
            out.push_str("\r\n ");
            room = MAX_LINE_OCTETS - 1;
            used = 0;
        }
        out.push(c);
        used += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn texts_are_escaped_as_rfc_5545_says() {
        assert_eq!(escape_text("a,b;c\\d"), "a\\,b\\;c\\\\d");
        assert_eq!(
            escape_text("one\r\ntwo\nthree\rfour"),
            "one\\ntwo\\nthree\\nfour"
        );
        assert_eq!(escape_text("bell\u{7}tab\t"), "belltab");
        assert_eq!(escape_text("Zürich"), "Zürich");
    }

    #[test]
    fn short_lines_are_not_folded_and_long_ones_fold_at_75_octets() {
        assert_eq!(fold("SUMMARY:x"), "SUMMARY:x");
        let exact = "X".repeat(75);
        assert_eq!(fold(&exact), exact);
        let long = "A".repeat(200);
        let folded = fold(&long);
        let lines: Vec<&str> = folded.split("\r\n").collect();
        assert_eq!(lines[0].len(), 75);
        for l in &lines[1..] {
            assert!(l.starts_with(' '));
            assert!(l.len() <= 75);
        }
        let unfolded = folded.replace("\r\n ", "");
        assert_eq!(unfolded, long);
    }

    #[test]
    fn a_fold_never_splits_a_multi_byte_character() {
        // 74 ASCII octets, then "é" (2 octets) would end at octet 76: it moves to the next line.
        let line = format!("{}é{}", "a".repeat(74), "€".repeat(40));
        let folded = fold(&line);
        for l in folded.split("\r\n") {
            assert!(l.len() <= 75, "{} octets: {l:?}", l.len());
        }
        let first = folded.split("\r\n").next().unwrap();
        assert_eq!(first.len(), 74);
        assert_eq!(folded.replace("\r\n ", ""), line);
        // Four-octet characters only: each line holds whole ones, at most 75 (then 74) octets.
        let emoji = "🔧".repeat(50);
        let folded = fold(&emoji);
        let lines: Vec<&str> = folded.split("\r\n").collect();
        assert_eq!(lines[0].len(), 72);
        for l in &lines[1..] {
            assert!(l.len() <= 75);
            assert!(l[1..].chars().all(|c| c == '🔧'));
        }
        assert_eq!(folded.replace("\r\n ", ""), emoji);
    }

    #[test]
    fn a_calendar_has_its_header_one_event_per_entry_and_crlf_everywhere() {
        let cal = Calendar {
            product: "-//Patchwarden//Maintenance calendar//EN".into(),
            name: "Maintenance, web".into(),
            events: vec![Event {
                uid: "window-nightly-20261127T200000Z@pw.example".into(),
                stamp: ts("2026-11-01T10:00:00Z"),
                start: ts("2026-11-27T20:00:00Z"),
                end: ts("2026-11-28T00:00:00.5Z"),
                summary: "Maintenance window nightly (web; db)".into(),
                description: "Kind: maintenance window\nGroups: web, db".into(),
                categories: vec!["window".into(), "web".into()],
            }],
        };
        let text = write(&cal);
        assert!(text.starts_with("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:"));
        assert!(text.ends_with("END:VEVENT\r\nEND:VCALENDAR\r\n"));
        assert!(!text.replace("\r\n", "").contains('\n'));
        assert!(text.contains("\r\nDTSTART:20261127T200000Z\r\n"));
        assert!(text.contains("\r\nDTEND:20261128T000000Z\r\n"));
        assert!(text.contains("\r\nDTSTAMP:20261101T100000Z\r\n"));
        assert!(text.contains("\r\nSUMMARY:Maintenance window nightly (web\\; db)\r\n"));
        assert!(text.contains("\r\nDESCRIPTION:Kind: maintenance window\\nGroups: web\\, db\r\n"));
        assert!(text.contains("\r\nX-WR-CALNAME:Maintenance\\, web\r\n"));
        assert!(text.contains("\r\nCATEGORIES:window,web\r\n"));
        assert_eq!(text.matches("BEGIN:VEVENT").count(), 1);
    }
}
