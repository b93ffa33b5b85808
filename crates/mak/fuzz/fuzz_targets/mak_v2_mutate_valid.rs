//! A valid version 2 file (records with keys, values, headers and timestamps; sealed, or open
//! with an unsynced tail), then damaged, and optionally with its CRCs recomputed so the damage
//! reaches the rules behind them. Undamaged, or damaged only past the write position, it reads
//! back exactly; otherwise every read is checked as in `mak_v2_read`.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mak_fuzz::{Mutation, ValidFileV2};

#[derive(Arbitrary, Debug)]
struct Input {
    file: ValidFileV2,
    mutations: Vec<Mutation>,
    resign: bool,
}

fuzz_target!(|input: Input| {
    let path = mak_fuzz::scratch_path("v2_mutate.mak");
    let expected = input.file.write(&path);
    let clean = std::fs::read(&path).expect("read back");
    let write_position = mak::v2::read_summary(&clean[..]).expect("summary").progress.expect("block").write_position;
    let mut bytes = clean.clone();
    let mut lowest_change = usize::MAX;
    for mutation in &input.mutations {
        lowest_change = lowest_change.min(mutation.apply(&mut bytes));
    }
    if input.resign {
        mak_fuzz::resign_v2(&mut bytes);
    }
    let result = mak_fuzz::read_and_check_v2(&bytes);
    let untouched_before_end =
        bytes.len() as u64 >= write_position && bytes[..write_position as usize] == clean[..write_position as usize];
    if input.mutations.is_empty() || (lowest_change as u64 >= write_position && untouched_before_end) {
        assert_eq!(result.expect("a file undamaged up to its write position reads"), expected);
    }
});
