package clickhouse

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/sinks/clickhouse/internal/chsql"
	"github.com/winback/winback/testenv"
)

// waitMutations waits until the database's mutations (ALTER ... DELETE on
// 18.16) are done.
func waitMutations(t *testing.T, s *Sink) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for count(t, s, "SELECT count() FROM system.mutations WHERE database = '"+s.cfg.Database+"' AND is_done = 0") > 0 {
		if time.Now().After(deadline) {
			t.Fatal("mutations not done after 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestErase: Erase deletes every row of the erased customers from every
// table (the dead letters keyed by them or naming them in a JSON sample
// too) and their pending rows, and keeps the rows written afterwards, as
// for a customer seen again.
func TestErase(t *testing.T) {
	ch := testenv.NewClickHouse(t)
	s := migratedSink(t, ch, Config{Now: newClock(clock).now})
	ctx := testCtx(t, time.Minute)
	db := s.cfg.Database
	dl := func(off int64, key, sample string) *event.DeadLetter {
		return &event.DeadLetter{Topic: "orders", Partition: 0, Offset: off, Key: []byte(key), Reason: "json.syntax", Sample: []byte(sample), At: clock.UnixMilli()}
	}
	for _, id := range []string{"gone'1", "stays", "gone2"} {
		s.AddAggregate(agg(id, 1, jan5, 1, 10))
		s.AddAggregate(agg(id, 2, jan6, 2, 20))
		s.AddTrigger(&event.Trigger{TriggerID: "t-" + id, CustomerID: id, Kind: event.TriggerWinback, AsOf: jan6.UnixMilli(), EmittedAt: clock.UnixMilli()})
	}
	s.AddDeadLetter(dl(1, "gone'1", "{"))
	s.AddDeadLetter(dl(2, "", `{"customer_id":"gone2","amount":`))
	s.AddDeadLetter(dl(3, "stays", `{"customer_id":"stays"`))
	// The id of a customer with no other rows, as Python's json.dumps and
	// Go's encoding/json write it: escaped.
	s.AddDeadLetter(dl(4, "", `{"customer_id": "g\u00f6ne<3>", "amount": -1}`))
	s.AddDeadLetter(dl(5, "", `{"customer_id":"göne\u003c3\u003e","amount":-1}`))
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s.AddAggregate(agg("gone2", 3, jan6, 3, 30)) // pending: before the erasure
	if err := s.Erase(ctx, []string{"gone2", "gone'1", "gone2", "never-seen", "göne<3>"}); err != nil {
		t.Fatal(err)
	}
	if s.Pending() != 0 {
		t.Fatalf("%d rows pending after the erasure, want 0", s.Pending())
	}
	s.AddAggregate(agg("gone2", 1, jan6.Add(time.Hour), 1, 5)) // seen again: a new customer
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	waitMutations(t, s)
	// ORDER BY names the columns: 18.16 reads ORDER BY 1, 2 as constants.
	for table, cols := range map[string]string{
		"customer_aggregates": "customer_id, version",
		"customer_daily":      "customer_id, version",
		// 070: the versions of the customer's days, sorted
		"customer_history_state": "customer_id, toString(arraySort(finalizeAggregation(version)))",
		// 090: the versions of the customer's days and its triggers, the
		// two feeds' rows merged
		"trigger_outcome_state FINAL": "customer_id, toString(arraySort(finalizeAggregation(version))), toString(finalizeAggregation(trigger_id))",
		"winback_triggers":            "customer_id, trigger_id",
		"dlq_records":                 "key, toString(offset)",
	} {
		got := join(query(t, s, "SELECT "+cols+" FROM "+db+"."+table+" ORDER BY "+cols))
		want := map[string]string{
			"customer_aggregates":         "gone2\t1\nstays\t1\nstays\t2\n",
			"customer_daily":              "gone2\t1\nstays\t1\nstays\t2\n",
			"customer_history_state":      "gone2\t[1]\nstays\t[1,2]\n",
			"trigger_outcome_state FINAL": "gone2\t[1]\t[]\nstays\t[1,2]\t['t-stays']\n",
			"winback_triggers":            "stays\tt-stays\n",
			"dlq_records":                 "stays\t3\n",
		}[table]
		if got != want {
			t.Errorf("%s after the erasure:\n%s\nwant\n%s", table, got, want)
		}
	}
}

// TestEvictedRow: a flush with a customer's evicted row (version 0)
// deletes its earlier rows, so FINAL shows the evicted row and the
// current-state views leave it out; a customer seen again under the id
// (version 1) replaces it.
func TestEvictedRow(t *testing.T) {
	ch := testenv.NewClickHouse(t)
	s := migratedSink(t, ch, Config{Now: newClock(clock).now})
	ctx := testCtx(t, time.Minute)
	db := s.cfg.Database
	risky := func(a *event.Aggregate) *event.Aggregate { a.RiskScore = 0.9; return a }
	s.AddAggregate(risky(agg("old", 7, jan5, 4, 100)))
	s.AddAggregate(risky(agg("live", 3, jan5, 2, 50)))
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ev := risky(agg("old", 0, jan5, 4, 100))
	ev.Evicted = true
	s.AddAggregate(ev)
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	waitMutations(t, s)
	final := func() string {
		return join(query(t, s, "SELECT customer_id, version, evicted FROM "+db+".customer_aggregates FINAL ORDER BY customer_id"))
	}
	if got, want := final(), "live\t3\t0\nold\t0\t1\n"; got != want {
		t.Fatalf("FINAL after the eviction:\n%s\nwant\n%s", got, want)
	}
	if got := join(query(t, s, "SELECT customer_id FROM "+db+".customers_at_risk")); got != "live\n" {
		t.Errorf("customers_at_risk lists %q, want only live", got)
	}
	if got := count(t, s, "SELECT sum(customers) FROM "+db+".value_risk_matrix"); got != 1 {
		t.Errorf("value_risk_matrix counts %d customers, want 1", got)
	}
	if got := count(t, s, "SELECT customers FROM "+db+".customer_kpis"); got != 2 {
		t.Errorf("customer_kpis counts %d customers, want 2 (lifetime figures keep the evicted)", got)
	}
	s.AddAggregate(agg("old", 1, jan6, 1, 9))
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := final(), "live\t3\t0\nold\t1\t0\n"; got != want {
		t.Fatalf("FINAL after the customer came back:\n%s\nwant\n%s", got, want)
	}
}

// TestDeleteQuery: the statement per server: a mutation on 18.16,
// DELETE FROM where lightweight deletes exist; ids quoted.
func TestDeleteQuery(t *testing.T) {
	s := &Sink{cfg: Config{Database: "db"}}
	q := s.deleteQuery("customer_aggregates", chsql.Erasable[0].Where, []string{"a'b", "c"})
	if want := `ALTER TABLE db.customer_aggregates DELETE WHERE customer_id IN ('a\'b', 'c')`; q != want {
		t.Errorf("18.16: %s\nwant %s", q, want)
	}
	s.features.LightweightDelete = true
	i := slices.IndexFunc(chsql.Erasable, func(e struct{ Table, Where string }) bool { return e.Table == chsql.TableDeadLetters })
	q = s.deleteQuery("dlq_records", chsql.Erasable[i].Where, []string{"x"})
	if want := `DELETE FROM db.dlq_records WHERE key IN ('x') OR position(sample, '"x"') > 0`; q != want {
		t.Errorf("modern: %s\nwant %s", q, want)
	}
	if strings.Contains(q, "%!") {
		t.Errorf("bad format: %s", q)
	}
}

// TestEraseMany: an erasure of more ids than one statement holds is sent
// in several, and each reaches its rows.
func TestEraseMany(t *testing.T) {
	ch := testenv.NewClickHouse(t)
	s := migratedSink(t, ch, Config{Now: newClock(clock).now})
	ctx := testCtx(t, time.Minute)
	db := s.cfg.Database
	ids := make([]string, 1200)
	for i := range ids {
		ids[i] = fmt.Sprintf("id-%04d", i)
	}
	for i, id := range []string{ids[0], ids[700], ids[1199], "other"} {
		s.AddAggregate(agg(id, 1, jan5, 1, 10))
		s.AddDeadLetter(&event.DeadLetter{Topic: "orders", Offset: int64(i), Key: []byte(id), Reason: "json.syntax", At: clock.UnixMilli()})
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Erase(ctx, ids); err != nil {
		t.Fatal(err)
	}
	waitMutations(t, s)
	for _, table := range []string{"customer_aggregates", "customer_daily"} {
		if got := join(query(t, s, "SELECT customer_id FROM "+db+"."+table)); got != "other\n" {
			t.Errorf("%s after erasing 1200 ids: %q, want only other", table, got)
		}
	}
	if got := join(query(t, s, "SELECT key FROM "+db+".dlq_records")); got != "other\n" {
		t.Errorf("dlq_records after erasing 1200 ids: %q, want only other", got)
	}
}
