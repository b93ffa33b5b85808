//! A valid version 3 file (records with keys, values, headers and timestamps in blocks of a
//! chosen bound, records larger than a block among them; sealed, or open with an unsynced
//! tail), then damaged, and optionally with its CRCs recomputed so the damage reaches the rules
//! behind them - column lengths, varints, counts, the footer's sums. Undamaged, or damaged only
//! past the write position, it reads back exactly; otherwise every read is checked as in
//! `mak_v3_read`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: mak_fuzz::DamagedFile| input.check(mak::Version::V3));
