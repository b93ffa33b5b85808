//! A valid file written by `MakWriter`, then damaged: undamaged it reads back exactly;
//! damaged only past the write position (a torn tail) it still does; otherwise the read
//! gives records or a typed error inside the input, within the heap bound.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mak_fuzz::{Mutation, ValidFile};

#[derive(Arbitrary, Debug)]
struct Input {
    file: ValidFile,
    mutations: Vec<Mutation>,
}

fuzz_target!(|input: Input| {
    let path = mak_fuzz::scratch_path("mutate.mak");
    let expected = input.file.write(&path);
    let mut bytes = std::fs::read(&path).expect("read back");
    let _ = std::fs::remove_file(&path);

    let (header, records, write_position) = mak_fuzz::read_and_check(&bytes).expect("a file MakWriter wrote reads");
    assert_eq!(header, input.file.header());
    assert_eq!(records, expected);

    let mut lowest_change = usize::MAX;
    for mutation in &input.mutations {
        lowest_change = lowest_change.min(mutation.apply(&mut bytes));
    }
    let result = mak_fuzz::read_and_check(&bytes);
    if lowest_change >= write_position as usize {
        // Everything up to the write position is intact: the rest is a torn tail.
        let (_, records, _) = result.expect("damage past the write position is a torn tail");
        assert_eq!(records, expected);
    }
});
