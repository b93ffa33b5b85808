//! Consumed records copied off librdkafka's buffers into one flat byte buffer, for the consumer's
//! writer thread: the consumer thread does one copy per record and nothing else, and the buffer
//! is reused, so neither side allocates per record.
//!
//! A record is laid out as: topic index (u32), partition (i32), offset (i64), timestamp (i64),
//! timestamp type (u8), key length, value length (i32, -1 for null), header count (u32), then
//! the key, the value and each header as key length (u32), value length (i32, -1 for null), key,
//! value. Native byte order: the bytes never leave the process.

use mak::v2::{RecordRef, TimestampType};
use rdkafka::message::Timestamp;

use crate::kafka::fetch_queue::Fetched;

/// Topic names remembered across batches beyond this many are forgotten at the next clear, so
/// a consumer of thousands of topics does not keep every name twice.
const TOPICS_KEPT: usize = 64;

const FIXED_LEN: usize = 4 + 4 + 8 + 8 + 1 + 4 + 4 + 4;

#[derive(Debug, Default)]
pub struct Batch {
    bytes: Vec<u8>,
    /// The topics named by index in `bytes`.
    topics: Vec<String>,
    /// The topic of the last record pushed: consecutive records mostly share it.
    last_topic: usize,
    records: usize,
}

impl Batch {
    /// Bytes held: what the hand-over's capacity bounds.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    #[cfg(test)]
    pub fn records(&self) -> usize {
        self.records
    }

    /// Empties the batch, keeping its buffer unless a record far larger than `capacity` grew it.
    pub fn clear(&mut self, capacity: usize) {
        self.bytes.clear();
        if self.bytes.capacity() > 2 * capacity {
            self.bytes.shrink_to(capacity);
        }
        if self.topics.len() > TOPICS_KEPT {
            self.topics.clear();
        }
        self.last_topic = 0;
        self.records = 0;
    }

    /// Copies `record` in: one reservation, then its fields, key, value and headers.
    pub fn push(&mut self, record: &impl Fetched) {
        let topic = self.topic_index(record.topic());
        let key = record.key();
        let value = record.value();
        let header_count = record.header_count();
        let mut len = FIXED_LEN + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len);
        for index in 0..header_count {
            let (name, value) = record.header(index);
            len += 8 + name.len() + value.map_or(0, <[u8]>::len);
        }
        self.bytes.reserve(len);
        let (timestamp, timestamp_type) = timestamp_of(record.timestamp());
        self.put(&topic.to_ne_bytes());
        self.put(&record.partition().to_ne_bytes());
        self.put(&record.offset().to_ne_bytes());
        self.put(&timestamp.to_ne_bytes());
        self.bytes.push(timestamp_type as u8);
        self.put(&len_of(key).to_ne_bytes());
        self.put(&len_of(value).to_ne_bytes());
        self.put(&(header_count as u32).to_ne_bytes());
        self.put(key.unwrap_or_default());
        self.put(value.unwrap_or_default());
        for index in 0..header_count {
            let (name, value) = record.header(index);
            self.put(&(name.len() as u32).to_ne_bytes());
            self.put(&len_of(value).to_ne_bytes());
            self.put(name.as_bytes());
            self.put(value.unwrap_or_default());
        }
        self.records += 1;
    }

    fn put(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    fn topic_index(&mut self, topic: &str) -> u32 {
        if self.topics.get(self.last_topic).is_none_or(|last| last != topic) {
            self.last_topic = match self.topics.iter().position(|known| known == topic) {
                Some(index) => index,
                None => {
                    self.topics.push(topic.to_string());
                    self.topics.len() - 1
                }
            };
        }
        self.last_topic as u32
    }

    /// Reads the records back in the order pushed.
    pub fn reader(&self) -> Reader<'_> {
        Reader { batch: self, cursor: Cursor { bytes: &self.bytes, at: 0 } }
    }

    /// Calls `f` with each record's topic, partition and record, in the order pushed (the tests'
    /// view; the writer reads runs of a partition through [`Batch::reader`]).
    #[cfg(test)]
    pub fn for_each(&self, mut f: impl FnMut(&str, i32, &RecordRef<'_>)) {
        let mut headers = Vec::new();
        let mut reader = self.reader();
        while let Some(entry) = reader.next(&mut headers) {
            f(entry.topic, entry.partition, &entry.record);
        }
    }
}

/// A record read back from a batch.
pub struct Entry<'a, 's> {
    /// The topic's index in its batch: records of one partition share (topic_index, partition).
    pub topic_index: u32,
    pub topic: &'a str,
    pub partition: i32,
    pub record: RecordRef<'s>,
}

pub struct Reader<'a> {
    batch: &'a Batch,
    cursor: Cursor<'a>,
}

/// A record's headers, read into a vector the caller keeps across records.
pub type HeaderScratch<'a> = Vec<(&'a str, Option<&'a [u8]>)>;

impl<'a> Reader<'a> {
    /// The next record, its headers read into `headers` (reused, so nothing is allocated per
    /// record once it has grown).
    pub fn next<'s>(&mut self, headers: &'s mut HeaderScratch<'a>) -> Option<Entry<'a, 's>> {
        let cursor = &mut self.cursor;
        if cursor.at >= cursor.bytes.len() {
            return None;
        }
        let topic_index = cursor.u32();
        let partition = cursor.i32();
        let offset = cursor.i64();
        let timestamp = cursor.i64();
        let timestamp_type = TimestampType::from_byte(cursor.take(1)[0]).unwrap_or(TimestampType::NotAvailable);
        let key_len = cursor.i32();
        let value_len = cursor.i32();
        let header_count = cursor.u32();
        let key = cursor.nullable(key_len);
        let value = cursor.nullable(value_len);
        headers.clear();
        for _ in 0..header_count {
            let key_len = cursor.u32() as usize;
            let value_len = cursor.i32();
            // Copied from rdkafka's `&str`: valid UTF-8.
            let key = std::str::from_utf8(cursor.take(key_len)).unwrap_or_default();
            headers.push((key, cursor.nullable(value_len)));
        }
        let topic = &self.batch.topics[topic_index as usize];
        let record = RecordRef { offset, timestamp, timestamp_type, key, value, headers: &*headers };
        Some(Entry { topic_index, topic, partition, record })
    }
}

fn len_of(bytes: Option<&[u8]>) -> i32 {
    // librdkafka's records are bounded by message.max.bytes, far below i32::MAX.
    bytes.map_or(-1, |b| b.len() as i32)
}

/// rdkafka's timestamp as MAK version 2 stores it: milliseconds (-1 when not available) and type.
pub fn timestamp_of(timestamp: Timestamp) -> (i64, TimestampType) {
    match timestamp {
        Timestamp::NotAvailable => (-1, TimestampType::NotAvailable),
        Timestamp::CreateTime(ms) => (ms, TimestampType::CreateTime),
        Timestamp::LogAppendTime(ms) => (ms, TimestampType::LogAppendTime),
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize) -> &'a [u8] {
        let taken = &self.bytes[self.at..self.at + len];
        self.at += len;
        taken
    }

    fn nullable(&mut self, len: i32) -> Option<&'a [u8]> {
        (len >= 0).then(|| self.take(len as usize))
    }

    fn u32(&mut self) -> u32 {
        u32::from_ne_bytes(self.take(4).try_into().expect("4 bytes"))
    }

    fn i32(&mut self) -> i32 {
        i32::from_ne_bytes(self.take(4).try_into().expect("4 bytes"))
    }

    fn i64(&mut self) -> i64 {
        i64::from_ne_bytes(self.take(8).try_into().expect("8 bytes"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::fetch_queue::Polled;
    use rdkafka::message::{Header, Headers, Message, OwnedHeaders, OwnedMessage};

    fn message(topic: &str, partition: i32, offset: i64, key: Option<&[u8]>, value: Option<&[u8]>) -> OwnedMessage {
        let headers = OwnedHeaders::new()
            .insert(Header { key: "h", value: Some(b"1".as_slice()) })
            .insert(Header { key: "h", value: None::<&[u8]> })
            .insert(Header { key: "", value: Some(b"".as_slice()) });
        OwnedMessage::new(
            value.map(<[u8]>::to_vec),
            key.map(<[u8]>::to_vec),
            topic.to_string(),
            Timestamp::CreateTime(1_700_000_000_000 + offset),
            partition,
            offset,
            (offset % 2 == 0).then_some(headers),
        )
    }

    type Seen = (String, i32, i64, i64, Option<Vec<u8>>, Option<Vec<u8>>, Vec<(String, Option<Vec<u8>>)>);

    fn read(batch: &Batch) -> Vec<Seen> {
        let mut seen = Vec::new();
        batch.for_each(|topic, partition, record| {
            let headers = (0..record.headers.header_count())
                .map(|i| record.headers.header_at(i))
                .map(|(k, v)| (k.to_string(), v.map(<[u8]>::to_vec)))
                .collect();
            assert_eq!(record.timestamp_type, TimestampType::CreateTime);
            seen.push((
                topic.to_string(),
                partition,
                record.offset,
                record.timestamp,
                record.key.map(<[u8]>::to_vec),
                record.value.map(<[u8]>::to_vec),
                headers,
            ));
        });
        seen
    }

    #[test]
    fn records_come_out_as_pushed_with_null_and_empty_kept_apart_and_headers_in_order() {
        let messages = [
            message("a", 0, 5, None, Some(b"v")),
            message("a", 0, 6, Some(b""), None),
            message("b-topic", 3, 7, Some(b"k"), Some(b"")),
            message("a", 1, 8, Some(&[0xff, 0, 1]), Some(&[9; 3000])),
        ];
        let mut batch = Batch::default();
        for m in &messages {
            batch.push(&Polled(m));
        }
        assert_eq!(batch.records(), 4);
        let seen = read(&batch);
        for (m, s) in messages.iter().zip(&seen) {
            assert_eq!((m.topic(), m.partition(), m.offset()), (s.0.as_str(), s.1, s.2));
            assert_eq!(s.3, 1_700_000_000_000 + m.offset());
            assert_eq!((m.key(), m.payload()), (s.4.as_deref(), s.5.as_deref()));
            let expected: Vec<(String, Option<Vec<u8>>)> = m
                .headers()
                .map_or(Vec::new(), |h| h.iter().map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec))).collect());
            assert_eq!(s.6, expected);
        }
        assert_eq!(seen[0].6.len(), 0, "odd offsets carry no headers");
        assert_eq!(seen[1].6[1], ("h".to_string(), None), "a null header value stays null");
    }

    #[test]
    fn a_cleared_batch_holds_nothing_and_keeps_its_buffer_for_the_next_records() {
        let mut batch = Batch::default();
        batch.push(&Polled(&message("a", 0, 1, None, Some(&[1; 100]))));
        let capacity = batch.bytes.capacity();
        batch.clear(1 << 20);
        assert!(batch.is_empty() && batch.byte_len() == 0 && read(&batch).is_empty());
        assert_eq!(batch.bytes.capacity(), capacity);
        batch.push(&Polled(&message("c", 2, 9, None, None)));
        assert_eq!(read(&batch)[0].0, "c");
        // A record far beyond the capacity grew the buffer: it is given back at the clear.
        batch.push(&Polled(&message("c", 2, 10, None, Some(&vec![0; 1 << 20]))));
        batch.clear(64 << 10);
        assert!(batch.bytes.capacity() <= 128 << 10);
    }
}
