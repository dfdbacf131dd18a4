#!/usr/bin/env bash
# bench-bi: every BI view of winback on a large generated dataset, inside
# ClickHouse: CUSTOMERS customers with DAILY customer_daily rows (about
# DAILY/CUSTOMERS days with a change each), their current rows in
# customer_aggregates, and TRIGGERS triggers. Each view runs once with
# max_memory_usage = MAX_MEMORY; its duration, peak memory and rows read
# come from system.query_log. Prints a Markdown table (to stdout and OUT).
#
#   CH_PORT      native port of a running clickhouse-server (default: start
#                one of our own under WORKDIR, port 19500)
#   CUSTOMERS    default 10000000
#   DAILY        default 100000000
#   TRIGGERS     default CUSTOMERS / 5
#   DB           default winback_bench_bi
#   KEEP=1       reuse the data if DB already holds CUSTOMERS customers
#   MAX_MEMORY   default 2147483648 (2 GiB)
#   OUT          default /tmp/winback-bench-bi.md
#
# The generation is the expensive part (100M rows: minutes on 2 cores);
# it runs under nice. Not part of make test.
set -euo pipefail

CUSTOMERS=${CUSTOMERS:-10000000}
DAILY=${DAILY:-100000000}
TRIGGERS=${TRIGGERS:-$((CUSTOMERS / 5))}
DB=${DB:-winback_bench_bi}
MAX_MEMORY=${MAX_MEMORY:-2147483648}
OUT=${OUT:-/tmp/winback-bench-bi.md}
WORKDIR=${WORKDIR:-/tmp/winback-bench-bi}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUN=bi$(date +%s)

if [ -z "${CH_PORT:-}" ]; then
	CH_PORT=19500
	mkdir -p "$WORKDIR"/{data,tmp,uf,fs,log}
	cat >"$WORKDIR/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><log>$WORKDIR/log/server.log</log><errorlog>$WORKDIR/log/error.log</errorlog><size>10M</size><count>2</count></logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$CH_PORT</tcp_port>
    <http_port>$((CH_PORT + 1))</http_port>
    <path>$WORKDIR/data/</path>
    <tmp_path>$WORKDIR/tmp/</tmp_path>
    <user_files_path>$WORKDIR/uf/</user_files_path>
    <format_schema_path>$WORKDIR/fs/</format_schema_path>
    <users_config>$WORKDIR/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mark_cache_size>268435456</mark_cache_size>
    <mlock_executable>false</mlock_executable>
    <query_log><database>system</database><table>query_log</table><flush_interval_milliseconds>1000</flush_interval_milliseconds></query_log>
</yandex>
XML
	cat >"$WORKDIR/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
    <profiles><default><max_memory_usage>8000000000</max_memory_usage><log_queries>1</log_queries></default></profiles>
    <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
    <quotas><default/></quotas>
</yandex>
XML
	nice clickhouse-server --config-file="$WORKDIR/config.xml" >"$WORKDIR/log/stdout.log" 2>&1 &
	SERVER=$!
	trap 'kill $SERVER; wait $SERVER 2>/dev/null || true' EXIT
	for _ in $(seq 1 60); do
		clickhouse-client --port "$CH_PORT" -q 'SELECT 1' >/dev/null 2>&1 && break
		sleep 0.5
	done
fi
CH="clickhouse-client --port $CH_PORT"

echo "== migrate ($DB)" >&2
go run "$ROOT/cmd/winback" migrate -clickhouse-dsn "clickhouse://127.0.0.1:$CH_PORT/default" -clickhouse-database "$DB" 2>"$WORKDIR/migrate.log" >&2

have=$($CH -q "SELECT uniqExact(customer_id) FROM $DB.customer_aggregates" 2>/dev/null || echo 0)
if [ "${KEEP:-0}" = 1 ] && [ "$have" = "$CUSTOMERS" ]; then
	echo "== reusing $have customers in $DB" >&2
else
	echo "== generate: $CUSTOMERS customers, $DAILY daily rows, $TRIGGERS triggers" >&2
	for t in customer_aggregates customer_daily customer_history_state trigger_outcome_state winback_triggers; do
		$CH -q "TRUNCATE TABLE $DB.$t" 2>/dev/null || true
	done
	# The generator is one SQL file; it is rendered by sed (DB, sizes).
	sed -e "s/{{DB}}/$DB/g" -e "s/{{CUSTOMERS}}/$CUSTOMERS/g" -e "s/{{DAILY}}/$DAILY/g" -e "s/{{TRIGGERS}}/$TRIGGERS/g" -e "s/{{REST}}/$((DAILY - CUSTOMERS))/g" \
		"$ROOT/scripts/bench-bi-gen.sql" | nice $CH -n --max_memory_usage 8000000000
	$CH -q "SELECT 'customer_daily', count() FROM $DB.customer_daily UNION ALL SELECT 'customer_aggregates', count() FROM $DB.customer_aggregates UNION ALL SELECT 'customer_history_state', count() FROM $DB.customer_history_state UNION ALL SELECT 'trigger_outcome_state', count() FROM $DB.trigger_outcome_state UNION ALL SELECT 'winback_triggers', count() FROM $DB.winback_triggers" >&2
fi

views=${VIEWS:-$($CH -q "SELECT name FROM system.tables WHERE database = '$DB' AND engine = 'View' ORDER BY name")}
echo "== views, max_memory_usage=$MAX_MEMORY" >&2
for v in $views; do
	echo "-- $v" >&2
	if ! $CH --max_memory_usage "$MAX_MEMORY" --log_queries 1 --query_id "$RUN-$v" \
		-q "SELECT count() FROM (SELECT * FROM $DB.$v)" >/dev/null 2>"$WORKDIR/$v.err"; then
		echo "   failed: $(head -c 300 "$WORKDIR/$v.err")" >&2
	fi
done
$CH -q "SYSTEM FLUSH LOGS"
{
	echo "| view | duration | peak memory | rows read | result |"
	echo "|---|---:|---:|---:|---|"
	$CH -q "
		SELECT
			replaceOne(query_id, '$RUN-', '') AS view,
			concat(toString(round(max(query_duration_ms) / 1000, 2)), ' s'),
			concat(toString(round(max(memory_usage) / 1048576)), ' MiB'),
			toString(max(read_rows)),
			if(max(exception != '') = 1, concat('error: ', substring(max(exception), 1, 60)), 'ok')
		FROM system.query_log
		WHERE query_id LIKE '$RUN-%' AND type IN (2, 3, 4)
		GROUP BY view ORDER BY view
		FORMAT TSV" | awk -F'\t' '{printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5}'
} | tee "$OUT"
