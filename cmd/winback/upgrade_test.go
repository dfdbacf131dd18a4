package main

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A group rolled back from a later release finds control records in the
// changelog that it does not know: it restores on, keeps every customer,
// deletes those records in its next commit, and ClickHouse still equals
// the state.
func TestRollbackFromLaterRelease(t *testing.T) {
	s := newStack(t, 3)
	cfg := truthConfig(s, "later")
	day := time.Now().UTC().Truncate(24 * time.Hour)
	produce, run := runsOf(t, cfg, "later")
	produce(genOptions{customers: 40, days: 120, seed: 5, encoding: "json", end: day.AddDate(0, 0, -20).Format(time.DateOnly)})
	run()
	before, _ := restoredState(t, cfg)
	if len(before) == 0 {
		t.Fatal("the first run left no customers")
	}

	// What a later release might have written, on every partition.
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Kafka.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	later := map[string]bool{"\x00later-format": true, "\x00chpend-v2": true}
	for p := range int32(3) {
		for k := range later {
			rec := &kgo.Record{Topic: cfg.Topics.State, Partition: p, Key: []byte(k), Value: []byte{9, 'x'}}
			if err := cl.ProduceSync(ctx, rec).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The older release runs on: it must not stop at the records, and its
	// commits delete them.
	produce(genOptions{customers: 40, days: 20, seed: 6, encoding: "json", end: day.Format(time.DateOnly)})
	run()
	last := map[int32]map[string][]byte{}
	for _, r := range consumeAll(t, cfg.Kafka.Brokers, cfg.Topics.State) {
		if later[string(r.Key)] {
			if last[r.Partition] == nil {
				last[r.Partition] = map[string][]byte{}
			}
			last[r.Partition][string(r.Key)] = r.Value
		}
	}
	for p := range int32(3) {
		for k := range later {
			if v, ok := last[p][k]; !ok || v != nil {
				t.Errorf("partition %d: the last record of %q is %x (present %v), want the tombstone of a commit", p, k, v, ok)
			}
		}
	}
	after, _ := restoredState(t, cfg)
	if len(after) < len(before) {
		t.Errorf("%d customers after the rollback's run, %d before", len(after), len(before))
	}
	db := openCH(t, cfg.ClickHouse.DSN)
	got := map[string]bool{}
	for _, line := range clickhouseAggregates(t, db, cfg.ClickHouse.Database) {
		got[line] = true
	}
	for _, want := range after {
		if !got[want] {
			t.Errorf("ClickHouse lacks the state's row %s", want)
		}
	}
}
