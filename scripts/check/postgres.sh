# Sourced by scripts/test (and by hand, to work on the PostgreSQL store): a throwaway PostgreSQL 15 cluster from
# Debian's packages, in a temporary directory, on a free loopback port, with password (SCRAM) authentication.
# Exports OMNIEMBED_TEST_POSTGRES_URL, OMNIEMBED_TEST_POSTGRES_PASSWORD and OMNIEMBED_TEST_POSTGRES_CTL (a
# command taking stop or start, for tests that take the database away); `postgres_stop` removes the cluster
# (scripts/test traps it).
scripts/setup-system postgresql-15 >&2
postgres_bin=/usr/lib/postgresql/15/bin
postgres_dir="$(mktemp -d /tmp/omniembed-postgres.XXXXXX)"
postgres_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
postgres_password="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
# initdb refuses to run as root: the cluster then belongs to Debian's postgres user.
postgres_as() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" -eq 0 ] && chown postgres "$postgres_dir"
printf '%s\n' "$postgres_password" > "$postgres_dir/password"
[ "$(id -u)" -eq 0 ] && chown postgres "$postgres_dir/password"
postgres_as "$postgres_bin/initdb" -D "$postgres_dir/data" -U omniembed --auth=scram-sha-256 \
    --pwfile="$postgres_dir/password" -E UTF8 --locale=C.UTF-8 >/dev/null
cat > "$postgres_dir/ctl" <<CTL
#!/usr/bin/env bash
# start | stop | restart the test cluster
set -euo pipefail
run() { if [ "\$(id -u)" -eq 0 ]; then runuser -u postgres -- "\$@"; else "\$@"; fi; }
run "$postgres_bin/pg_ctl" -D "$postgres_dir/data" -l "$postgres_dir/log" -w -t 60 -m fast \
    -o "-p $postgres_port -k $postgres_dir -c listen_addresses=127.0.0.1" "\$@" >/dev/null
CTL
chmod 755 "$postgres_dir/ctl"
postgres_ctl() { "$postgres_dir/ctl" "$@"; }
postgres_ctl start
PGPASSWORD="$postgres_password" psql -q -h 127.0.0.1 -p "$postgres_port" -U omniembed -d postgres -c 'CREATE DATABASE omniembed' >/dev/null
postgres_stop() {
    postgres_ctl stop 2>/dev/null || true
    rm -rf "$postgres_dir"
}
export OMNIEMBED_TEST_POSTGRES_URL="postgresql://omniembed@127.0.0.1:$postgres_port/omniembed"
export OMNIEMBED_TEST_POSTGRES_PASSWORD="$postgres_password"
export OMNIEMBED_TEST_POSTGRES_CTL="$postgres_dir/ctl"
