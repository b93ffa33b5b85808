//! The header JSON: parsing (any key order, int or float `starttime`) and writing in exactly
//! the bytes Python's `json.dumps` produces.

use std::fmt::Write as _;

use serde::Deserialize;

use crate::error::{HeaderProblem, ReadError};
use crate::HEADER_JSON_AT;

/// The JSON header of a MAK file.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Kafka topic (`"topic"`).
    pub topic: String,
    /// Kafka partition (`"partition"`).
    pub partition: i32,
    /// First offset the file was created for (`"startoffset"`).
    pub start_offset: i64,
    /// Creation time in seconds since the Unix epoch (`"starttime"`).
    pub start_time: f64,
}

/// The header as it appears in files: every key optional so a missing one gets a precise error.
#[derive(Deserialize)]
struct RawHeader {
    topic: Option<String>,
    partition: Option<i32>,
    startoffset: Option<i64>,
    starttime: Option<f64>,
}

impl Header {
    /// Checks the values the format does not allow (negative partition or start offset,
    /// non-finite start time).
    pub fn validate(&self) -> Result<(), HeaderProblem> {
        if self.partition < 0 {
            return Err(HeaderProblem::NegativePartition(self.partition));
        }
        if self.start_offset < 0 {
            return Err(HeaderProblem::NegativeStartOffset(self.start_offset));
        }
        if !self.start_time.is_finite() {
            return Err(HeaderProblem::NonFiniteStartTime(self.start_time));
        }
        Ok(())
    }

    /// Parses the header JSON found at byte 27. Unknown keys are ignored.
    pub fn from_json(json: &[u8]) -> Result<Header, ReadError> {
        let position = HEADER_JSON_AT;
        let raw: RawHeader =
            serde_json::from_slice(json).map_err(|source| ReadError::BadHeaderJson { position, source })?;
        let missing = |field| ReadError::MissingHeaderField { position, field };
        let header = Header {
            topic: raw.topic.ok_or_else(|| missing("topic"))?,
            partition: raw.partition.ok_or_else(|| missing("partition"))?,
            start_offset: raw.startoffset.ok_or_else(|| missing("startoffset"))?,
            start_time: raw.starttime.ok_or_else(|| missing("starttime"))?,
        };
        header.validate().map_err(|problem| ReadError::InvalidHeader { position, problem })?;
        Ok(header)
    }

    /// The header JSON exactly as Python's `json.dumps` writes it for the original's header
    /// dict, e.g. `{"topic": "t", "partition": 0, "startoffset": 5, "starttime": 1479000000.0}`.
    /// A non-finite start time comes out as Python writes it (`NaN`, `Infinity`), which is
    /// not valid JSON: [`MakWriter::create`](crate::MakWriter::create) refuses such headers.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(80 + self.topic.len());
        out.push_str("{\"topic\": ");
        push_python_json_string(&mut out, &self.topic);
        let _ =
            write!(out, ", \"partition\": {}, \"startoffset\": {}, \"starttime\": ", self.partition, self.start_offset);
        push_python_float(&mut out, self.start_time);
        out.push('}');
        out
    }
}

/// Appends `s` as a JSON string the way `json.dumps(..., ensure_ascii=True)` does.
fn push_python_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// The shortest round-tripping digits of a finite `value` in Rust's scientific notation
/// (`"-1.479e9"`), choosing like Python's `repr` when two shortest strings are equally
/// close to `value`: Rust's `{:e}` then rounds half up, Python half to even.
fn shortest_scientific(value: f64) -> String {
    let shortest = format!("{value:e}");
    let mantissa = shortest.split_once('e').map_or(shortest.as_str(), |(m, _)| m);
    let digits = mantissa.bytes().filter(u8::is_ascii_digit).count();
    // Rounding the exact value to the same number of digits (exact, half to even) gives the
    // closest string of that length; if it round-trips too, that is Python's choice.
    let nearest = format!("{value:.*e}", digits.saturating_sub(1));
    if nearest.parse::<f64>() == Ok(value) {
        nearest
    } else {
        shortest
    }
}

/// Appends `value` formatted like Python's `repr(float)` (non-finite values as `json.dumps`
/// writes them, although they are not valid JSON).
fn push_python_float(out: &mut String, value: f64) {
    if !value.is_finite() {
        out.push_str(if value.is_nan() {
            "NaN"
        } else if value > 0.0 {
            "Infinity"
        } else {
            "-Infinity"
        });
        return;
    }
    let sci = shortest_scientific(value);
    let (negative, sci) = match sci.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, sci.as_str()),
    };
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    // Python: value = 0.DIGITS * 10^decpt; scientific notation unless -4 < decpt <= 16.
    let decpt = exponent.saturating_add(1);
    if negative {
        out.push('-');
    }
    if decpt > -4 && decpt <= 16 {
        if decpt <= 0 {
            out.push_str("0.");
            out.extend(std::iter::repeat_n('0', decpt.unsigned_abs() as usize));
            out.push_str(&digits);
        } else {
            let point = decpt as usize;
            if digits.len() > point {
                out.push_str(&digits[..point]);
                out.push('.');
                out.push_str(&digits[point..]);
            } else {
                out.push_str(&digits);
                out.extend(std::iter::repeat_n('0', point - digits.len()));
                out.push_str(".0");
            }
        }
    } else {
        let (first, rest) = digits.split_at(digits.len().min(1));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exponent.unsigned_abs());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn py(value: f64) -> String {
        let mut s = String::new();
        push_python_float(&mut s, value);
        s
    }

    #[test]
    fn float_is_formatted_like_python_repr() {
        // Expected strings are Python 3.11's repr() of the same values.
        let cases = [
            (1479000000.0, "1479000000.0"),
            (1479000000.25, "1479000000.25"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (0.1, "0.1"),
            (1.5e300, "1.5e+300"),
            (5e-324, "5e-324"),
            (2.5e-5, "2.5e-05"),
            (1234567890123456.7, "1234567890123456.8"),
            (9007199254740993.0, "9007199254740992.0"),
            (-1479000000.5, "-1479000000.5"),
            (123.456, "123.456"),
            // Exact ties between two shortest strings (233115890514796.125, ...): Python
            // rounds half to even where Rust's `{:e}` rounds half up.
            (f64::from_bits(0x42ea_8090_bb0f_6d84), "233115890514796.12"),
            (f64::from_bits(0xc31c_b54f_6b43_4481), "-2020163013628192.2"),
            (f64::from_bits(0x4318_6486_17b9_f199), "1716481631878246.2"),
            (0.000123, "0.000123"),
        ];
        for (value, expected) in cases {
            assert_eq!(py(value), expected, "formatting {value:?}");
        }
    }

    #[test]
    fn non_finite_float_is_formatted_like_json_dumps() {
        assert_eq!(py(f64::NAN), "NaN");
        assert_eq!(py(f64::INFINITY), "Infinity");
        assert_eq!(py(f64::NEG_INFINITY), "-Infinity");
    }

    #[test]
    fn formatted_float_round_trips() {
        for value in [1479000000.0, 0.3, 1e-7, 6.02e23, f64::MAX, f64::MIN_POSITIVE] {
            assert_eq!(py(value).parse::<f64>().unwrap(), value);
        }
    }

    #[test]
    fn header_json_matches_python_json_dumps() {
        let header = Header { topic: "test".into(), partition: 3, start_offset: 5, start_time: 1479000000.0 };
        assert_eq!(
            header.to_json(),
            r#"{"topic": "test", "partition": 3, "startoffset": 5, "starttime": 1479000000.0}"#
        );
    }

    #[test]
    fn topic_is_escaped_like_python_ensure_ascii() {
        // json.dumps('a"b\\c/\x7f\u00e9\U0001F600\n\x01')
        let mut s = String::new();
        push_python_json_string(&mut s, "a\"b\\c/\u{7f}\u{e9}\u{1F600}\n\u{1}");
        assert_eq!(s, r#""a\"b\\c/\u007f\u00e9\ud83d\ude00\n\u0001""#);
    }

    #[test]
    fn header_parses_int_starttime_and_ignores_unknown_keys() {
        let json = br#"{"starttime": 1479000000, "extra": [1], "startoffset": 7, "partition": 2, "topic": "t"}"#;
        let header = Header::from_json(json).unwrap();
        assert_eq!(header, Header { topic: "t".into(), partition: 2, start_offset: 7, start_time: 1479000000.0 });
    }

    #[test]
    fn header_rejects_missing_field() {
        let err = Header::from_json(br#"{"topic": "t", "partition": 0, "startoffset": 0}"#).unwrap_err();
        assert!(matches!(err, ReadError::MissingHeaderField { position: 27, field: "starttime" }), "{err:?}");
    }

    #[test]
    fn header_rejects_float_partition_and_negative_offset() {
        let err =
            Header::from_json(br#"{"topic": "t", "partition": 0.5, "startoffset": 0, "starttime": 1}"#).unwrap_err();
        assert!(matches!(err, ReadError::BadHeaderJson { position: 27, .. }), "{err:?}");
        let err =
            Header::from_json(br#"{"topic": "t", "partition": 0, "startoffset": -1, "starttime": 1}"#).unwrap_err();
        assert!(
            matches!(err, ReadError::InvalidHeader { position: 27, problem: HeaderProblem::NegativeStartOffset(-1) }),
            "{err:?}"
        );
    }
}
