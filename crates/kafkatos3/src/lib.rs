//! kafkatos3: archive Kafka topics to S3 as MAK files, and read the archive back.
//!
//! The component map. Each folder is one room; what a room may use is listed with it, and
//! `tests/architecture.rs` checks the imports against it.
//!
//! - [`daemon`]: start-up (lock, [`daemon::recover`]), the wiring of the stages back to front,
//!   signals, shutdown. May use everything.
//! - [`pipeline`]: the stages in data-flow order, each a struct holding only what it uses:
//!   - [`pipeline::consume`]: librdkafka consumers; the rebalance protocol, the resume point
//!     ([`pipeline::consume::resume`]), adoption of local files, back-pressure
//!     ([`pipeline::consume::pauses`]), offset commits ([`pipeline::consume::commit`]);
//!   - [`pipeline::spool`]: per-partition open files in `inprogress/`;
//!   - [`pipeline::compress`]: `tocompress/` -> `tos3/`;
//!   - [`pipeline::upload`]: `tos3/` -> the archive, confirmations to the ledger;
//!   - [`pipeline::leftovers`]: local files of partitions owned elsewhere;
//!   - between them: [`pipeline::wake`], [`pipeline::resync`] (who may ask for a resync and who
//!     applies it), [`pipeline::stop`].
//!
//!   May use `archive`, `local`, `kafka`, `config`, `observe`, `names`, rdkafka.
//! - [`local`]: the working directory - its layout, durable file operations, the ledger (the
//!   commit rule and upload markers), the backlog count, the original's legacy list, sealing,
//!   the directory lock. May use `config`, `names`; never Kafka, never the object store.
//! - [`archive`]: the archive in the object store, shared by the daemon and every tool - keys
//!   and claims (the fence), the chain and its end, the catalog, the one object reader, the store
//!   client. May use `config`, `names`; never `local` or `pipeline`, never rdkafka.
//! - [`tools`]: `parse`, `verify`, `ls`, `restore`, `export`, `rotate` - libraries that return what they found; their
//!   binaries print it. May use `archive`, `local`, `kafka`, `config`, `names`; never `pipeline`.
//! - [`observe`]: logging and the log rate limit, the metrics, health and their HTTP endpoints.
//!   May use `config`, `names`.
//! - [`kafka`]: what every librdkafka client shares - how it is made, and its OAUTHBEARER tokens
//!   (Amazon MSK IAM, signed with the AWS credential chain of `archive::store`); a consumer's
//!   records a batch at a time (`fetch_queue`, the crate's only `unsafe` code). May use
//!   `config`, `archive`, `names`.
//! - [`config`]: the config file, validated in one step; the memory budget; the librdkafka
//!   client settings. May use `names`.
//! - [`names`]: what the working directory and the archive both name: a topic partition, the
//!   original's file name for a run of offsets, the suffixes of stored files.
//!
//! Unit tests live at the end of their module (`mod tests`), or in a `tests.rs` beside `mod.rs`
//! when the module is a folder; the end-to-end tests, against a real broker and S3 server, are
//! in `tests/`.

pub mod archive;
pub mod config;
pub mod daemon;
pub mod kafka;
pub mod local;
pub mod names;
pub mod observe;
pub mod pipeline;
pub mod tools;
