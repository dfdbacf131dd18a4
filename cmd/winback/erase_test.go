package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/winback/winback/testenv"
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
// in the changelog (the latest record of each is its one tombstone) and in
// no ClickHouse table, while the other customers are still there.
func TestEraseDuringKills(t *testing.T) {
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
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if n, err := requestErasures(ctx, &cfg, ids, testenv.TestLogger(t)); err != nil || n != len(ids) {
		t.Fatalf("requestErasures: %d, %v", n, err)
	}
	kills(4)

	in := startInstance(t, cfg, "erase")
	waitCaughtUp(t, cfg.Kafka.Brokers, cfg.Kafka.Group, 3*time.Minute, append(inputs(cfg), cfg.Topics.Erasures)...)
	in.waitReady(time.Minute)
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
	for _, r := range consumeAll(t, cfg.Kafka.Brokers, cfg.Topics.State) {
		if r.Attrs.IsControl() {
			continue
		}
		k := string(r.Key)
		latest[k] = r.Value
		if r.Value == nil {
			tombstones[k]++
		}
	}
	for _, id := range ids {
		if v, ok := latest[id]; !ok || v != nil || tombstones[id] != 1 {
			t.Errorf("changelog of %s: latest %d bytes (present %v), %d tombstones; want one tombstone, last", id, len(v), ok, tombstones[id])
		}
	}

	// ClickHouse: no row of them in any table once the mutations ran.
	for deadline := time.Now().Add(time.Minute); ; {
		var n int
		if err := db.QueryRow(fmt.Sprintf("SELECT count() FROM system.mutations WHERE database = '%s' AND is_done = 0", cfg.ClickHouse.Database)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d mutations not done after a minute", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
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
