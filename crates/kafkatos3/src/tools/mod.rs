//! The tools beside the daemon, built on [`crate::archive`] (and, for `rotate`, on
//! [`crate::local`]), never on the pipeline. Each returns what it found - records written to the
//! output it is given, a report, one outcome per file - and its binary prints it.
//!
//! - [`parse`]: `kafkatos3_parse` / `kafkatos3 parse`: print one archive object or MAK file.
//! - [`verify`]: `kafkatos3 verify`: check a whole archive.
//! - [`ls`]: `kafkatos3 ls`: what an archive holds per topic and partition.
//! - [`export`]: `kafkatos3 export`: the archive as a Parquet dataset for query engines, exactly
//!   once and incrementally.
//! - [`restore`]: `kafkatos3 restore`: the archive produced back into Kafka, exactly once.
//! - [`source`]: the flags that name the archive a tool reads (config file, bucket, prefix, keys).
//! - [`selection`]: the flags that select archived records (topics, partitions, offsets, times)
//!   and the cut they make of a partition.
//! - [`progress`]: how far `verify` and `ls` are, on stderr.
//! - [`rotate`]: `kafkatos3_rotate`: seal the in-progress files of a stopped daemon.

pub mod export;
pub mod ls;
pub mod parse;
pub mod progress;
pub mod restore;
pub mod rotate;
pub mod selection;
pub mod source;
pub mod verify;
