//! A valid version 2 file (records with keys, values, headers and timestamps; sealed, or open
//! with an unsynced tail), then damaged, and optionally with its CRCs recomputed so the damage
//! reaches the rules behind them. Undamaged, or damaged only past the write position, it reads
//! back exactly; otherwise every read is checked as in `mak_v2_read`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: mak_fuzz::DamagedFile| input.check(mak::Version::V2));
