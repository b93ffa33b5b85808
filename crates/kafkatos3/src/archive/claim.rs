//! Claims: the fence between instances. A claim `<topic>-<partition>_<first>.claim` is a line of
//! JSON naming the one data object that holds the partition from `first` to `last`. It is created
//! once (`If-None-Match: *`, see [`super::fence`]) and never changed. Two files that start at the
//! same offset - the only way two instances can overlap, see docs/design.md - compete for one
//! claim key whatever their last offsets, codecs or encryption, and exactly one wins.
//!
//! A data object counts once a claim names it: it is written before its claim, so a claim never
//! names a missing object, and an object left unclaimed by a crash or a lost race is not part of
//! the archive. Claims are plain text even when the data is encrypted, so the frontier, the fence
//! and `verify` need no key.

use object_store::path::Path as ObjectPath;
use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use super::keys::{object_file_name, parse_file_name, ArchiveKey, ObjectName};
use super::{Archive, ArchiveError};
use crate::names::{SealedName, TopicPartition};

/// A claim larger than this is not one of ours.
const CLAIM_MAX: u64 = 64 * 1024;

/// Why the bytes at a claim key are not a sound claim.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimProblem {
    #[error("{size} bytes: too large for a claim")]
    TooLarge { size: u64 },
    #[error("not a claim: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("claims offsets {first} to {last}")]
    Backwards { first: i64, last: i64 },
    /// The body names another partition or first offset than its key.
    #[error("claims {tp} from offset {first}, not what its key names")]
    NotItsKey { tp: TopicPartition, first: i64 },
    /// The object it names is not called by the claim's partition and offsets.
    #[error("names {object}, whose name does not hold offsets {first}-{last}")]
    ObjectNameDisagrees { object: String, first: i64, last: i64 },
    /// Listed a moment ago, gone now: claims are never deleted, so someone else works on the bucket.
    #[error("listed but not found")]
    Vanished,
    /// Refused our conditional create, then could not be found: claims are never deleted.
    #[error("it disappeared after refusing our write")]
    Disappeared,
}

/// The body of a claim: which data object holds the partition from `first` to `last`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub topic: String,
    pub partition: i32,
    pub first: i64,
    pub last: i64,
    /// The data object's file name, in the same folder.
    pub object: String,
}

impl Claim {
    pub fn new(name: &SealedName, suffix: &str) -> Claim {
        Claim {
            topic: name.tp.topic.clone(),
            partition: name.tp.partition,
            first: name.start,
            last: name.end,
            object: object_file_name(name, suffix),
        }
    }

    pub fn tp(&self) -> TopicPartition {
        TopicPartition::new(&self.topic, self.partition)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec(self).expect("a claim serializes");
        bytes.push(b'\n');
        bytes
    }

    /// A claim is sound at its key only when it claims what the key names.
    pub fn check_key(&self, tp: &TopicPartition, start: i64) -> Result<(), ClaimProblem> {
        if self.tp() != *tp || self.first != start {
            return Err(ClaimProblem::NotItsKey { tp: self.tp(), first: self.first });
        }
        Ok(())
    }

    /// The data object the claim names, as its name reads; it must hold the claimed offsets.
    pub fn object_name(&self) -> Result<ObjectName, ClaimProblem> {
        match parse_file_name(&self.object) {
            Some(ArchiveKey::Object(name))
                if name.tp == self.tp() && name.start == self.first && name.end == self.last && !name.original =>
            {
                Ok(name)
            }
            _ => Err(ClaimProblem::ObjectNameDisagrees {
                object: self.object.clone(),
                first: self.first,
                last: self.last,
            }),
        }
    }
}

impl Archive {
    /// The claim at `key`, or None when there is none (one GET of a few bytes).
    pub async fn read_claim(&self, key: &ObjectPath) -> Result<Option<Claim>, ArchiveError> {
        let result = match self.store().get(key).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(source) => return Err(self.store_error(key, source)),
        };
        if result.meta.size > CLAIM_MAX {
            return Err(self.claim_error(key, ClaimProblem::TooLarge { size: result.meta.size }));
        }
        let bytes = result.bytes().await.map_err(|source| self.store_error(key, source))?;
        let claim: Claim =
            serde_json::from_slice(&bytes).map_err(|e| self.claim_error(key, ClaimProblem::NotJson(e)))?;
        if claim.last < claim.first {
            return Err(self.claim_error(key, ClaimProblem::Backwards { first: claim.first, last: claim.last }));
        }
        Ok(Some(claim))
    }

    /// The claim on the partition from `start`, checked to be the one its key names.
    pub async fn claim_at(&self, tp: &TopicPartition, start: i64) -> Result<Option<Claim>, ArchiveError> {
        let key = self.location().claim_key(tp, start);
        let Some(claim) = self.read_claim(&key).await? else {
            return Ok(None);
        };
        claim.check_key(tp, start).map_err(|problem| self.claim_error(&key, problem))?;
        Ok(Some(claim))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealed(start: i64, end: i64) -> SealedName {
        SealedName { tp: TopicPartition::new("t", 1), start, end, date: "261130".into() }
    }

    #[test]
    fn a_claim_round_trips_as_one_line_of_json() {
        let claim = Claim::new(&sealed(5, 9), ".mak.gz");
        let bytes = claim.to_bytes();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            "{\"topic\":\"t\",\"partition\":1,\"first\":5,\"last\":9,\"object\":\"t-1_00000000000000000005-00000000000000000009.mak.gz\"}\n"
        );
        assert_eq!(serde_json::from_slice::<Claim>(&bytes).unwrap(), claim);
    }

    #[test]
    fn a_claim_is_sound_only_for_its_own_key_and_an_object_named_by_its_offsets() {
        let claim = Claim::new(&sealed(5, 9), ".mak.zst");
        assert!(claim.check_key(&TopicPartition::new("t", 1), 5).is_ok());
        assert!(matches!(claim.check_key(&TopicPartition::new("t", 1), 6), Err(ClaimProblem::NotItsKey { .. })));
        assert!(matches!(claim.check_key(&TopicPartition::new("t", 2), 5), Err(ClaimProblem::NotItsKey { .. })));
        assert_eq!(claim.object_name().unwrap().end, 9);
        let wrong = Claim { last: 10, ..claim.clone() };
        assert!(matches!(wrong.object_name(), Err(ClaimProblem::ObjectNameDisagrees { .. })));
        let original = Claim { object: "t-1_5-9_261130.mak.gz".into(), ..claim };
        assert!(original.object_name().is_err(), "the original's objects are never claimed");
    }
}
