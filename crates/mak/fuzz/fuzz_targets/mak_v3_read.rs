//! Arbitrary bytes as a version 3 file: every read returns records or a typed error naming a
//! byte inside the input, the ways of reading agree, nothing panics, and the heap stays under
//! the bound (no block, column or length is allocated before it is checked against the input).
//! Each input is also read behind a valid magic and version, so every input reaches the
//! progress block, header and block code, not only the few that guess the 12-byte preamble.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mak_fuzz::read_raw::<mak_fuzz::V3>(data));
