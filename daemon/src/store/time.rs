//! Dates and times for the store and reports: UTC milliseconds to and from civil dates, with a
//! fixed offset for the local zone (no time zone database).

/// Days since 1970-01-01 of a civil date (proleptic Gregorian; H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day number since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Parse `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS]` or `YYYY-MM-DD HH:MM[:SS]`, a time in a zone
/// `offset_s` seconds east of UTC, to UTC milliseconds. A date alone is its midnight.
///
/// # Errors
/// A message saying what is wrong with `s`.
pub fn parse_datetime(s: &str, offset_s: i64) -> Result<i64, String> {
    let bad = || format!("{s:?}: expected YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS]");
    let s = s.trim();
    let (date, time) = match s.find(['T', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut dp = date.splitn(3, '-');
    let y: i64 = dp.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let m: u32 = dp.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    let d: u32 = dp.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) || !(1970..=9999).contains(&y) {
        return Err(format!("{s:?}: no such date"));
    }
    let (mut hh, mut mm, mut ss) = (0u32, 0u32, 0u32);
    if let Some(t) = time {
        let mut tp = t.split(':');
        hh = tp.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
        mm = tp.next().and_then(|v| v.parse().ok()).ok_or_else(bad)?;
        if let Some(v) = tp.next() {
            ss = v.parse().map_err(|_| bad())?;
        }
        if tp.next().is_some() || hh > 23 || mm > 59 || ss > 59 {
            return Err(format!("{s:?}: no such time of day"));
        }
    }
    let local_s = days_from_civil(y, m, d) * 86_400
        + i64::from(hh) * 3600
        + i64::from(mm) * 60
        + i64::from(ss);
    Ok((local_s - offset_s) * 1000)
}

/// UTC milliseconds as `YYYY-MM-DD HH:MM:SS` in a zone `offset_s` seconds east of UTC.
pub fn format_datetime(utc_ms: i64, offset_s: i64) -> String {
    let s = utc_ms.div_euclid(1000) + offset_s;
    let (y, m, d) = civil_from_days(s.div_euclid(86_400));
    let t = s.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", t / 3600, t % 3600 / 60, t % 60)
}

/// The start of the hour containing `utc_ms`, in a zone `offset_s` seconds east of UTC, as
/// UTC milliseconds.
pub fn hour_start(utc_ms: i64, offset_s: i64) -> i64 {
    let local_ms = utc_ms + offset_s * 1000;
    local_ms.div_euclid(3_600_000) * 3_600_000 - offset_s * 1000
}

/// The time now as UTC milliseconds, from the system clock.
pub fn now_utc_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_and_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        for days in [-1000, 0, 59, 60, 11_016, 19_000, 20_000, 40_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }

    #[test]
    fn parse_and_format() {
        assert_eq!(parse_datetime("1970-01-01", 0), Ok(0));
        assert_eq!(parse_datetime("1970-01-01T01:00", 0), Ok(3_600_000));
        assert_eq!(parse_datetime("1970-01-01 01:00:30", 3600), Ok(30_000));
        let t = parse_datetime("2026-11-23T08:15:42", 0).unwrap();
        assert_eq!(format_datetime(t, 0), "2026-11-23 08:15:42");
        assert_eq!(format_datetime(t, 8 * 3600), "2026-11-23 16:15:42");
        assert!(parse_datetime("2026-02-30", 0).is_err());
        assert!(parse_datetime("2026-13-01", 0).is_err());
        assert!(parse_datetime("yesterday", 0).is_err());
        assert!(parse_datetime("2026-01-01T24:00", 0).is_err());
    }

    #[test]
    fn hours_follow_the_zone() {
        let t = parse_datetime("2026-01-01T10:30", 0).unwrap();
        assert_eq!(hour_start(t, 0), parse_datetime("2026-01-01T10:00", 0).unwrap());
        // Half-hour zone: local 16:00 starts at 10:30 UTC.
        assert_eq!(hour_start(t, 5 * 3600 + 1800), t);
    }
}
