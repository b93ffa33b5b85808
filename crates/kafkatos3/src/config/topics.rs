//! `topic_whitelist`: topic names, and patterns - entries starting with `^` - as librdkafka's
//! subscriptions have them. The consumers hand the entries to librdkafka as written (it picks up
//! topics created later that match, at its next metadata refresh); everything else that asks
//! whether a topic is archived (the uploader, the group keeper, a snapshot, restore) asks
//! [`TopicSet::matches`].

use regex::Regex;

use super::values::is_valid_topic;

/// The configured topics: names and patterns, in the order written, without repeats.
#[derive(Debug, Clone)]
pub struct TopicSet {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone)]
enum Entry {
    Name(String),
    /// Matched anywhere in a name, as librdkafka does: anchored at the start by its `^`, at the
    /// end only if it says `$`.
    Pattern(Regex),
}

impl Entry {
    fn as_str(&self) -> &str {
        match self {
            Entry::Name(name) => name,
            Entry::Pattern(regex) => regex.as_str(),
        }
    }
}

impl TopicSet {
    /// Parses a comma-separated list of topic names and `^` patterns; the message says what is
    /// wrong with which entry.
    pub fn parse(value: &str) -> Result<TopicSet, String> {
        let mut entries: Vec<Entry> = Vec::new();
        for item in value.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let entry = if item.starts_with('^') {
                posix_subset(item)?;
                let regex = Regex::new(item).map_err(|error| {
                    let error = error.to_string().replace('\n', " ");
                    format!(
                        "'{}' starts with ^, so it is a regular expression, but it is not a valid one: {error}",
                        item.escape_debug()
                    )
                })?;
                Entry::Pattern(regex)
            } else if is_valid_topic(item) {
                Entry::Name(item.to_owned())
            } else {
                return Err(format!(
                    "a comma-separated list of Kafka topic names and ^patterns, but '{}' is not a topic name \
                     (1 to 249 characters of A-Z a-z 0-9 . _ -, and not '.' or '..') nor a pattern (starting with ^)",
                    item.escape_debug()
                ));
            };
            if !entries.iter().any(|known| known.as_str() == entry.as_str()) {
                entries.push(entry);
            }
        }
        if entries.is_empty() {
            return Err("a comma-separated list of at least one Kafka topic name or ^pattern".to_owned());
        }
        Ok(TopicSet { entries })
    }

    /// Whether `topic` is named, or matched by a pattern. Internal topics (`__consumer_offsets`,
    /// `__transaction_state`: names starting with `__`) are never matched by a pattern (the
    /// consumers' `topic.blacklist` leaves them out of librdkafka's subscription too, see
    /// [`crate::config::kafka::client_config`]); naming one selects it.
    pub fn matches(&self, topic: &str) -> bool {
        self.entries.iter().any(|entry| match entry {
            Entry::Name(name) => name == topic,
            Entry::Pattern(regex) => !topic.starts_with("__") && regex.is_match(topic),
        })
    }

    /// The entries as written: a consumer's subscription.
    pub fn entries(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(Entry::as_str)
    }

    /// The entries that name a topic (not patterns).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter_map(|entry| match entry {
            Entry::Name(name) => Some(name.as_str()),
            Entry::Pattern(_) => None,
        })
    }

    pub fn has_patterns(&self) -> bool {
        self.entries.iter().any(|entry| matches!(entry, Entry::Pattern(_)))
    }

    /// The first entry of `other` this set does not cover: a name it does not match, or a
    /// pattern it does not hold as written (whether one pattern covers another cannot be told
    /// in general).
    pub fn first_not_covered<'a>(&self, other: &'a TopicSet) -> Option<&'a str> {
        other.entries.iter().map(Entry::as_str).find(|&entry| {
            if entry.starts_with('^') {
                !self.entries().any(|own| own == entry)
            } else {
                !self.matches(entry)
            }
        })
    }

    /// The topics of `existing` (a cluster's topic names) this set selects, in the order given,
    /// and the named topics missing from it.
    pub fn select<'a>(&self, existing: impl IntoIterator<Item = &'a str>) -> (Vec<String>, Vec<String>) {
        let existing: Vec<&str> = existing.into_iter().collect();
        let selected = existing.iter().filter(|topic| self.matches(topic)).map(|t| (*t).to_owned()).collect();
        let missing = self.names().filter(|name| !existing.contains(name)).map(str::to_owned).collect();
        (selected, missing)
    }
}

/// librdkafka matches subscription patterns with POSIX extended regular expressions (glibc's
/// `regcomp`), where `\d` is a plain `d`: a pattern that means something else to Rust's regex
/// (which matches them everywhere else) is refused rather than archived differently.
fn posix_subset(pattern: &str) -> Result<(), String> {
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('\\', Some(next)) if next.is_ascii_alphanumeric() => {
                return Err(format!(
                    "'{}': \\{next} is not POSIX (librdkafka matches patterns with POSIX extended regular expressions): \
                     write a bracket expression such as [0-9] for \\d, [A-Za-z0-9_] for \\w",
                    pattern.escape_debug()
                ))
            }
            ('\\', Some(_)) => {
                chars.next();
            }
            ('(', Some('?')) => {
                return Err(format!(
                    "'{}': (?...) groups and flags are not POSIX (librdkafka matches patterns with POSIX extended regular expressions)",
                    pattern.escape_debug()
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

impl std::fmt::Display for TopicSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries: Vec<&str> = self.entries().collect();
        f.write_str(&entries.join(","))
    }
}

/// Two sets are equal when they have the same entries as written, in the same order.
impl PartialEq for TopicSet {
    fn eq(&self, other: &TopicSet) -> bool {
        self.entries().eq(other.entries())
    }
}

/// Tests compare a set with the entries they expect, as written.
impl<const N: usize> PartialEq<[&str; N]> for TopicSet {
    fn eq(&self, other: &[&str; N]) -> bool {
        self.entries().eq(other.iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caret_entry_is_a_pattern_matched_from_the_start_and_anywhere_after_unless_it_ends_with_dollar() {
        let set = TopicSet::parse("orders, ^audit\\..*, ^metrics-[0-9]+$").unwrap();
        assert!(set.has_patterns());
        assert_eq!(set.names().collect::<Vec<_>>(), ["orders"]);
        for (topic, expected) in [
            ("orders", true),
            ("orders2", false),
            ("audit.eu", true),
            ("xaudit.eu", false),
            ("auditx", false),
            ("metrics-12", true),
            ("metrics-12a", false),
        ] {
            assert_eq!(set.matches(topic), expected, "{topic}");
        }
        assert_eq!(set, ["orders", "^audit\\..*", "^metrics-[0-9]+$"]);
    }

    #[test]
    fn patterns_never_match_internal_topics_but_names_do() {
        let set = TopicSet::parse("^.*").unwrap();
        assert!(set.matches("orders") && !set.matches("__consumer_offsets"));
        assert!(TopicSet::parse("__consumer_offsets").unwrap().matches("__consumer_offsets"));
    }

    #[test]
    fn a_pattern_outside_what_posix_and_rust_agree_on_is_refused() {
        let error = TopicSet::parse("^orders-\\d+$").unwrap_err();
        assert!(error.contains("\\d is not POSIX") && error.contains("[0-9]"), "{error}");
        assert!(TopicSet::parse("^(?i)orders").unwrap_err().contains("(?...)"));
        assert!(TopicSet::parse("^orders\\.eu-[0-9]+$").is_ok(), "escaped punctuation is the same in both");
    }

    #[test]
    fn a_bad_pattern_or_name_is_refused_naming_it() {
        let error = TopicSet::parse("ok,^bad(").unwrap_err();
        assert!(error.contains("'^bad('") && error.contains("regular expression"), "{error}");
        let error = TopicSet::parse("ok,bad name").unwrap_err();
        assert!(error.contains("'bad name'") && error.contains("nor a pattern"), "{error}");
        assert!(TopicSet::parse(" , ").is_err());
    }

    #[test]
    fn a_set_covers_names_it_matches_and_patterns_it_holds_as_written() {
        let uploads = TopicSet::parse("^orders.*,audit").unwrap();
        let consumed = TopicSet::parse("orders-eu,audit").unwrap();
        assert_eq!(uploads.first_not_covered(&consumed), None);
        let consumed = TopicSet::parse("orders-eu,^orders.*").unwrap();
        assert_eq!(uploads.first_not_covered(&consumed), None);
        let consumed = TopicSet::parse("^orders-.*").unwrap();
        assert_eq!(
            uploads.first_not_covered(&consumed),
            Some("^orders-.*"),
            "a narrower pattern is not proven covered"
        );
        let consumed = TopicSet::parse("audit,payments").unwrap();
        assert_eq!(uploads.first_not_covered(&consumed), Some("payments"));
    }

    #[test]
    fn select_expands_patterns_over_the_clusters_topics_and_reports_missing_names() {
        let set = TopicSet::parse("^orders-.*,audit,gone").unwrap();
        let (selected, missing) = set.select(["orders-eu", "audit", "payments", "orders-us", "__consumer_offsets"]);
        assert_eq!(selected, ["orders-eu", "audit", "orders-us"]);
        assert_eq!(missing, ["gone"]);
    }
}
