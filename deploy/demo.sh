#!/usr/bin/env bash
# Scale-out demo on one machine: a throwaway PostgreSQL cluster, three `todo serve` nodes on it,
# and nginx in front, hashing on the list name. All on loopback.
#
#   deploy/demo.sh start    # prints the proxy's URL
#   deploy/demo.sh stop     # stops everything and removes the demo's files
#
# Needs PostgreSQL and nginx from Debian (apt-get install postgresql nginx) and a release build
# (cargo build --release). TODO_DEMO_DIR chooses where its files go (default /tmp/todo-demo).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
dir=${TODO_DEMO_DIR:-/tmp/todo-demo}
pg_port=${TODO_DEMO_PG_PORT:-55480}
proxy_port=${TODO_DEMO_PORT:-5480}
node_ports=(5481 5482 5483)
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
todo="$repo/target/release/todo"

# initdb and postgres refuse to run as root; run them as the postgres user then.
as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
    [ -x "$todo" ] || (cd "$repo" && cargo build --release)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_postgres "$pg_bin/initdb" -D "$dir/pg" -A trust -U postgres --no-sync >/dev/null
    as_postgres "$pg_bin/pg_ctl" -D "$dir/pg" -l "$dir/pg.log" -w \
        -o "-p $pg_port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=100" start >/dev/null
    local url="postgres://postgres@127.0.0.1:$pg_port/postgres"
    for n in 0 1 2; do
        "$todo" serve --addr "127.0.0.1:${node_ports[$n]}" --data-dir "$dir/node$n" \
            --database-url "$url" --log warn >"$dir/node$n.log" 2>&1 &
        echo $! >"$dir/node$n.pid"
    done
    sed -e "s|__DIR__|$dir|g" -e "s|__PROXY_PORT__|$proxy_port|" \
        -e "s|__PORT1__|${node_ports[0]}|" -e "s|__PORT2__|${node_ports[1]}|" -e "s|__PORT3__|${node_ports[2]}|" \
        "$repo/deploy/nginx.conf" >"$dir/nginx.conf"
    for n in 0 1 2; do
        wait_for "http://127.0.0.1:${node_ports[$n]}/healthz"
    done
    nginx -c "$dir/nginx.conf" -p "$dir"
    wait_for "http://127.0.0.1:$proxy_port/healthz"
    echo "todo demo: PostgreSQL on $pg_port, nodes on ${node_ports[*]}, nginx on http://127.0.0.1:$proxy_port"
}

wait_for() {
    for _ in $(seq 50); do
        curl -fs "$1" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "error: $1 did not answer" >&2
    return 1
}

stop() {
    [ -f "$dir/nginx.pid" ] && nginx -c "$dir/nginx.conf" -p "$dir" -s quit 2>/dev/null || true
    for n in 0 1 2; do
        [ -f "$dir/node$n.pid" ] && kill -TERM "$(cat "$dir/node$n.pid")" 2>/dev/null || true
    done
    sleep 0.5
    [ -d "$dir/pg" ] && as_postgres "$pg_bin/pg_ctl" -D "$dir/pg" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$dir"
    echo "todo demo: stopped"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
