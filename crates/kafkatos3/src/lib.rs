//! kafkatos3: archive Kafka topics to S3 as MAK files.
//!
//! The pipeline, one module per stage, wired back to front in [`daemon`]:
//!
//! - [`consumer`]: librdkafka consumers in the group; [`rebalance`] settles partitions on
//!   assignment ([`frontiers`] asks S3 where each resumes, [`adopt`] judges local files) and
//!   revocation (hand-over).
//! - [`spool`]: per-partition open MAK files in `inprogress/`, sealed into `tocompress/`;
//!   [`record`] turns a consumed message into the record appended (no copy, no allocation).
//! - [`compress`]: gzip into `tos3/`.
//! - [`upload`]: to S3 ([`s3`] builds the client, [`archive`] names the objects and reads how
//!   far S3 holds a partition), confirmations to the [`ledger`].
//! - [`ledger`]: the commit rule, in one place.
//! - [`budget`]: `memory_limit_bytes` split into one share per buffering stage.
//! - [`orphans`]: local files of partitions owned elsewhere, resolved after a timeout.
//! - [`recover`]: startup recovery of the working directory ([`layout`]), [`durable`] file ops.
//!
//! Tools: [`parse`] (`kafkatos3_parse`), [`rotate`] (`kafkatos3_rotate`) and [`verify`]
//! (`kafkatos3 verify`).

pub mod adopt;
pub mod archive;
pub mod backpressure;
pub mod budget;
pub mod compress;
pub mod config;
pub mod consumer;
pub mod daemon;
pub mod durable;
pub mod frontiers;
pub mod layout;
pub mod ledger;
pub mod lock;
pub mod logging;
pub mod nice;
pub mod orphans;
pub mod parse;
pub mod pipeline;
pub mod rebalance;
pub mod record;
pub mod recover;
pub mod rotate;
pub mod s3;
pub mod shared;
pub mod spool;
pub mod throttle;
pub mod upload;
pub mod verify;
