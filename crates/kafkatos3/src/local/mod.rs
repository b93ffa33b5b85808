//! The working directory: the persistent form of every partition's state, and the one place
//! that touches it. Nothing here speaks to Kafka or to the object store.
//!
//! - [`layout`]: where every file lives (`inprogress/`, `tocompress/`, `tos3/`, `state/`,
//!   `orphaned/`) and the listings of each area; [`durable`]: write, fsync, rename, fsync the
//!   directory - every state change goes through it.
//! - [`ledger`]: the commit rule and the upload markers (`state/.../uploaded_through`): which
//!   offset may be committed and which local file may go.
//! - [`seal`]: an in-progress file sealed and moved into `tocompress/`.
//! - [`backlog`]: the bytes waiting in `tocompress/` and `tos3/`, in all and per partition.
//! - [`legacy`]: the files of a directory last run by the Python original (`state/legacy`).
//! - [`locks`]: per-partition exclusion between the stages that move a partition's files;
//!   [`lock`]: one process per working directory.
//! - [`open_files`]: the process's open-files limit, raised at start, and each consumer's share of it for partition files.

pub mod backlog;
pub mod durable;
pub mod layout;
pub mod ledger;
pub mod legacy;
pub mod lock;
pub mod locks;
pub mod open_files;
pub mod seal;
