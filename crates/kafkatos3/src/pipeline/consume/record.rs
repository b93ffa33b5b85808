//! A consumed Kafka message as the record the spool appends: borrowed from librdkafka's buffers,
//! headers included, so the hot path copies bytes once (into the writer's buffer) and allocates
//! nothing.

use mak::v2::{HeaderSource, RecordRef, TimestampType};
use rdkafka::message::{BorrowedHeaders, Headers, Message, Timestamp};

/// A message's headers, read in place by index (`BorrowedHeaders` has no `Debug`).
#[derive(Clone, Copy)]
pub struct KafkaHeaders<'a>(pub Option<&'a BorrowedHeaders>);

impl HeaderSource for KafkaHeaders<'_> {
    fn header_count(&self) -> usize {
        self.0.map_or(0, Headers::count)
    }

    fn header_at(&self, index: usize) -> (&str, Option<&[u8]>) {
        let header = self.0.expect("header_at is only called below header_count").get(index);
        (header.key, header.value)
    }
}

/// rdkafka's timestamp as MAK version 2 stores it: milliseconds (-1 when not available) and type.
pub fn timestamp_of(timestamp: Timestamp) -> (i64, TimestampType) {
    match timestamp {
        Timestamp::NotAvailable => (-1, TimestampType::NotAvailable),
        Timestamp::CreateTime(ms) => (ms, TimestampType::CreateTime),
        Timestamp::LogAppendTime(ms) => (ms, TimestampType::LogAppendTime),
    }
}

/// The record to append for `message`, with `headers` made from the same message
/// (`KafkaHeaders(message.headers())`; the caller holds it, the record borrows it).
pub fn record_of<'a, M: Message>(message: &'a M, headers: &'a KafkaHeaders<'a>) -> RecordRef<'a> {
    let (timestamp, timestamp_type) = timestamp_of(message.timestamp());
    RecordRef {
        offset: message.offset(),
        timestamp,
        timestamp_type,
        key: message.key(),
        value: message.payload(),
        headers,
    }
}
