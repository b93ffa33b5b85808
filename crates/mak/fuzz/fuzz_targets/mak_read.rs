//! Arbitrary bytes as a MAK file: every read returns records or a typed error naming a byte
//! inside the input, never panics, and stays under the heap bound.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = mak_fuzz::read_and_check(data);
});
