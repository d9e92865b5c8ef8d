//! Time as the database and tokens keep it: whole seconds since the Unix epoch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now_unix() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// RFC 3339 (UTC) for people reading CLI output.
pub fn format_unix(secs: i64) -> String {
    let Ok(secs) = u64::try_from(secs) else {
        return secs.to_string();
    };
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc() {
        assert_eq!(super::format_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::format_unix(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
