//! `[groups]`: the consumer groups whose committed offsets the daemon keeps in the archive.

use std::time::Duration;

use super::super::values::seconds;
use super::super::{ConfigError, GroupsConfig};
use super::View;

pub(super) const GROUPS_KEYS: &[&str] = &["archive_groups", "archive_groups_interval_seconds"];

/// Often enough that a restore after a disaster replays at most a minute of what consumers had
/// already processed; a snapshot is one small object.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// None unless `archive_groups` is set.
pub(super) fn groups(view: &View) -> Result<Option<GroupsConfig>, ConfigError> {
    let interval = view.or_default("archive_groups_interval_seconds", DEFAULT_INTERVAL, |v| {
        seconds(v, 1.0, true, "a number of seconds >= 1")
    })?;
    let Some(archive_groups) = view.optional("archive_groups", group_pattern)? else {
        return Ok(None);
    };
    Ok(Some(GroupsConfig { archive_groups, interval }))
}

/// A regular expression that must match a whole group name, as Kafka's own tools take one.
fn group_pattern(value: &str) -> Result<regex::Regex, String> {
    crate::names::whole_name_pattern(value)
        .map_err(|why| format!("a regular expression matching whole group names ({why})"))
}
