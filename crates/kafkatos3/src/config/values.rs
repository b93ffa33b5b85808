//! Value syntax of the config file: each parser turns one value into its type, or says what
//! would have been accepted (the caller adds file, line and key).

use std::time::Duration;

use super::{ConsumerClass, LogFormat, LogLevel, OffsetReset};

pub(super) const KIB: u64 = 1 << 10;
pub(super) const MIB: u64 = 1 << 20;
pub(super) const GIB: u64 = 1 << 30;
pub(super) const TIB: u64 = 1 << 40;

pub(super) fn non_empty(value: &str, expected: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err(format!("{expected} (it is empty)"));
    }
    Ok(value.to_owned())
}

pub(super) fn no_whitespace(value: &str, expected: &str) -> Result<String, String> {
    if value.contains(char::is_whitespace) {
        return Err(format!("{expected}, without spaces"));
    }
    Ok(value.to_owned())
}

pub(super) fn whole_number(value: &str, min: u64, expected: &str) -> Result<u64, String> {
    match value.parse::<u64>() {
        Ok(number) if number >= min => Ok(number),
        _ => Err(expected.to_owned()),
    }
}

pub(super) fn count(value: &str) -> Result<usize, String> {
    let number = whole_number(value, 1, "a whole number >= 1")?;
    usize::try_from(number).map_err(|_| "a whole number >= 1 that fits in memory".to_owned())
}

pub(super) fn nice_level(value: &str) -> Result<i32, String> {
    match value.parse::<i32>() {
        Ok(level) if (-20..=19).contains(&level) => Ok(level),
        _ => Err("a whole number from -20 to 19".to_owned()),
    }
}

pub(super) fn whole_seconds(value: &str) -> Result<Duration, String> {
    whole_number(value, 1, "a whole number of seconds >= 1").map(Duration::from_secs)
}

/// The original read these with Python's `float()`, so fractions stay valid.
pub(super) fn check_interval(value: &str) -> Result<Duration, String> {
    seconds(value, 1.0, true, "a number of seconds >= 1 (fractions allowed)")
}

pub(super) fn seconds(value: &str, min: f64, inclusive: bool, expected: &str) -> Result<Duration, String> {
    let number: f64 = value.parse().map_err(|_| expected.to_owned())?;
    let in_range = if inclusive { number >= min } else { number > min };
    if !number.is_finite() || !in_range {
        return Err(expected.to_owned());
    }
    Duration::try_from_secs_f64(number).map_err(|_| expected.to_owned())
}

pub(super) fn byte_size(value: &str, min: u64, max: u64, expected: &str) -> Result<u64, String> {
    let expected = || {
        format!(
            "{expected}: a whole number of bytes, optionally followed by K, M, G or T \
             (or KiB, KB, ...; all powers of 1024)"
        )
    };
    let digits_end = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (digits, suffix) = value.split_at(digits_end);
    let multiplier = match suffix.trim().to_ascii_lowercase().as_str() {
        "" => 1,
        "k" | "kb" | "kib" => KIB,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => GIB,
        "t" | "tb" | "tib" => TIB,
        _ => return Err(expected()),
    };
    let bytes = digits.parse::<u64>().ok().and_then(|number| number.checked_mul(multiplier)).ok_or_else(expected)?;
    if !(min..=max).contains(&bytes) {
        return Err(expected());
    }
    Ok(bytes)
}

pub(super) fn log_level(value: &str) -> Result<LogLevel, String> {
    match value.to_ascii_uppercase().as_str() {
        "DEBUG" => Ok(LogLevel::Debug),
        "INFO" => Ok(LogLevel::Info),
        "WARNING" | "WARN" => Ok(LogLevel::Warning),
        "ERROR" | "CRITICAL" => Ok(LogLevel::Error),
        _ => Err("one of DEBUG, INFO, WARNING, ERROR".to_owned()),
    }
}

pub(super) fn log_format(value: &str) -> Result<LogFormat, String> {
    match value.to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err("text or json".to_owned()),
    }
}

pub(super) fn mak_format_version(value: &str) -> Result<mak::Version, String> {
    match value {
        "1" => Ok(mak::Version::V1),
        "2" => Ok(mak::Version::V2),
        "3" => Ok(mak::Version::V3),
        _ => Err("1 (the original's format), 2 or 3".to_owned()),
    }
}

pub(super) fn offset_reset(value: &str) -> Result<OffsetReset, String> {
    match value.to_ascii_lowercase().as_str() {
        "earliest" | "smallest" => Ok(OffsetReset::Earliest),
        "latest" | "largest" => Ok(OffsetReset::Latest),
        "none" => Ok(OffsetReset::None),
        _ => Err("one of earliest, latest, none".to_owned()),
    }
}

pub(super) fn consumer_class(value: &str) -> Result<ConsumerClass, String> {
    match value.to_ascii_lowercase().as_str() {
        "kafkapythonconsumer" => Ok(ConsumerClass::KafkaPythonConsumer),
        "kafkaconfluentconsumer" => Ok(ConsumerClass::KafkaConfluentConsumer),
        _ => Err("KafkaConfluentConsumer or KafkaPythonConsumer".to_owned()),
    }
}

/// Comma-separated, as the original's `split(",")`, but blanks around names are forgiven and
/// repeated names are kept once.
pub(super) fn is_valid_topic(topic: &str) -> bool {
    (1..=249).contains(&topic.len())
        && topic != "."
        && topic != ".."
        && topic.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// AWS's current rules, plus `_`: legacy buckets may have it, and the original example uses it.
pub(super) fn bucket_name(value: &str) -> Result<String, String> {
    let valid_chars =
        value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | '_'));
    let alphanumeric = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if (3..=63).contains(&value.len())
        && valid_chars
        && alphanumeric(value.chars().next())
        && alphanumeric(value.chars().last())
    {
        return Ok(value.to_owned());
    }
    Err("an S3 bucket name: 3 to 63 characters of a-z 0-9 . - _, \
         starting and ending with a letter or digit"
        .to_owned())
}

pub(super) fn endpoint(value: &str) -> Result<String, String> {
    let lower = value.to_ascii_lowercase();
    let host = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
    match host {
        Some(host) if !host.is_empty() && !value.contains(char::is_whitespace) => Ok(value.to_owned()),
        _ => Err("an http:// or https:// URL, e.g. http://127.0.0.1:9000".to_owned()),
    }
}

pub(super) fn key_prefix(value: &str) -> Result<String, String> {
    if value.starts_with('/') || value.ends_with('/') || value.contains('\n') {
        return Err("a key prefix without leading or trailing '/' (empty is allowed)".to_owned());
    }
    Ok(value.to_owned())
}
