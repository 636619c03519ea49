//! The fault matrix of `dbrestore`: NOT WRITTEN YET. The restore steps
//! (`restore-started`, `restore-streamed`, `restore-swap`) reached main
//! while the backup matrix was being written; the cases are to follow the
//! shape of tests/fault_matrix_backup.rs: a backup B0 of content C0, the
//! database changed to C1, `dbrestore --noinput -i B0` held at each step,
//! the fault, then: exit 0 means the database is exactly C0, any other exit
//! means it is exactly C1 (MariaDB after the check: partly restored, and the
//! error says so), and `check_invariants` (tests/common/mod.rs).

mod common;
