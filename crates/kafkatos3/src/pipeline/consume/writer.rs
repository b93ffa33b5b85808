//! A consumer's writer thread: appends the batches its consumer thread hands over (see
//! [`super::handoff`]) to the partitions' spools, and seals a file once it is full or, in a
//! snapshot, once its partition has reached its end.
//!
//! It locks the consumer's state once per batch. A failed write or seal leaves the partition
//! awaiting a rewind to its last durable record (later records are dropped until then), and the
//! consumer thread is told to seek there.

use std::sync::{Arc, Mutex};
use std::thread;

use mak::v2::RecordRef;

use crate::pipeline::consume::batch::Batch;
use crate::pipeline::consume::handoff::Handoff;
use crate::pipeline::consume::state::ConsumerState;
use crate::pipeline::consume::Consumers;
use crate::pipeline::spool::{now_secs, Appended, PartitionSpool};

/// The writer thread of consumer `id`; it ends once the hand-over is closed and emptied.
pub struct Writer {
    handoff: Arc<Handoff>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Writer {
    pub fn spawn(stage: Arc<Consumers>, id: usize, handoff: Arc<Handoff>, state: Arc<Mutex<ConsumerState>>) -> Self {
        let thread = {
            let handoff = handoff.clone();
            thread::Builder::new()
                .name(format!("writer-{id}"))
                .spawn(move || {
                    crate::pipeline::nice::set_current_thread(stage.config.consumer.consumer_nice_level);
                    let alive = crate::observe::metrics::global().health.thread(format!("writer-{id}"));
                    let gone = Gone { stage: &stage, handoff: &handoff };
                    write_batches(&stage, &handoff, &state);
                    drop(gone);
                    // Its consumer closed the hand-over: ending now is what was asked.
                    alive.done();
                })
                .expect("spawn writer thread")
        };
        Writer { handoff, thread: Some(thread) }
    }
}

impl Drop for Writer {
    /// Declared before the consumer it serves, so dropped after it: the consumer's last
    /// callbacks (its revoke) still drain through a running writer.
    fn drop(&mut self) {
        self.handoff.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Marks the writer gone when its thread ends, panicking or not, so the consumer thread never
/// waits for it in vain; a panic stops the daemon (records held nowhere are never committed).
struct Gone<'a> {
    stage: &'a Consumers,
    handoff: &'a Handoff,
}

impl Drop for Gone<'_> {
    fn drop(&mut self) {
        if thread::panicking() {
            tracing::error!("the writer thread failed; stopping");
            self.stage.shutdown.fail();
        }
        self.handoff.writer_gone();
    }
}

fn write_batches(stage: &Consumers, handoff: &Handoff, state: &Mutex<ConsumerState>) {
    let mut batch = Batch::default();
    while handoff.take(&mut batch) {
        let rewind = write_batch(stage, &batch, &mut state.lock().unwrap_or_else(|p| p.into_inner()));
        batch.clear(handoff.capacity());
        handoff.written(rewind);
    }
}

/// Appends a batch's records to their spools; true when a partition now awaits a rewind.
fn write_batch(stage: &Consumers, batch: &Batch, state: &mut ConsumerState) -> bool {
    let now = now_secs();
    let mut rewind = false;
    let mut headers = Vec::new();
    let mut records = batch.reader();
    // Records come in runs of one partition (librdkafka hands over a fetch at a time): its
    // spool is looked up once per run.
    let mut run = None;
    let mut spool: Option<&mut PartitionSpool> = None;
    let batch_stamp = state.next_batch();
    while let Some(entry) = records.next(&mut headers) {
        if run != Some((entry.topic_index, entry.partition)) {
            run = Some((entry.topic_index, entry.partition));
            if let Some(spool) = spool.take() {
                spool.publish_consumed();
            }
            let owned = state.topics.get(entry.topic).and_then(|p| p.get(&entry.partition));
            if owned.is_some_and(|s| !s.needs_descriptor()) {
                // The append opens (or creates) its file: room is made first, within the limit.
                state.opening();
            }
            // None: the partition is no longer owned, and its next owner reads the record again.
            spool = state.topics.get_mut(entry.topic).and_then(|p| p.get_mut(&entry.partition));
            if let Some(spool) = spool.as_deref_mut() {
                spool.used_at = batch_stamp;
            }
        }
        if let Some(spool) = spool.as_deref_mut() {
            rewind |= append(stage, spool, &entry.record, now);
        }
    }
    if let Some(spool) = spool {
        spool.publish_consumed();
    }
    rewind
}

/// Appends one record to its partition's spool; true when the partition now awaits a rewind.
fn append(stage: &Consumers, spool: &mut PartitionSpool, record: &RecordRef<'_>, now: f64) -> bool {
    match spool.append(record, now) {
        Ok(Appended::Written) => {
            let consumer = &stage.config.consumer;
            let full = spool.is_full(consumer.max_file_bytes, consumer.max_file_records);
            // A snapshot's partition that has taken its last record is sealed at once.
            if full || spool.reached_end() {
                if full {
                    spool.catching_up = true;
                }
                stage.seal(spool);
                // A failed seal reopened the file at its durable point: fetch again from there.
                return spool.awaits_rewind();
            }
            false
        }
        Ok(Appended::AwaitingRewind | Appended::PastEnd) => false,
        Ok(Appended::AlreadyHeld) => {
            tracing::debug!(topic = %spool.tp.topic, partition = spool.tp.partition, offset = record.offset, "skipping a record already held");
            false
        }
        Err(error) if error.is_too_many_open_files() => {
            tracing::error!(%error, "too many open files: the hard limit is reached although each consumer keeps to its share of it (see the start's open files limit line); raise it (LimitNOFILE= in the systemd unit, ulimit -Hn) or run more instances in the group. Rewinding to the last durable record and pausing");
            true
        }
        Err(error) => {
            tracing::error!(%error, out_of_space = error.is_out_of_space(), "write failed; rewinding to the last durable record and pausing");
            true
        }
    }
}
