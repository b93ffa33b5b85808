//! The working directory.

pub mod backlog;
pub mod durable;
pub mod layout;
pub mod ledger;
pub mod legacy;
pub mod lock;
pub mod locks;
pub mod seal;
