//! Arbitrary bytes as a version 2 file: every read returns records or a typed error naming a
//! byte inside the input, the ways of reading agree, nothing panics, and the heap stays under
//! the bound. Each input is also read behind a valid magic and version, so every input reaches
//! the progress block, header and frame code, not only the few that guess the 10-byte preamble.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mak_fuzz::read_and_check_v2(data);
    let mut prefixed = mak::v2::MAGIC.to_vec();
    prefixed.extend_from_slice(&mak::v2::VERSION.to_be_bytes());
    prefixed.extend_from_slice(&[0, 0]);
    prefixed.extend_from_slice(data);
    let _ = mak_fuzz::read_and_check_v2(&prefixed);
});
