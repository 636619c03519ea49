//! The fault matrix of `dbrestore` (to be filled in).

mod common;
