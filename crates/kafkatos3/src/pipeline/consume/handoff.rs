//! The hand-over between a consumer's two threads. The consumer thread polls librdkafka and only
//! copies each record into the filling [`Batch`]; its writer thread ([`super::writer`]) takes
//! whole batches and appends them to the partitions' spools (framing, checksums, writes, seals).
//! Two batches per consumer, one filling and one being written, so each thread works while the
//! other does and memory stays at two batches.
//!
//! Everything else the consumer thread does with its spools (rebalances, ticks, seeks, commits)
//! first [`Handoff::drain`]s: every record fetched so far is in its spool, exactly as if it had
//! been written on the consumer thread. That is what keeps librdkafka's ordering guarantee (no
//! record fetched before a seek or an assignment change is handed to a spool after it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::kafka::fetch_queue::Fetched;
use crate::pipeline::consume::batch::Batch;

#[derive(Debug)]
pub struct Handoff {
    slots: Mutex<Slots>,
    changed: Condvar,
    /// Bytes a batch collects before the writer is asked to take it.
    capacity: usize,
    /// A write or seal failed: the consumer thread rewinds the partitions concerned.
    rewind_wanted: AtomicBool,
}

/// Records a [`Filler`] copies in under one lock before letting go of it: the writer waits for
/// the lock only to finish a batch, so a run is kept short.
const RUN: usize = 1024;

/// Copies a take's records into the filling batch (see [`Handoff::filler`]).
pub struct Filler<'a> {
    handoff: &'a Handoff,
    held: Option<MutexGuard<'a, Slots>>,
    run: usize,
}

impl Filler<'_> {
    /// Copies a fetched record in. A full batch is handed to the writer first, waiting while the
    /// writer is still on the other one (back-pressure), as [`Handoff::push`] does.
    pub fn push(&mut self, record: &impl Fetched) {
        let handoff = self.handoff;
        let slots = match &mut self.held {
            Some(slots) => slots,
            None => {
                self.run = 0;
                self.held.insert(handoff.wait_for_room(handoff.slots()))
            }
        };
        // Without a writer the daemon is stopping: the record is neither written nor committed.
        if !slots.writer_gone {
            slots.filling.push(record);
        }
        self.run += 1;
        if self.run >= RUN || slots.filling.byte_len() >= handoff.capacity {
            self.held = None;
        }
    }
}

#[derive(Debug, Default)]
struct Slots {
    filling: Batch,
    /// The consumer asked the writer to take `filling` (full, idle, or a drain).
    submitted: bool,
    /// The writer is writing a batch it took.
    writing: bool,
    /// The consumer is done: the writer takes what is left and ends.
    closed: bool,
    /// The writer thread has ended (or panicked): nothing waits for it any more.
    writer_gone: bool,
}

impl Handoff {
    pub fn new(capacity: usize) -> Self {
        Handoff {
            slots: Mutex::new(Slots::default()),
            changed: Condvar::new(),
            capacity,
            rewind_wanted: AtomicBool::new(false),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, slots: MutexGuard<'a, Slots>) -> MutexGuard<'a, Slots> {
        self.changed.wait(slots).unwrap_or_else(|p| p.into_inner())
    }

    /// Consumer thread: copies a fetched record into the filling batch. A full batch is handed
    /// to the writer first, waiting while the writer is still on the other one (back-pressure).
    pub fn push(&self, record: &impl Fetched) {
        self.filler().push(record);
    }

    /// Consumer thread: copies runs of records into the filling batch under one lock each
    /// instead of one per record (a take of any length, in runs of `RUN` records).
    pub fn filler(&self) -> Filler<'_> {
        Filler { handoff: self, held: None, run: 0 }
    }

    fn wait_for_room<'a>(&self, mut slots: MutexGuard<'a, Slots>) -> MutexGuard<'a, Slots> {
        if slots.filling.byte_len() >= self.capacity {
            slots.submitted = true;
            self.changed.notify_all();
            while slots.filling.byte_len() >= self.capacity && !slots.writer_gone {
                slots = self.wait(slots);
            }
        }
        slots
    }

    /// Consumer thread, when the poll found nothing: the writer takes what has been collected.
    pub fn submit(&self) {
        let mut slots = self.slots();
        if !slots.filling.is_empty() && !slots.submitted {
            slots.submitted = true;
            self.changed.notify_all();
        }
    }

    /// Consumer thread: returns once every record pushed is in its spool (or the writer is gone).
    pub fn drain(&self) {
        let mut slots = self.slots();
        if !slots.filling.is_empty() {
            slots.submitted = true;
            self.changed.notify_all();
        }
        while (!slots.filling.is_empty() || slots.writing) && !slots.writer_gone {
            slots = self.wait(slots);
        }
    }

    /// Consumer thread: true once after the writer asked for a rewind.
    pub fn take_rewind_wanted(&self) -> bool {
        self.rewind_wanted.load(Ordering::Relaxed) && self.rewind_wanted.swap(false, Ordering::AcqRel)
    }

    /// The consumer is done: the writer writes what is left, then ends.
    pub fn close(&self) {
        self.slots().closed = true;
        self.changed.notify_all();
    }

    /// Writer thread: waits for a submitted batch and swaps it with `empty`; false once closed
    /// with nothing left.
    pub fn take(&self, empty: &mut Batch) -> bool {
        let mut slots = self.slots();
        loop {
            if slots.submitted || (slots.closed && !slots.filling.is_empty()) {
                std::mem::swap(&mut slots.filling, empty);
                slots.submitted = false;
                slots.writing = true;
                self.changed.notify_all();
                return true;
            }
            if slots.closed {
                return false;
            }
            slots = self.wait(slots);
        }
    }

    /// Writer thread: the batch taken is in the spools; `rewind` when a write or seal failed.
    pub fn written(&self, rewind: bool) {
        if rewind {
            self.rewind_wanted.store(true, Ordering::Release);
        }
        self.slots().writing = false;
        self.changed.notify_all();
    }

    /// Writer thread, as it ends: nobody waits for it any more.
    pub fn writer_gone(&self) {
        let mut slots = self.slots();
        slots.writer_gone = true;
        slots.writing = false;
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::fetch_queue::Polled;
    use rdkafka::message::{OwnedMessage, Timestamp};
    use std::sync::Arc;

    fn message(offset: i64) -> OwnedMessage {
        OwnedMessage::new(Some(vec![7; 100]), None, "t".into(), Timestamp::NotAvailable, 0, offset, None)
    }

    /// A writer that records the offsets it takes, batch by batch.
    fn writer(handoff: Arc<Handoff>) -> std::thread::JoinHandle<Vec<Vec<i64>>> {
        std::thread::spawn(move || {
            let mut batch = Batch::default();
            let mut taken = Vec::new();
            while handoff.take(&mut batch) {
                let mut offsets = Vec::new();
                batch.for_each(|_, _, record| offsets.push(record.offset));
                taken.push(offsets);
                batch.clear(handoff.capacity());
                handoff.written(false);
            }
            handoff.writer_gone();
            taken
        })
    }

    #[test]
    fn every_record_pushed_reaches_the_writer_once_in_order_in_batches_of_about_the_capacity() {
        let handoff = Arc::new(Handoff::new(4096));
        let thread = writer(handoff.clone());
        for offset in 0..10_000 {
            handoff.push(&Polled(&message(offset)));
        }
        handoff.close();
        let taken = thread.join().unwrap();
        let all: Vec<i64> = taken.iter().flatten().copied().collect();
        assert_eq!(all, (0..10_000).collect::<Vec<_>>());
        // 100-byte values plus 37 bytes of fields: 30 records fill 4096 bytes.
        assert!(taken.iter().all(|b| b.len() <= 30), "a batch holds at most its capacity and one record more");
        assert!(taken.len() >= 10_000 / 30);
    }

    #[test]
    fn a_filler_hands_every_record_to_the_writer_once_in_order_however_long_its_run() {
        let handoff = Arc::new(Handoff::new(4096));
        let thread = writer(handoff.clone());
        let mut filler = handoff.filler();
        for offset in 0..(3 * RUN as i64 + 7) {
            filler.push(&Polled(&message(offset)));
        }
        drop(filler);
        handoff.close();
        let taken = thread.join().unwrap();
        let all: Vec<i64> = taken.iter().flatten().copied().collect();
        assert_eq!(all, (0..(3 * RUN as i64 + 7)).collect::<Vec<_>>());
        assert!(taken.iter().all(|b| b.len() <= 30), "a batch holds at most its capacity and one record more");
    }

    #[test]
    fn drain_returns_only_once_the_writer_has_written_every_record_pushed() {
        let handoff = Arc::new(Handoff::new(1 << 20));
        let written = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let thread = {
            let (handoff, written) = (handoff.clone(), written.clone());
            std::thread::spawn(move || {
                let mut batch = Batch::default();
                while handoff.take(&mut batch) {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    written.fetch_add(batch.records(), Ordering::SeqCst);
                    batch.clear(handoff.capacity());
                    handoff.written(true);
                }
                handoff.writer_gone();
            })
        };
        for round in 1..=3 {
            for offset in 0..100 {
                handoff.push(&Polled(&message(offset)));
            }
            handoff.drain();
            assert_eq!(written.load(Ordering::SeqCst), round * 100);
            assert!(handoff.take_rewind_wanted() && !handoff.take_rewind_wanted(), "asked once, taken once");
        }
        handoff.close();
        thread.join().unwrap();
        // With the writer gone nothing blocks: pushes are dropped, drains return.
        handoff.push(&Polled(&message(1)));
        handoff.drain();
    }
}
