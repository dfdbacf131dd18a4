package main

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/winback/winback/config"
)

func TestErasureIDs(t *testing.T) {
	f := func(args []string, stdin string, want []string, wantErr string) {
		t.Helper()
		got, err := erasureIDs(args, strings.NewReader(stdin))
		switch {
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("%q: error %v, want one containing %q", args, err, wantErr)
		case wantErr == "" && err != nil:
			t.Errorf("%q: %v", args, err)
		case wantErr == "" && !slices.Equal(got, want):
			t.Errorf("%q: %q, want %q", args, got, want)
		}
	}
	f([]string{"a", "b", "a"}, "", []string{"a", "b"}, "")
	f([]string{"-"}, "x\n\n  y \r\nx\n", []string{"x", "y"}, "")
	f([]string{"a", "-"}, "b\n", []string{"a", "b"}, "")
	f(nil, "", nil, "no CUSTOMER_ID")
	f([]string{"-"}, "\n\n", nil, "no customer id on standard input")
	f([]string{""}, "", nil, "argument 1: empty")
	f([]string{"-"}, "ok\n\x00meta\n", nil, "line 2: a customer id cannot start with a NUL byte")
	f([]string{strings.Repeat("x", maxErasureID+1)}, "", nil, "more than")
}

// TestEraseDuringKills requests the erasure of 100 customers in the middle
// of a kill -9 loop over a generated stream, and requires that none of
// them is left anywhere: not in the state (/v1/customers answers 404), not
// in the changelog (the latest record of each is its one tombstone, and
// compaction leaves none of its snapshots) and in no ClickHouse table, while the other customers are still there.
func TestEraseDuringKills(t *testing.T) {
	lap := stopwatch(t)
	s := chaosStack(t)
	cfg := runConfig(s.cfg, "erase")
	rng := rand.New(rand.NewPCG(3, 5))
	kills := func(n int) {
		for range n {
			in := startInstance(t, cfg, "erase")
			in.waitReady(time.Minute)
			time.Sleep(time.Duration(50+rng.IntN(450)) * time.Millisecond)
			in.kill()
		}
	}
	kills(3)
	lap("3 kills")

	// 100 customers the pipeline has written to ClickHouse by now.
	db := openCH(t, cfg.ClickHouse.DSN)
	var ids []string
	for deadline := time.Now().Add(time.Minute); len(ids) < 100; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d customers in ClickHouse after a minute", len(ids))
		}
		in := startInstance(t, cfg, "erase")
		in.waitReady(time.Minute)
		time.Sleep(time.Second)
		in.kill()
		rows, err := db.Query(fmt.Sprintf("SELECT DISTINCT customer_id FROM %s.customer_aggregates ORDER BY cityHash64(customer_id) LIMIT 100", cfg.ClickHouse.Database))
		if err != nil {
			t.Fatal(err)
		}
		ids = ids[:0]
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		rows.Close()
	}
	if behind(t, cfg) == 0 {
		t.Fatal("the input was processed before the erasure was requested; the stream is too small to prove anything")
	}
	// As an operator would: winback erase ID...
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var stdout, stderr strings.Builder
	args := append([]string{"erase", "--kafka-brokers=" + strings.Join(cfg.Kafka.Brokers, ","), "--topics-erasures=" + cfg.Topics.Erasures}, ids...)
	if code := run(ctx, args, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "requested the erasure of 100 customers") {
		t.Fatalf("winback erase: exit %d, %q, %q", code, stdout.String(), stderr.String())
	}
	if stderr.Len() > 0 {
		t.Errorf("winback erase, which succeeded, wrote to stderr (it logs at WARN by default):\n%s", stderr.String())
	}
	kills(4)
	lap("erasure requested, 4 more kills")

	// The drain in large transactions (see largeTransactions).
	in := startInstance(t, largeTransactions(cfg), "erase")
	waitCaughtUp(t, cfg.Kafka.Brokers, cfg.Kafka.Group, 3*time.Minute, append(drained(cfg), cfg.Topics.Erasures)...)
	in.waitReady(time.Minute)
	lap("drained")
	erased := map[string]bool{}
	for _, id := range ids {
		erased[id] = true
		if code := customerStatus(t, in.http, id); code != http.StatusNotFound {
			t.Errorf("/v1/customers/%s: %d after its erasure, want 404", id, code)
		}
	}
	var kept string
	rows, err := db.Query(fmt.Sprintf("SELECT DISTINCT customer_id FROM %s.customer_aggregates ORDER BY customer_id", cfg.ClickHouse.Database))
	if err != nil {
		t.Fatal(err)
	}
	others := 0
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		if !erased[id] {
			others++
			kept = id
		}
	}
	rows.Close()
	if others < 300 {
		t.Fatalf("only %d other customers in ClickHouse", others)
	}
	if code := customerStatus(t, in.http, kept); code != http.StatusOK {
		t.Errorf("/v1/customers/%s (not erased): %d, want 200", kept, code)
	}
	in.stop(cfg.ShutdownTimeout)

	// The changelog: one tombstone per erased customer, its latest record.
	latest := map[string][]byte{}
	tombstones := map[string]int{}
	snapshots := 0 // of the erased customers, before compaction
	for _, r := range consumeAll(t, cfg.Kafka.Brokers, cfg.Topics.State) {
		if r.Attrs.IsControl() {
			continue
		}
		k := string(r.Key)
		latest[k] = r.Value
		if r.Value == nil {
			tombstones[k]++
		} else if erased[k] {
			snapshots++
		}
	}
	for _, id := range ids {
		if v, ok := latest[id]; !ok || v != nil || tombstones[id] != 1 {
			t.Errorf("changelog of %s: latest %d bytes (present %v), %d tombstones; want one tombstone, last", id, len(v), ok, tombstones[id])
		}
	}
	// After compaction no snapshot of them is left, only the tombstones.
	s.k.Cluster().Compact()
	left := map[string]int{}
	for _, r := range consumeAll(t, cfg.Kafka.Brokers, cfg.Topics.State) {
		if !r.Attrs.IsControl() && r.Value != nil && erased[string(r.Key)] {
			left[string(r.Key)]++
		}
	}
	if snapshots == 0 || len(left) > 0 {
		t.Errorf("the changelog held %d snapshots of the erased customers before compaction, and still holds some of %d after it; want some, then none", snapshots, len(left))
	}

	// ClickHouse: no row of them in any table once the mutations ran.
	waitMutations(t, db, cfg.ClickHouse.Database)
	lap("changelog checked, mutations done")
	list := "'" + strings.Join(ids, "','") + "'"
	for _, q := range []string{ // %s: the database, then the ids
		"SELECT count() FROM %s.customer_aggregates WHERE customer_id IN (%s)",
		"SELECT count() FROM %s.customer_daily WHERE customer_id IN (%s)",
		"SELECT count() FROM %s.winback_triggers WHERE customer_id IN (%s)",
		"SELECT count() FROM %s.dlq_records WHERE key IN (%s)",
	} {
		var n int
		if err := db.QueryRow(fmt.Sprintf(q, cfg.ClickHouse.Database, list)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("%s = %d, want 0", fmt.Sprintf(q, cfg.ClickHouse.Database, "<the 100 erased ids>"), n)
		}
	}
	var triggers int
	if err := db.QueryRow(fmt.Sprintf("SELECT count() FROM %s.winback_triggers", cfg.ClickHouse.Database)).Scan(&triggers); err != nil || triggers == 0 {
		t.Errorf("winback_triggers holds %d rows (%v); the other customers' triggers should stay", triggers, err)
	}
}

// waitMutations waits until the mutations (ALTER ... DELETE on 18.16) of
// database are done.
func waitMutations(t *testing.T, db *sql.DB, database string) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); ; {
		var n int
		if err := db.QueryRow(fmt.Sprintf("SELECT count() FROM system.mutations WHERE database = '%s' AND is_done = 0", database)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mutations not done after a minute", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// customerStatus returns the status of GET /v1/customers/{id}.
func customerStatus(t *testing.T, httpAddr, id string) int {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/v1/customers/" + url.PathEscape(id))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestEvictionKills runs the generated stream with a 2-day state TTL once
// undisturbed and once through kill -9 restarts, and requires the same
// customers evicted in both (eviction is on event time), each with its
// changelog tombstone as its latest record, its one customer_aggregates
// row marked evicted at version 0, and no state (/v1/customers 404), while
// the customers kept have their snapshot as their latest record. Half the
// kills land once the incarnation has committed, and half must land before
// the input is processed.
func TestEvictionKills(t *testing.T) {
	s := generatedStack(t, 300, 2*time.Minute)
	// evicted checks the run's evicted and kept customers once they
	// settle, and returns the evicted.
	evicted := func(cfg config.Config, in *instance, final bool) []string {
		t.Helper()
		db := openCH(t, cfg.ClickHouse.DSN)
		waitMutations(t, db, cfg.ClickHouse.Database)
		rows, err := db.Query(fmt.Sprintf("SELECT customer_id, version, evicted FROM %s.customer_aggregates FINAL ORDER BY customer_id", cfg.ClickHouse.Database))
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		latest := map[string][]byte{}
		if final { // the changelog is checked only once the rows settled
			for _, r := range consumeAll(t, cfg.Kafka.Brokers, cfg.Topics.State) {
				if !r.Attrs.IsControl() {
					latest[string(r.Key)] = r.Value
				}
			}
		}
		var gone []string
		kept := 0
		for rows.Next() {
			var id string
			var version uint64
			var ev uint8
			if err := rows.Scan(&id, &version, &ev); err != nil {
				t.Fatal(err)
			}
			v, ok := latest[id]
			switch {
			case !final:
				if ev == 1 {
					gone = append(gone, id)
				}
			case ev == 1 && (version != 0 || !ok || v != nil):
				t.Errorf("%s evicted at version %d, changelog latest %d bytes (present %v); want version 0 and a tombstone", id, version, len(v), ok)
			case ev == 0 && (!ok || v == nil):
				t.Errorf("%s kept (version %d) but its changelog latest is a tombstone or missing", id, version)
			case ev == 1:
				gone = append(gone, id)
			default:
				kept++
			}
		}
		if !final {
			return gone
		}
		if len(gone) == 0 || kept == 0 {
			t.Fatalf("%d customers evicted, %d kept: the TTL proves nothing", len(gone), kept)
		}
		for _, id := range gone[:min(len(gone), 20)] {
			if code := customerStatus(t, in.http, id); code != http.StatusNotFound {
				t.Errorf("/v1/customers/%s: %d after its eviction, want 404", id, code)
			}
		}
		return gone
	}
	lap := stopwatch(t)
	run := func(name string, kills int) []string {
		cfg := runConfig(s.cfg, name)
		cfg.State.TTLDays = 2 // campaigns reach most customers twice a week: many evictions, and returns
		midway := 0
		committed := int64(0)
		for i := range kills {
			in := startInstance(t, cfg, name)
			in.waitReady(time.Minute)
			if i%2 == 1 { // every other kill once this incarnation has committed
				waitProgress(t, cfg, committed, time.Minute)
			}
			time.Sleep(time.Duration(100+kills*50) * time.Millisecond)
			in.kill()
			if behind(t, cfg) > 0 {
				midway++
			}
			if n, err := inputCommitted(t, cfg); err == nil { // no group before a first join
				committed = n
			}
		}
		if midway < kills/2 {
			t.Fatalf("%s: only %d of %d kills landed before the input was processed; the stream is too small to prove anything", name, midway, kills)
		}
		// The undisturbed run, and the drain after the kills, in large
		// transactions (see largeTransactions).
		in := startInstance(t, largeTransactions(cfg), name)
		waitCaughtUp(t, cfg.Kafka.Brokers, cfg.Kafka.Group, 3*time.Minute, drained(cfg)...)
		in.waitReady(time.Minute)
		lap(name + ": caught up")
		// ClickHouse is written after each commit: wait until it
		// confirmed the last one's rows; and the quiet tasks follow the
		// pipeline's event time after the idle timeout: wait until the
		// evicted rows stop changing.
		for deadline := time.Now().Add(time.Minute); metricSum(t, in.http, "winback_clickhouse_unconfirmed") != 0; {
			if time.Now().After(deadline) {
				t.Fatalf("%s: ClickHouse did not confirm the last transaction's rows within a minute", name)
			}
			time.Sleep(50 * time.Millisecond)
		}
		for prev, deadline := -1, time.Now().Add(time.Minute); ; {
			time.Sleep(time.Second)
			n := len(evicted(cfg, in, false))
			if n > 0 && n == prev {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: evicted customers did not settle within a minute (%d)", name, n)
			}
			prev = n
		}
		gone := evicted(cfg, in, true)
		in.stop(cfg.ShutdownTimeout)
		lap(name + ": evictions settled and checked")
		return gone
	}
	ref := run("ttlref", 0)
	got := run("ttlkill", 4)
	if !slices.Equal(ref, got) {
		a, b := diff(ref, got)
		t.Fatalf("evicted customers differ after kill -9: only undisturbed %v, only killed %v", a, b)
	}
	t.Logf("%d customers evicted in both runs", len(ref))
}
