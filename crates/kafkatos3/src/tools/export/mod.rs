//! `kafkatos3 export`: the archive as a dataset that query engines read, derived from the MAK
//! objects (the archive of record) without a second pass over Kafka.
//!
//! - [`parquet`]: archived records as one Parquet file (the schema, the encoding).

pub mod parquet;
