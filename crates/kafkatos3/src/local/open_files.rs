//! The process's open-files limit. The daemon keeps one in-progress file open per assigned
//! partition (and briefly a few more per compressor and uploader), so a soft limit of 1024 - the
//! usual default - stops it near a thousand partitions although the hard limit allows far more.
//! The soft limit is raised to the hard one at start, as servers such as Kafka's brokers ask of
//! their service managers.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// The limit before and after [`raise_soft_limit`]; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFilesLimit {
    pub before: Option<u64>,
    pub now: Option<u64>,
    pub hard: Option<u64>,
}

/// Raises the soft open-files limit to the hard limit; the limits as they end up. A refusal
/// leaves the soft limit as it was (and is returned as the error).
pub fn raise_soft_limit() -> Result<OpenFilesLimit, std::io::Error> {
    let limit = getrlimit(Resource::Nofile);
    let (before, hard) = (limit.current, limit.maximum);
    let below_hard = match (before, hard) {
        (Some(soft), Some(hard)) => soft < hard,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if below_hard {
        setrlimit(Resource::Nofile, Rlimit { current: hard, maximum: hard })?;
    }
    let now = getrlimit(Resource::Nofile).current;
    Ok(OpenFilesLimit { before, now, hard })
}

/// Descriptors kept back from the partitions' files for everything else: broker connections
/// and librdkafka's own, compressors' and uploads' files, the store's and the metrics' sockets.
const RESERVED: u64 = 256;

/// The fewest open partition files a consumer is allowed, however low the limit.
const MIN_SHARE: usize = 16;

/// How many partition files each of `consumers` consumers may hold open at once under the
/// process's soft limit as it is now (after [`raise_soft_limit`]); `usize::MAX` when unlimited.
/// Past it, a consumer closes the files it used least recently.
pub fn share_per_consumer(consumers: usize) -> usize {
    share_of(getrlimit(Resource::Nofile).current, consumers)
}

fn share_of(soft: Option<u64>, consumers: usize) -> usize {
    let Some(soft) = soft else {
        return usize::MAX;
    };
    let reserved = RESERVED.min(soft / 4);
    let share = soft.saturating_sub(reserved) / consumers.max(1) as u64;
    usize::try_from(share).unwrap_or(usize::MAX).max(MIN_SHARE)
}

/// True when `error` is the process running out of file descriptors (EMFILE) or the system
/// running out of open files (ENFILE).
pub fn is_too_many_open_files(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(code) if code == rustix::io::Errno::MFILE.raw_os_error() || code == rustix::io::Errno::NFILE.raw_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit_and_never_below_where_it_was() {
        let limit = raise_soft_limit().unwrap();
        assert_eq!(limit.now, limit.hard.or(limit.before), "{limit:?}");
        assert!(limit.now.unwrap_or(u64::MAX) >= limit.before.unwrap_or(u64::MAX), "{limit:?}");
        // A second call finds nothing to raise.
        let again = raise_soft_limit().unwrap();
        assert_eq!((again.before, again.now), (limit.now, limit.now));
    }

    #[test]
    fn each_consumer_shares_what_the_limit_leaves_after_a_reserve() {
        assert_eq!(share_of(Some(1024), 1), 768);
        assert_eq!(share_of(Some(1024), 4), 192);
        assert_eq!(share_of(Some(1_048_576), 2), (1_048_576 - 256) / 2);
        assert_eq!(share_of(Some(64), 8), MIN_SHARE, "never below the minimum");
        assert_eq!(share_of(None, 3), usize::MAX);
    }

    #[test]
    fn emfile_and_enfile_are_too_many_open_files_and_other_errors_are_not() {
        for code in [rustix::io::Errno::MFILE, rustix::io::Errno::NFILE] {
            assert!(is_too_many_open_files(&std::io::Error::from_raw_os_error(code.raw_os_error())));
        }
        assert!(!is_too_many_open_files(&std::io::Error::from_raw_os_error(rustix::io::Errno::NOSPC.raw_os_error())));
        assert!(!is_too_many_open_files(&std::io::Error::other("x")));
    }
}
