//! `kafkatos3 export`: the archive as a dataset that query engines read, derived from the MAK
//! objects (the archive of record) without a second pass over Kafka.
//!
//! - [`parquet`]: archived records as one Parquet file (the schema, the encoding).
//! - [`layout`]: where they go - folders by topic and hour, file names from the object's offsets -
//!   and one archive object split into its files.

pub mod layout;
pub mod parquet;
