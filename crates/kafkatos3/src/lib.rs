//! kafkatos3: archive Kafka topics to S3 as MAK files.

pub mod archive;
pub mod config;
pub mod daemon;
pub mod local;
pub mod names;
pub mod observe;
pub mod pipeline;
pub mod tools;
