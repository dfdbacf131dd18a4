package clickhouse

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/sinks/clickhouse/internal/chtest"
	"github.com/winback/winback/testenv"
)

var (
	jan5  = time.Date(2024, 1, 5, 10, 0, 0, 0, time.UTC)
	jan6  = jan5.Add(24 * time.Hour)
	clock = time.Date(2024, 4, 1, 12, 0, 0, 0, time.UTC)
)

func agg(id string, version uint64, at time.Time, orders uint32, spend float64) *event.Aggregate {
	return &event.Aggregate{
		CustomerID: id, Version: version, AsOf: at.UnixMilli(),
		FirstOrderAt: jan5.UnixMilli(), LastOrderAt: at.UnixMilli(),
		OrdersTotal: orders, SpendTotal: spend, ValueTier: event.TierMedium, PLapse: 1 / float64(orders+1),
		LastCSAT: event.NoScore, LastNPS: 9, ActiveReasons: []event.Reason{event.ReasonPurchaseLapse},
	}
}

// TestWriteLatestVersionWins: a batch keeps only the latest version per
// customer-day, also when an older version comes last; customer_daily_feed
// makes the day snapshots of them, and FINAL the latest per customer.
func TestWriteLatestVersionWins(t *testing.T) {
	ch := testenv.NewClickHouse(t)
	c := newClock(clock)
	s := migratedSink(t, ch, Config{Now: c.now})
	ctx := testCtx(t, time.Minute)
	db := s.cfg.Database

	s.AddAggregate(agg("c1", 1, jan5, 1, 10))
	s.AddAggregate(agg("c1", 3, jan6, 3, 30))
	s.AddAggregate(agg("c1", 2, jan5.Add(time.Hour), 2, 20)) // stale for the customer, latest of its day
	s.AddAggregate(agg("c2", 1, jan6, 1, 5))
	s.AddAggregate(agg("c2", 1, jan6, 1, 5)) // the same again
	if got, want := s.Pending(), 3; got != want {
		t.Fatalf("Pending = %d, want %d (3 customer-days)", got, want)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Pending() != 0 {
		t.Fatalf("Pending = %d after Flush", s.Pending())
	}
	// No FINAL: what was inserted, row by row.
	got := query(t, s, "SELECT customer_id, version, orders_total, spend_total, last_csat, last_nps, active_reasons, p_lapse, updated_at FROM "+db+".customer_aggregates ORDER BY customer_id, version")
	want := [][]string{
		{"c1", "2", "2", "20", `\N`, "9", "[PURCHASE_LAPSE]", "0.3333333333333333", "2024-04-01 12:00:00"},
		{"c1", "3", "3", "30", `\N`, "9", "[PURCHASE_LAPSE]", "0.25", "2024-04-01 12:00:00"},
		{"c2", "1", "1", "5", `\N`, "9", "[PURCHASE_LAPSE]", "0.5", "2024-04-01 12:00:00"},
	}
	if err := chtest.Compare(got, want); err != nil {
		t.Fatalf("customer_aggregates: %v", err)
	}
	got = query(t, s, "SELECT customer_id, day, version, orders_total, as_of FROM "+db+".customer_daily ORDER BY customer_id, day")
	want = [][]string{
		{"c1", "2024-01-05", "2", "2", "2024-01-05 11:00:00"},
		{"c1", "2024-01-06", "3", "3", "2024-01-06 10:00:00"},
		{"c2", "2024-01-06", "1", "1", "2024-01-06 10:00:00"},
	}
	if err := chtest.Compare(got, want); err != nil {
		t.Fatalf("customer_daily: %v", err)
	}

	// A later batch with an older version does not win under FINAL.
	s.AddAggregate(agg("c1", 2, jan5.Add(time.Hour), 2, 20))
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := query(t, s, "SELECT version FROM "+db+".customer_aggregates FINAL WHERE customer_id = 'c1'"); got[0][0] != "3" {
		t.Fatalf("FINAL version %s, want 3", got[0][0])
	}
}

// TestStartFlush: StartFlush takes the rows pending when it is called; rows
// added while it writes wait for the next flush.
func TestStartFlush(t *testing.T) {
	ch := testenv.NewClickHouse(t)
	s := migratedSink(t, ch, Config{})
	ctx := testCtx(t, time.Minute)
	db := s.cfg.Database
	s.AddAggregate(agg("c1", 1, jan5, 1, 10))
	s.AddAggregate(agg("c2", 1, jan5, 1, 20))
	done := s.StartFlush(ctx)
	s.AddAggregate(agg("c3", 1, jan6, 1, 30)) // while the first flush writes
	if got := s.Pending(); got != 1 {
		t.Fatalf("Pending = %d right after StartFlush, want the row added since", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := query(t, s, "SELECT customer_id FROM "+db+".customer_aggregates ORDER BY customer_id"); chtest.Compare(got, [][]string{{"c1"}, {"c2"}}) != nil {
		t.Fatalf("after the first flush: %v, want c1 and c2", got)
	}
	if err := <-s.StartFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := query(t, s, "SELECT customer_id, day FROM "+db+".customer_daily ORDER BY customer_id"); chtest.Compare(got, [][]string{{"c1", "2024-01-05"}, {"c2", "2024-01-05"}, {"c3", "2024-01-06"}}) != nil {
		t.Fatalf("customer_daily after both flushes: %v", got)
	}
	if s.Pending() != 0 {
		t.Fatalf("Pending = %d after both flushes", s.Pending())
	}
	// The rows added now go to the first flush's batch, taken again once
	// it wrote everything: they and nothing of what it held before.
	a := agg("c4", 1, jan6, 1, 40)
	a.ActiveReasons = []event.Reason{event.ReasonSpendDecline}
	s.AddAggregate(a)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := query(t, s, "SELECT customer_id, version, active_reasons FROM "+db+".customer_aggregates ORDER BY customer_id")
	want := [][]string{{"c1", "1", "[PURCHASE_LAPSE]"}, {"c2", "1", "[PURCHASE_LAPSE]"}, {"c3", "1", "[PURCHASE_LAPSE]"}, {"c4", "1", "[SPEND_DECLINE]"}}
	if err := chtest.Compare(got, want); err != nil {
		t.Fatalf("customer_aggregates after the third flush: %v", err)
	}
}

// TestDiscard: the rows of an aborted transaction are dropped before any
// write, while a flush under way keeps the rows it took.
func TestDiscard(t *testing.T) {
	ch := testenv.NewClickHouse(t)
	s := migratedSink(t, ch, Config{})
	ctx := testCtx(t, time.Minute)
	db := s.cfg.Database
	s.AddAggregate(agg("committed", 1, jan5, 1, 10))
	done := s.StartFlush(ctx)
	s.AddAggregate(agg("aborted", 1, jan5, 1, 20))
	s.AddAggregate(agg("aborted2", 1, jan6, 1, 20))
	s.Discard()
	if got := s.Pending(); got != 0 {
		t.Fatalf("Pending = %d after Discard", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-s.StartFlush(ctx); err != nil {
		t.Fatal(err)
	}
	if got := query(t, s, "SELECT customer_id FROM "+db+".customer_aggregates ORDER BY customer_id"); chtest.Compare(got, [][]string{{"committed"}}) != nil {
		t.Fatalf("customer_aggregates: %v, want only the committed row", got)
	}
	var m dto.Metric
	if err := s.m.discarded.Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetCounter().GetValue(); got != 2 {
		t.Errorf("discarded rows counted %v, want 2", got)
	}
}

// TestFlushBlocks: a batch larger than a block goes in several blocks of
// one insert, and every row arrives, in both tables, with its own values.
func TestFlushBlocks(t *testing.T) {
	ch := testenv.NewClickHouse(t)
	s := migratedSink(t, ch, Config{})
	ctx := testCtx(t, time.Minute)
	db := s.cfg.Database
	n := 2*insertBlockRows + 7
	want := 0
	for i := range n {
		s.AddAggregate(agg(fmt.Sprintf("c%06d", i), 1, jan5, uint32(i%5), float64(i)))
		want += i % 5
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"customer_aggregates", "customer_daily"} {
		got := query(t, s, "SELECT count(), uniqExact(customer_id), sum(orders_total), min(customer_id), max(customer_id) FROM "+db+"."+table)
		if w := []string{fmt.Sprint(n), fmt.Sprint(n), fmt.Sprint(want), "c000000", fmt.Sprintf("c%06d", n-1)}; chtest.Compare(got, [][]string{w}) != nil {
			t.Errorf("%s: %v, want %v", table, got, w)
		}
	}
	// A row's columns stay together across the block boundary.
	i := insertBlockRows
	if got := query(t, s, fmt.Sprintf("SELECT orders_total, spend_total FROM %s.customer_aggregates WHERE customer_id = 'c%06d'", db, i)); chtest.Compare(got, [][]string{{fmt.Sprint(i % 5), fmt.Sprint(i)}}) != nil {
		t.Errorf("row %d: %v", i, got)
	}
	if got := value(s.m.batches.WithLabelValues("customer_aggregates")); got != 1 {
		t.Errorf("batches_total = %v, want 1 insert", got)
	}
}

func TestDeadLetterSample(t *testing.T) {
	ch := testenv.NewClickHouse(t)
	s := migratedSink(t, ch, Config{DLQSampleBytes: 100})
	ctx := testCtx(t, time.Minute)
	payload := make([]byte, 5000)
	for i := range payload {
		payload[i] = byte(i)
	}
	d := &event.DeadLetter{Topic: "orders", Partition: 2, Offset: 99, Key: []byte("k"), Reason: "avro.unknown_schema_id",
		Detail: "schema 7 not found", Size: len(payload), Sample: payload, At: clock.UnixMilli()}
	s.AddDeadLetter(d)
	payload[0] = 42 // the sink copied what it kept
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := query(t, s, "SELECT topic, partition, offset, key, reason, size, length(sample), hex(substring(sample, 1, 4)), at FROM "+s.cfg.Database+".dlq_records")
	want := [][]string{{"orders", "2", "99", "k", "avro.unknown_schema_id", "5000", "100", "00010203", "2024-04-01 12:00:00"}}
	if err := chtest.Compare(got, want); err != nil {
		t.Fatal(err)
	}
}

var tableKeys = map[string]string{
	"customer_aggregates": "customer_id", "customer_daily": "customer_id, day",
	"winback_triggers": "trigger_id", "dlq_records": "topic, partition, offset",
}

// tableDump is every column of every table under FINAL, in key order.
func tableDump(t *testing.T, s *Sink, withUpdatedAt bool) string {
	db := s.cfg.Database
	// 18.16 has no SELECT * EXCEPT: list the columns.
	cols := func(table string) string {
		rows := query(t, s, fmt.Sprintf("DESCRIBE TABLE %s.%s", db, table))
		var out string
		for _, r := range rows {
			if r[0] == "updated_at" && !withUpdatedAt {
				continue
			}
			if out != "" {
				out += ", "
			}
			out += "`" + r[0] + "`"
		}
		return out
	}
	var dump string
	for _, table := range tableNames {
		key := tableKeys[table]
		dump += "== " + table + "\n" + join(query(t, s, fmt.Sprintf("SELECT %s FROM %s.%s FINAL ORDER BY %s", cols(table), db, table, key)))
	}
	return dump
}

func writeFixture(t *testing.T, s *Sink, fx *chtest.Fixture, batch int) {
	t.Helper()
	ctx := testCtx(t, time.Minute)
	for i := range fx.Aggregates {
		s.AddAggregate(&fx.Aggregates[i])
		if (i+1)%batch == 0 {
			if err := s.Flush(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range fx.Triggers {
		s.AddTrigger(&fx.Triggers[i])
	}
	for i := range fx.DeadLetters {
		s.AddDeadLetter(&fx.DeadLetters[i])
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestReplay: writing the same rows again (a replay after an aborted
// transaction) leaves the same table contents under FINAL.
func TestReplay(t *testing.T) {
	fx, err := chtest.Load("testdata/views.txt")
	if err != nil {
		t.Fatal(err)
	}
	ch := testenv.NewClickHouse(t)
	c := newClock(clock)
	s := migratedSink(t, ch, Config{Now: c.now, ActiveDays: fx.ActiveDays})
	writeFixture(t, s, fx, 7)
	first := tableDump(t, s, true)
	rowsFirst := count(t, s, "SELECT count() FROM "+s.cfg.Database+".customer_daily")

	// The same rows, batched differently, at the same wall time: identical.
	writeFixture(t, s, fx, 5)
	if got := tableDump(t, s, true); got != first {
		t.Fatalf("after replay:\n%s\nbefore:\n%s", got, first)
	}
	if n := count(t, s, "SELECT count() FROM "+s.cfg.Database+".customer_daily"); n <= rowsFirst {
		t.Fatalf("customer_daily has %d rows unmerged after the replay, %d before: the replay wrote nothing, so this test proves nothing", n, rowsFirst)
	}

	// A replay later: identical except updated_at, which is one of the two
	// write times.
	firstNoTime := tableDump(t, s, false)
	c.set(clock.Add(time.Hour))
	writeFixture(t, s, fx, 1000)
	if got := tableDump(t, s, false); got != firstNoTime {
		t.Fatalf("after replay:\n%s\nbefore:\n%s", got, firstNoTime)
	}
	for _, r := range query(t, s, "SELECT DISTINCT toString(updated_at) FROM "+s.cfg.Database+".customer_aggregates FINAL") {
		if r[0] != "2024-04-01 12:00:00" && r[0] != "2024-04-01 13:00:00" {
			t.Fatalf("updated_at %s is neither write time", r[0])
		}
	}

	// Merged, one row per key.
	for table, key := range tableKeys {
		exec(t, s, "OPTIMIZE TABLE "+s.cfg.Database+"."+table+" FINAL")
		n := count(t, s, "SELECT count() FROM "+s.cfg.Database+"."+table)
		distinct := count(t, s, fmt.Sprintf("SELECT count() FROM (SELECT DISTINCT %s FROM %s.%s)", key, s.cfg.Database, table))
		if n != distinct {
			t.Fatalf("%s: %d rows after OPTIMIZE FINAL, %d keys", table, n, distinct)
		}
	}
	if got := tableDump(t, s, false); got != firstNoTime {
		t.Fatalf("after OPTIMIZE FINAL:\n%s\nbefore:\n%s", got, firstNoTime)
	}
}

// TestFlushWhileClickHouseDown: Flush keeps retrying while the server is
// gone and delivers every row exactly once when it is back.
func TestFlushWhileClickHouseDown(t *testing.T) {
	fx, err := chtest.Load("testdata/views.txt")
	if err != nil {
		t.Fatal(err)
	}
	ch := testenv.NewClickHouse(t)
	if ch.External() {
		t.Fatal("this test kills and restarts the server: run it without CLICKHOUSE_DSN")
	}
	s := migratedSink(t, ch, Config{MaxRetryBackoff: 200 * time.Millisecond, AttemptTimeout: 5 * time.Second})
	ctx := testCtx(t, 2*time.Minute)
	db := s.cfg.Database
	for i := range fx.Aggregates {
		s.AddAggregate(&fx.Aggregates[i])
	}
	for i := range fx.Triggers {
		s.AddTrigger(&fx.Triggers[i])
	}
	pending := s.Pending()
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}

	if err := ch.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(ctx); err == nil {
		t.Fatal("Ping succeeded with the server killed")
	}
	done := make(chan error, 1)
	go func() { done <- s.Flush(ctx) }()

	// Down for a couple of seconds: several retries, and Flush still
	// blocked.
	killed := time.Now()
	deadline := killed.Add(20 * time.Second)
	for value(s.m.retries) < 5 || time.Since(killed) < 2*time.Second {
		select {
		case err := <-done:
			t.Fatalf("Flush returned %v while the server was down", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("retries = %v after 20 s, want >= 5", value(s.m.retries))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if value(s.m.errors.WithLabelValues("customer_aggregates")) < 5 {
		t.Fatal("errors_total{table=customer_aggregates} did not grow")
	}
	if got := value(s.m.rows.WithLabelValues("customer_aggregates")); got != 0 {
		t.Fatalf("rows_total = %v while down", got)
	}
	select {
	case err := <-done:
		t.Fatalf("Flush returned %v while the server was down", err)
	default:
	}

	if err := ch.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Flush after restart: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Flush did not return within 60 s of the restart")
	}
	if s.Pending() != 0 {
		t.Fatalf("Pending = %d after Flush", s.Pending())
	}
	var written float64
	for _, table := range tableNames {
		written += value(s.m.rows.WithLabelValues(table))
	}
	if int(written) != pending {
		t.Fatalf("rows_total = %v, want the %d pending rows", written, pending)
	}

	customers := 10
	customerDays := map[string]bool{}
	for _, a := range fx.Aggregates {
		customerDays[a.CustomerID+time.UnixMilli(a.AsOf).UTC().Format(time.DateOnly)] = true
	}
	days := len(customerDays)
	for table, want := range map[string]int{"customer_aggregates": customers, "customer_daily": days, "winback_triggers": len(fx.Triggers)} {
		if n := count(t, s, "SELECT count() FROM "+db+"."+table+" FINAL"); n != want {
			t.Fatalf("%s FINAL: %d rows, want %d", table, n, want)
		}
		exec(t, s, "OPTIMIZE TABLE "+db+"."+table+" FINAL")
		if n := count(t, s, "SELECT count() FROM "+db+"."+table); n != want {
			t.Fatalf("%s after OPTIMIZE FINAL: %d rows, want %d", table, n, want)
		}
	}
	if days < 20 {
		t.Fatalf("only %d customer-days", days)
	}
}

// value reads a counter or gauge.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}
