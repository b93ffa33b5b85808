//! A consumer's fetched records taken from librdkafka without rust-rdkafka's per-record `poll`.
//!
//! Each `poll` reads the clock four times, takes the queue's lock, and does rust-rdkafka's event
//! bookkeeping: on a drain that was half of the consumer thread's CPU. Records are taken here with
//! librdkafka's callback call instead, every record queued per [`FetchQueue::take`], from a queue
//! that carries no rebalance events (served there, they would be answered by librdkafka itself,
//! not by the daemon's hand-over): each assigned partition's fetch queue is forwarded into a
//! [`FetchQueue`] of the consumer's own before the partition is assigned, and the consumer's queue
//! keeps the events (rebalances, commits, errors), polled as before.
//!
//! What stays as it was: librdkafka drops records fetched before a seek or an assignment change
//! as it takes them from any queue (its version barrier; not the transaction markers, see
//! [`FetchQueue::take`] and [`seek`]), and a partition that could never be
//! routed delivers its records through the consumer's queue instead, in order. librdkafka keeps a
//! partition's forwarding to an application queue across an unassign, so a partition routed once
//! must be routed again at each assignment (`on_assign` does, before assigning).
//!
//! The one module with `unsafe` code: rust-rdkafka wraps none of these calls (nor
//! [`cached_high_watermark`]'s).
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::ptr::NonNull;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message};
use rdkafka::{Offset, Timestamp, TopicPartitionList};

/// A librdkafka queue the consumer's partitions are forwarded to.
///
/// It must be dropped before its consumer (librdkafka's rule for application queues).
pub struct FetchQueue {
    queue: NonNull<rd::rd_kafka_queue_t>,
    /// The consumer's own queue (the main queue is forwarded to it), to see whether events wait.
    events: NonNull<rd::rd_kafka_queue_t>,
}

// SAFETY: librdkafka's queues and clients may be used from any thread.
unsafe impl Send for FetchQueue {}
unsafe impl Sync for FetchQueue {}

impl std::fmt::Debug for FetchQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchQueue").finish_non_exhaustive()
    }
}

impl FetchQueue {
    pub fn new<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> Self {
        let rk = consumer.client().native_ptr();
        // SAFETY: the client pointer is valid while `consumer` is borrowed; the queues returned
        // are ours to destroy (Drop). A BaseConsumer always has its consumer queue (rdkafka
        // refuses to make one without).
        let (queue, events) = unsafe { (rd::rd_kafka_queue_new(rk), rd::rd_kafka_queue_get_consumer(rk)) };
        FetchQueue {
            queue: NonNull::new(queue).expect("librdkafka makes a queue"),
            events: NonNull::new(events).expect("a BaseConsumer has its consumer queue"),
        }
    }

    /// True while events (rebalances, commit results, errors, logs) wait on the consumer's queue:
    /// rdkafka's `poll` returns after serving one, with or without more behind it.
    pub fn events_waiting(&self) -> bool {
        // SAFETY: a queue handle of ours; librdkafka reads its length under its lock.
        unsafe { rd::rd_kafka_queue_length(self.events.as_ptr()) > 0 }
    }

    /// Forwards the partition's fetched records (and its errors, the end of its log among them)
    /// here. Done before the partition is assigned, so none of its records takes the other way.
    /// False when librdkafka cannot make the partition's queue (a partition never routed then
    /// delivers through the consumer's queue; one routed before would stall: see the module).
    pub fn route<C: ConsumerContext>(&self, consumer: &BaseConsumer<C>, topic: &str, partition: i32) -> bool {
        let Ok(topic) = CString::new(topic) else {
            return false;
        };
        // SAFETY: valid client pointer and NUL-ended name; the partition queue handle returned is
        // released at once (the forwarding holds its own reference to our queue).
        unsafe {
            let partition_queue =
                rd::rd_kafka_queue_get_partition(consumer.client().native_ptr(), topic.as_ptr(), partition);
            if partition_queue.is_null() {
                return false;
            }
            rd::rd_kafka_queue_forward(partition_queue, self.queue.as_ptr());
            rd::rd_kafka_queue_destroy(partition_queue);
        }
        true
    }

    /// Records waiting in the queue (fetched, not taken yet).
    pub fn len(&self) -> usize {
        // SAFETY: a queue handle of ours; librdkafka reads its length under its lock.
        unsafe { rd::rd_kafka_queue_length(self.queue.as_ptr()) }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes every record queued when the first arrives (waiting up to `wait` for it) and hands
    /// each to `record` in the order fetched, errors as rdkafka reports them; records fetched
    /// during the call are left to the next. Returns how many were taken. `record` may block
    /// (the hand-over's back-pressure): the records not handed over yet wait in librdkafka.
    ///
    /// One `rd_kafka_consume_callback_queue`, which moves the queue's contents out under one
    /// lock and serves them without reading the clock per record:
    /// - not `rd_kafka_consume_batch_queue`, which moves the application's position past every
    ///   error's offset (librdkafka issue 4844: after an end-of-partition event, log end + 1,
    ///   which a pause and resume would fetch from, skipping a record); this call moves it for
    ///   records only, drops records fetched before a seek or an assignment change, and keeps
    ///   `max.poll.interval.ms` informed, as rdkafka's `poll` does;
    /// - not `rd_kafka_consume_queue`, which pops one record per call and reads the clock twice
    ///   for it (a fifth of the consumer thread's time on a drain);
    /// - never cut short with `rd_kafka_yield`: the records not served would go back to the
    ///   queue's head on top of what librdkafka fetched meanwhile (it sees the queue empty
    ///   while a call serves), so the queue would grow past `queued.max.messages.kbytes` at
    ///   every cut. Served whole, a call holds at most one full queue besides the queue itself,
    ///   which the memory budget counts (`config::budget`).
    ///
    /// One catch: librdkafka handles a transaction marker (moving the application's position to
    /// the marker's offset + 1) before this call drops what was fetched before a seek, a pause or
    /// an assignment change, so after such a change the position may stand past records not
    /// delivered yet, until the partition's next record. A pause copies the position as the place
    /// to resume from: every pause must be followed by a seek to where the partition really
    /// continues ([`seek`]; `pipeline::consume::hold` does it for the daemon).
    pub fn take(&self, wait: Duration, record: &mut dyn FnMut(Result<&FetchedRecord<'_>, FetchError>)) -> usize {
        let timeout_ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX);
        let mut serving = Serving { record, taken: 0, panic: None };
        // SAFETY: a queue of ours, alive while `self` is; `serving` outlives the call, which runs
        // the callback on this thread only and destroys each message after it.
        unsafe {
            rd::rd_kafka_consume_callback_queue(
                self.queue.as_ptr(),
                timeout_ms,
                Some(serve_one),
                (&mut serving as *mut Serving<'_>).cast(),
            );
        }
        if let Some(panic) = serving.panic {
            std::panic::resume_unwind(panic);
        }
        serving.taken
    }
}

/// What [`serve_one`] works with during one [`FetchQueue::take`].
struct Serving<'a> {
    record: &'a mut dyn FnMut(Result<&FetchedRecord<'_>, FetchError>),
    taken: usize,
    /// A panic of `record`, resumed once librdkafka's call has returned (it must not unwind
    /// through C); the call's remaining records are dropped unseen.
    panic: Option<Box<dyn std::any::Any + Send>>,
}

/// librdkafka's callback for each message of a take; librdkafka destroys the message after it.
unsafe extern "C" fn serve_one(message: *mut rd::rd_kafka_message_t, opaque: *mut std::ffi::c_void) {
    // SAFETY: `opaque` is the `Serving` of the `take` running on this thread.
    let serving = unsafe { &mut *opaque.cast::<Serving<'_>>() };
    if message.is_null() || serving.panic.is_some() {
        return;
    }
    serving.taken += 1;
    // SAFETY: a live message until this callback returns; the view does not outlive it.
    let view = FetchedRecord { message: unsafe { &*message } };
    let record = &mut serving.record;
    let served = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match view.error() {
        None => record(Ok(&view)),
        Some(error) => record(Err(error)),
    }));
    if let Err(panic) = served {
        serving.panic = Some(panic);
    }
}

impl Drop for FetchQueue {
    fn drop(&mut self) {
        // SAFETY: our handles, destroyed once; messages still forwarded here are dropped by
        // librdkafka (the consumer's queue lives on with the client).
        unsafe {
            rd::rd_kafka_queue_destroy(self.queue.as_ptr());
            rd::rd_kafka_queue_destroy(self.events.as_ptr());
        }
    }
}

/// An error event taken with the records, with what librdkafka says it is about.
#[derive(Debug)]
pub struct FetchError {
    pub error: KafkaError,
    /// None for an error about no topic (and for the events rdkafka's `poll` returns, which
    /// name the partition only).
    pub topic: Option<String>,
    pub partition: i32,
    /// For an end of partition: the log end, where the fetcher stands (librdkafka's fetch
    /// position), every record before it delivered. Meaningless for other errors.
    pub offset: i64,
}

impl From<KafkaError> for FetchError {
    fn from(error: KafkaError) -> Self {
        let partition = match error {
            KafkaError::PartitionEOF(partition) => partition,
            _ => -1,
        };
        FetchError { error, topic: None, partition, offset: -1 }
    }
}

/// A record taken from a [`FetchQueue`], borrowed from librdkafka.
pub struct FetchedRecord<'a> {
    message: &'a rd::rd_kafka_message_t,
}

impl FetchedRecord<'_> {
    fn error(&self) -> Option<FetchError> {
        let error = match self.message.err {
            rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR => return None,
            rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR__PARTITION_EOF => {
                KafkaError::PartitionEOF(self.message.partition)
            }
            code => KafkaError::MessageConsumption(RDKafkaErrorCode::from(code)),
        };
        let topic = (!self.message.rkt.is_null()).then(|| self.topic().to_string());
        Some(FetchError { error, topic, partition: self.message.partition, offset: self.message.offset })
    }

    fn headers(&self) -> Option<*mut rd::rd_kafka_headers_t> {
        let mut headers = std::ptr::null_mut();
        // SAFETY: a live message; librdkafka parses its headers once and keeps them with it.
        let error = unsafe { rd::rd_kafka_message_headers(self.message, &mut headers) };
        (error == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && !headers.is_null()).then_some(headers)
    }
}

/// A nullable field of a message: None for a null pointer, as rdkafka reads them.
fn bytes<'a>(pointer: *const std::ffi::c_void, len: usize) -> Option<&'a [u8]> {
    // SAFETY: librdkafka's (pointer, length) pairs describe memory owned by the live message.
    (!pointer.is_null()).then(|| unsafe { std::slice::from_raw_parts(pointer.cast::<u8>(), len) })
}

impl Fetched for FetchedRecord<'_> {
    fn topic(&self) -> &str {
        // SAFETY: a fetched message always has its topic, whose name lives as long as it.
        let name = unsafe { CStr::from_ptr(rd::rd_kafka_topic_name(self.message.rkt)) };
        // Topic names are ASCII in Kafka.
        name.to_str().expect("Kafka topic names are ASCII")
    }

    fn partition(&self) -> i32 {
        self.message.partition
    }

    fn offset(&self) -> i64 {
        self.message.offset
    }

    fn timestamp(&self) -> Timestamp {
        let mut kind = rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
        // SAFETY: a live message.
        let ms = unsafe { rd::rd_kafka_message_timestamp(self.message, &mut kind) };
        match kind {
            _ if ms == -1 => Timestamp::NotAvailable,
            rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_CREATE_TIME => Timestamp::CreateTime(ms),
            rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME => Timestamp::LogAppendTime(ms),
            rd::rd_kafka_timestamp_type_t::RD_KAFKA_TIMESTAMP_NOT_AVAILABLE => Timestamp::NotAvailable,
        }
    }

    fn key(&self) -> Option<&[u8]> {
        bytes(self.message.key, self.message.key_len)
    }

    fn value(&self) -> Option<&[u8]> {
        bytes(self.message.payload, self.message.len)
    }

    fn header_count(&self) -> usize {
        // SAFETY: headers of a live message.
        self.headers().map_or(0, |headers| unsafe { rd::rd_kafka_header_cnt(headers) })
    }

    fn header(&self, index: usize) -> (&str, Option<&[u8]>) {
        let headers = self.headers().expect("header() is only asked for below header_count()");
        let (mut name, mut value, mut size) = (std::ptr::null(), std::ptr::null(), 0);
        // SAFETY: headers of a live message, an index below their count.
        let error = unsafe { rd::rd_kafka_header_get_all(headers, index, &mut name, &mut value, &mut size) };
        assert!(error == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR, "header {index} below the count");
        // SAFETY: a NUL-ended name owned by the message.
        let name = unsafe { CStr::from_ptr(name) };
        // As rdkafka's own header access: a header name is a Kafka string (UTF-8).
        (name.to_str().expect("Kafka header names are UTF-8"), bytes(value, size))
    }
}

/// A fetched record as the consumer copies it: a message rdkafka polled ([`Polled`]) or one taken
/// from a [`FetchQueue`] ([`FetchedRecord`]).
pub trait Fetched {
    fn topic(&self) -> &str;
    fn partition(&self) -> i32;
    fn offset(&self) -> i64;
    fn timestamp(&self) -> Timestamp;
    /// None: a null key (apart from an empty one).
    fn key(&self) -> Option<&[u8]>;
    fn value(&self) -> Option<&[u8]>;
    fn header_count(&self) -> usize;
    /// Header `index` (below [`Fetched::header_count`]): its name and value (None: null).
    fn header(&self, index: usize) -> (&str, Option<&[u8]>);
}

/// A message as rdkafka's `poll` returns it.
pub struct Polled<'a, M>(pub &'a M);

impl<M: Message> Fetched for Polled<'_, M> {
    fn topic(&self) -> &str {
        self.0.topic()
    }

    fn partition(&self) -> i32 {
        self.0.partition()
    }

    fn offset(&self) -> i64 {
        self.0.offset()
    }

    fn timestamp(&self) -> Timestamp {
        self.0.timestamp()
    }

    fn key(&self) -> Option<&[u8]> {
        self.0.key()
    }

    fn value(&self) -> Option<&[u8]> {
        self.0.payload()
    }

    fn header_count(&self) -> usize {
        self.0.headers().map_or(0, Headers::count)
    }

    fn header(&self, index: usize) -> (&str, Option<&[u8]>) {
        let Header { key, value } = self.0.headers().expect("asked below header_count").get(index);
        (key, value)
    }
}

/// Seeks each partition to its offset, waiting up to `limit` for librdkafka to have done it
/// (a seek is handled after every pause asked before it, and replaces the position that pause
/// copied). Returns the partitions whose seek failed, with the error.
pub fn seek<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    at: &[(&str, i32, i64)],
    limit: Duration,
) -> Vec<(String, i32, i64, KafkaError)> {
    if at.is_empty() {
        return Vec::new();
    }
    let all_failed = |error: KafkaError| at.iter().map(|&(t, p, o)| (t.to_string(), p, o, error.clone())).collect();
    let mut tpl = TopicPartitionList::new();
    for &(topic, partition, offset) in at {
        if let Err(error) = tpl.add_partition_offset(topic, partition, Offset::Offset(offset)) {
            return all_failed(error);
        }
    }
    match consumer.seek_partitions(tpl, limit) {
        // The list comes back in its own order, each element with its partition's result.
        Ok(result) => result
            .elements()
            .iter()
            .zip(at)
            .filter_map(|(e, &(topic, partition, offset))| {
                e.error().err().map(|error| (topic.to_string(), partition, offset, error))
            })
            .collect(),
        Err(error) => all_failed(error),
    }
}

/// The high watermark of a partition `consumer` fetches, as the last fetch response for it
/// reported: librdkafka keeps it from every response, so this costs a lock, not a request. None
/// before the first response (or for a partition the client does not know).
pub fn cached_high_watermark<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    partition: i32,
) -> Option<i64> {
    let topic = std::ffi::CString::new(topic).ok()?;
    let (mut low, mut high) = (-1_i64, -1_i64);
    // rust-rdkafka wraps only the variant that asks the broker (`fetch_watermarks`).
    // SAFETY: the client pointer is valid while `consumer` is borrowed, `topic` is a NUL-ended
    // string alive for the call, and librdkafka only writes the two integers it is given
    // (reading the partition under its own lock: any thread may call it).
    let error = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut low,
            &mut high,
        )
    };
    (error == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some(high)
}
