//! What the MAK fuzz targets share: a counting global allocator and the heap bound it is
//! checked against, the checks every read result must pass, and structured inputs that
//! build a valid file with `MakWriter` and then damage it.
//!
//! The `mak` crate forbids `unsafe`; this crate is outside its workspace and needs it only
//! for the `GlobalAlloc` impl in `heap.rs`.
//!
//! - [`heap`]: the counting allocator and the bound every read is held to;
//! - [`v1`]: reading and checking version 1 files, and structured inputs that damage them;
//! - [`blocks`]: reading and checking version 2 and 3 files, one generic function;
//! - [`v2`]: structured inputs that build a valid version 2 or 3 file and damage it.

pub mod blocks;
pub mod heap;
pub mod v1;
pub mod v2;

pub use blocks::*;
pub use heap::*;
pub use v1::*;
pub use v2::*;
