#!/usr/bin/env bash
# The newcomer's first run: installs what the demo needs (rclone, sqlite3),
# builds rcbackup, backs up the bundled SQLite demo database to a local
# folder remote, damages the database, and restores it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --demo
cargo build --release -q -p rcbackup
BIN=$PWD/target/release/rcbackup
WORK=$PWD/demo/work
rm -rf "$WORK" && mkdir -p "$WORK"
sqlite3 "$WORK/app.sqlite3" < demo/demo.sql
cat > "$WORK/rcbackup.toml" <<TOML
# A local folder as the remote; any rclone remote ("s3:bucket/app", "backups:") works the same.
remote = "$WORK/remote"
db_cleanup_keep = 3

[databases.default]
engine = "sqlite"
name = "$WORK/app.sqlite3"
TOML
export RCBACKUP_CONFIG=$WORK/rcbackup.toml
count() { sqlite3 "$WORK/app.sqlite3" "SELECT (SELECT count(*) FROM auth_user) || ' users, ' || (SELECT count(*) FROM blog_post) || ' posts'"; }

echo "== the demo database: $(count)"
echo "== rcbackup dbbackup --clean"
"$BIN" dbbackup --clean
echo "== rcbackup listbackups"
"$BIN" listbackups
echo "== rcbackup verify"
"$BIN" verify
echo "== an accident: DELETE FROM blog_post"
sqlite3 "$WORK/app.sqlite3" "DELETE FROM blog_post"
echo "   now: $(count)"
echo "== rcbackup dbrestore --noinput"
"$BIN" dbrestore --noinput
echo "== after the restore: $(count)"
[ "$(count)" = "10 users, 200 posts" ] && echo "demo OK: the database is back" || { echo "demo FAILED"; exit 1; }
