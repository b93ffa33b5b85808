//! The tools.

pub mod parse;
pub mod rotate;
pub mod verify;
