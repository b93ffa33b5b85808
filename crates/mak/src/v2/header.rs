//! The header JSON of versions 2 and 3: three required keys, two informational ones, unknown keys
//! ignored so later minor additions need no version change.

use serde::{Deserialize, Serialize};

use crate::error::{HeaderProblem, ReadError};
use crate::v2::HEADER_JSON_AT;

/// The JSON header of a version 2 file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Header {
    /// Kafka topic.
    pub topic: String,
    /// Kafka partition.
    pub partition: i32,
    /// First offset the file was created for.
    pub start_offset: i64,
    /// Creation time in milliseconds since the Unix epoch (informational).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_ms: Option<i64>,
    /// Name and version of the program that created the file (informational).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writer: Option<String>,
}

/// The header as it appears in files: every key optional so a missing one gets a precise error.
#[derive(Deserialize)]
struct RawHeader {
    topic: Option<String>,
    partition: Option<i32>,
    start_offset: Option<i64>,
    created_ms: Option<i64>,
    writer: Option<String>,
}

impl Header {
    /// Checks the values the format does not allow (negative partition or start offset).
    pub fn validate(&self) -> Result<(), HeaderProblem> {
        if self.partition < 0 {
            return Err(HeaderProblem::NegativePartition(self.partition));
        }
        if self.start_offset < 0 {
            return Err(HeaderProblem::NegativeStartOffset(self.start_offset));
        }
        Ok(())
    }

    /// Parses the header JSON found at byte 64 (version 2).
    pub fn from_json(json: &[u8]) -> Result<Header, ReadError> {
        Self::from_json_at(json, HEADER_JSON_AT)
    }

    /// Parses a header JSON found at byte `position` (version 3 keeps it at byte 80).
    pub fn from_json_at(json: &[u8], position: u64) -> Result<Header, ReadError> {
        let raw: RawHeader =
            serde_json::from_slice(json).map_err(|source| ReadError::BadHeaderJson { position, source })?;
        let missing = |field| ReadError::MissingHeaderField { position, field };
        let header = Header {
            topic: raw.topic.ok_or_else(|| missing("topic"))?,
            partition: raw.partition.ok_or_else(|| missing("partition"))?,
            start_offset: raw.start_offset.ok_or_else(|| missing("start_offset"))?,
            created_ms: raw.created_ms,
            writer: raw.writer,
        };
        header.validate().map_err(|problem| ReadError::InvalidHeader { position, problem })?;
        Ok(header)
    }

    /// The header as compact JSON, keys in declaration order.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("strings and integers always serialise to json")
    }
}
