//! The chain: a partition's archive is a chain of objects, each starting one past the end of the
//! previous one, and every offset an instance resumes at is a point of it (docs/design.md,
//! "Fencing"). Following it from a known point costs one small GET per claim and one answered
//! "not found" at the end.

use super::listing::Listing;
use super::{Archive, ArchiveError, ClaimProblem};
use crate::names::TopicPartition;

impl Archive {
    /// The first offset at or after `from` that the archive does not hold for the partition,
    /// following the chain of claims that start where the previous one ended. `from` must be a
    /// point of the chain (a committed offset or the end of an uploaded file plus one), which
    /// every offset the daemon resumes at is.
    pub async fn frontier(&self, tp: &TopicPartition, from: i64) -> Result<i64, ArchiveError> {
        let mut next = from;
        while let Some(claim) = self.claim_at(tp, next).await? {
            next = claim.last + 1;
        }
        Ok(next)
    }

    /// One past the highest offset any object of the partition holds, or None when the archive
    /// holds none: for a partition nothing else is known about (no committed offset, no local
    /// state). Lists the partition's own folder only, then reads the last claim.
    pub async fn listed_end(&self, tp: &TopicPartition) -> Result<Option<i64>, ArchiveError> {
        let listing = Listing::list(self, Some(&self.location().partition_dir(tp))).await?;
        // The original's objects have no claims: their names tell their offsets.
        let mut end = listing.objects().filter(|(_, name)| name.original && name.tp == *tp).map(|(_, n)| n.end).max();
        let last_claim = listing.claims().filter(|(claim_tp, _)| *claim_tp == tp).map(|(_, start)| start).max();
        if let Some(start) = last_claim {
            let key = self.location().claim_key(tp, start);
            let claim =
                self.claim_at(tp, start).await?.ok_or_else(|| self.claim_error(&key, ClaimProblem::Vanished))?;
            end = Some(end.map_or(claim.last, |end| end.max(claim.last)));
        }
        // The chain may go on past the last listed object if one was created meanwhile.
        match end {
            Some(end) => Ok(Some(self.frontier(tp, end + 1).await?)),
            None => Ok(None),
        }
    }
}
