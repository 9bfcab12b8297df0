# Sourced by bench-bids.sh: the raw bid transaction under pgbench on the
# bench database, with 1 client on one item, 50 on one item, 50 over
# $ITEMS items. Prints "label tps" lines; nothing when pgbench is missing.
pgbench_rates() {
  command -v pgbench >/dev/null 2>&1 || return 0
  local url="postgres://postgres@127.0.0.1:5432/$db"
  psql -q "$url" <<'SQL' >/dev/null
CREATE TABLE pgb_items (id int PRIMARY KEY, price bigint NOT NULL, bid_count bigint NOT NULL, sealed bytea);
CREATE TABLE pgb_bids (id bigserial PRIMARY KEY, item_id int NOT NULL, user_id int NOT NULL, seq bigint NOT NULL, sealed bytea NOT NULL, created_at timestamptz NOT NULL);
CREATE INDEX ON pgb_bids (item_id, user_id);
INSERT INTO pgb_items SELECT g, 100, 0, '\x00' FROM generate_series(1, 1000) g;
SQL
  local seconds=${BENCH_PGBENCH_SECONDS:-10}
  run() { pgbench -n -h 127.0.0.1 -U postgres -f scripts/bench/bid.sql -T "$seconds" "$@" "$db" 2>/dev/null | awk '/^tps/ {print int($3)}'; }
  echo "pgbench_1_client_1_item $(run -c 1 -D items=1)"
  echo "pgbench_50_clients_1_item $(run -c 50 -j 2 -D items=1)"
  echo "pgbench_50_clients_${ITEMS}_items $(run -c 50 -j 2 -D items="$ITEMS")"
}
