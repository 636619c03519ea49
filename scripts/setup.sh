#!/usr/bin/env bash
# Installs and starts everything the tests and the demo need, on a fresh
# Debian machine, as root. Safe to run again.
#   scripts/setup.sh          everything (rclone, sqlite3, PostgreSQL, MariaDB, wasm target)
#   scripts/setup.sh --demo   only what the SQLite demo needs
set -euo pipefail

need_apt=()
want() { command -v "$1" >/dev/null 2>&1 || need_apt+=("$2"); }
want rclone rclone
want sqlite3 sqlite3
if [ "${1:-}" != "--demo" ]; then
  want pg_ctlcluster postgresql
  want mariadbd mariadb-server
  want mariadb mariadb-client
  want pgbench postgresql-contrib      # bench/db.sh
  want bc bc
  want zstd zstd                      # the README's by-hand restore, tested
  want man man-db                     # tests/operator_setup.rs: the man page renders
  want zsh zsh                        # ... and the completion scripts parse (zsh -n, fish -n)
  want fish fish
  want systemd-analyze systemd        # tests/examples.rs: systemd-analyze verify of the example units
  [ -x /usr/bin/time ] || need_apt+=(time)
  dpkg -s postgresql-15-postgis-3 >/dev/null 2>&1 || need_apt+=(postgresql-15-postgis-3)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
[ "${1:-}" = "--demo" ] && exit 0

rustup target list --installed 2>/dev/null | grep -q wasm32-wasip2 || rustup target add wasm32-wasip2

# componentize-py builds the Python example policy (tests/policy_roles.rs).
if ! componentize-py --version >/dev/null 2>&1; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  fi
  python3 -m pip install --quiet componentize-py==0.25.1 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages componentize-py==0.25.1
  # pyenv's Python puts new commands on PATH only through its shims.
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
  componentize-py --version >/dev/null 2>&1 || { echo "setup: componentize-py does not run after pip install" >&2; exit 1; }
fi

# tests/examples.rs: kubernetes-validate checks the Kubernetes examples
# against the Kubernetes JSON schemas it bundles (no cluster, no network),
# and brings PyYAML, which reads them.
if [ "$(kubernetes-validate --version 2>/dev/null)" != 1.37.0 ] || ! python3 -c 'import yaml' 2>/dev/null; then
  python3 -m pip install --quiet kubernetes-validate==1.37.0 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages kubernetes-validate==1.37.0
  if command -v pyenv >/dev/null 2>&1; then pyenv rehash || true; fi
  kubernetes-validate --version >/dev/null 2>&1 || { echo "setup: kubernetes-validate does not run after pip install" >&2; exit 1; }
fi

# tests/adopt.rs and tests/django_bridge.rs: a venv with the real Django
# packages rcbackup replaces (their backups are adopted; the bridge keeps
# their management commands). django-rclone declares Python >= 3.12 but runs
# on 3.11, hence --ignore-requires-python. RCBACKUP_DJANGO_VENV overrides.
django_venv=${RCBACKUP_DJANGO_VENV:-/opt/rcbackup-django-venv}
django_reqs="django>=5.2,<5.3 django-rclone==0.4.0 django-dbbackup==5.4.0 psycopg[binary]==3.2.*"
if ! "$django_venv/bin/python" -c 'import django, django_rclone, dbbackup, psycopg' 2>/dev/null; then
  python3 -m venv "$django_venv" 2>/dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    python3 -m venv "$django_venv"
  }
  # shellcheck disable=SC2086
  "$django_venv/bin/pip" install --quiet --ignore-requires-python $django_reqs
  "$django_venv/bin/python" -c 'import django, django_rclone, dbbackup, psycopg' \
    || { echo "setup: the Django test venv at $django_venv does not import its packages" >&2; exit 1; }
fi

# PostgreSQL: password login on 127.0.0.1 for the test role.
ver=$(ls /usr/lib/postgresql | sort -n | tail -1)
pg_lsclusters -h | grep -q "^$ver main .* online" || pg_ctlcluster "$ver" main start
for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='rcbackup'\"" | grep -q 1 \
  || su postgres -c "psql -qc \"CREATE ROLE rcbackup LOGIN SUPERUSER PASSWORD 'rcbackup-test-pw'\""

# MariaDB: same role name and password, over TCP on 127.0.0.1.
if ! mariadb-admin ping >/dev/null 2>&1; then
  (service mariadb start || service mysql start) >/dev/null 2>&1 || true
  if ! mariadb-admin ping >/dev/null 2>&1; then
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    (mysqld_safe >/dev/null 2>&1 &)
  fi
  for _ in $(seq 60); do mariadb-admin ping >/dev/null 2>&1 && break; sleep 1; done
fi
mariadb -e "CREATE USER IF NOT EXISTS 'rcbackup'@'127.0.0.1' IDENTIFIED BY 'rcbackup-test-pw';
            CREATE USER IF NOT EXISTS 'rcbackup'@'localhost' IDENTIFIED BY 'rcbackup-test-pw';
            GRANT ALL PRIVILEGES ON *.* TO 'rcbackup'@'127.0.0.1' WITH GRANT OPTION;
            GRANT ALL PRIVILEGES ON *.* TO 'rcbackup'@'localhost' WITH GRANT OPTION;
            FLUSH PRIVILEGES;"
echo "setup: rclone, sqlite3, PostgreSQL $ver and MariaDB are ready (role rcbackup on 127.0.0.1)"
