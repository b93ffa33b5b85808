//! Arbitrary bytes as a version 2 file: every read returns records or a typed error naming a
//! byte inside the input, the ways of reading agree, nothing panics, and the heap stays under
//! the bound. Each input is also read behind a valid magic and version, so every input reaches
//! the progress block, header and frame code, not only the few that guess the 12-byte preamble.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mak_fuzz::read_raw::<mak_fuzz::V2>(data));
