package main

import (
	"testing"
	"time"
)

// TestAbortRollsBack injects commit failures that make the broker abort
// transactions mid-stream, and requires every abort to be taken back in
// memory (winback_abort_rollbacks_total) with no changelog restore (no
// changelog record read after the start, winback_abort_restores_total 0),
// and the same triggers, treatments, dead letters and ClickHouse
// aggregates as a run with no fault.
func TestAbortRollsBack(t *testing.T) {
	s := generatedStack(t, 300, 2*time.Minute)
	base := s.cfg
	// Larger transactions than runConfig's: each aborted one then holds
	// triggers, which a transaction not rolled back would lose (its
	// replayed events would be duplicates to the engine).
	ref := runConfig(base, "rbref")
	ref.MaxPollRecords = 1000
	in := startInstance(t, ref, "rbref-0")
	waitCaughtUp(t, ref.Kafka.Brokers, ref.Kafka.Group, 3*time.Minute, drained(ref)...)
	in.stop(ref.ShutdownTimeout)
	want := collect(t, ref)

	cfg := runConfig(base, "rollback")
	cfg.MaxPollRecords = ref.MaxPollRecords
	in = startInstance(t, cfg, "rollback-0")
	in.waitReady(time.Minute)
	// Once every task has committed (the rollback returns to a commit).
	for deadline := time.Now().Add(30 * time.Second); metricSum(t, in.http, "winback_transactions_committed_total") < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("nothing committed within 30 s:\n%s", in.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	restored := metricSum(t, in.http, "winback_restore_records_total")
	aborts0 := metricSum(t, in.http, "winback_transactions_aborted_total")
	const n = 6
	failed := failCommits(s, n)
	for deadline := time.Now().Add(time.Minute); failed.Load() < n; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of the %d injected commit failures happened", failed.Load(), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if behind(t, cfg) == 0 {
		t.Fatal("the stream was processed before the last injected failure; it proves nothing")
	}
	waitCaughtUp(t, cfg.Kafka.Brokers, cfg.Kafka.Group, 3*time.Minute, drained(cfg)...)

	aborts := metricSum(t, in.http, "winback_transactions_aborted_total") - aborts0
	rollbacks := metricSum(t, in.http, "winback_abort_rollbacks_total")
	restores := metricSum(t, in.http, "winback_abort_restores_total")
	read := metricSum(t, in.http, "winback_restore_records_total") - restored
	t.Logf("%v transactions aborted, %v task rollbacks, %v task restores, %v changelog records read after the start", aborts, rollbacks, restores, read)
	if aborts < n {
		t.Errorf("%v transactions aborted, want at least %d", aborts, n)
	}
	if rollbacks < n {
		t.Errorf("winback_abort_rollbacks_total = %v, want at least %d (one per task per abort)", rollbacks, n)
	}
	if restores != 0 || read != 0 {
		t.Errorf("aborts restored %v tasks and read %v changelog records; want none:\n%s", restores, read, in.out.String())
	}
	in.stop(cfg.ShutdownTimeout)
	compare(t, "after 6 aborted transactions rolled back", want, collect(t, cfg))
}
