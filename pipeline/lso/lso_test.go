package lso

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/testenv"
)

// TestRead: a read covers what was committed when the spans were listed:
// no aborted records, no transaction markers, nothing produced after the
// listing, every partition in offset order; a partition whose last record
// before its end is a transaction marker is seen to be done. One client
// reads again and again.
func TestRead(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	k := testenv.NewKafka(t, "a", "b")
	produce := func(cl *kgo.Client, topic string, part int32, vals ...string) {
		t.Helper()
		for _, v := range vals {
			if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: part, Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	txn, err := kgo.NewClient(kgo.SeedBrokers(k.Addr()), kgo.TransactionalID("replay-test"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer txn.Close()
	end := func(commit kgo.TransactionEndTry) {
		t.Helper()
		if err := txn.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(txn, "a", 0, "a0-1", "a0-2")
	produce(txn, "a", 2, "a2-1")
	end(kgo.TryCommit)
	if err := txn.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce(txn, "a", 0, "aborted")
	end(kgo.TryAbort) // a0's last record is now the abort marker
	plain, err := kgo.NewClient(kgo.SeedBrokers(k.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	produce(plain, "b", 4, "b4-1", "b4-2", "b4-3")

	spans, err := List(ctx, kadm.NewClient(plain), "a", "b")
	if err != nil {
		t.Fatal(err)
	}
	if len(spans["a"]) != 6 || len(spans["b"]) != 6 {
		t.Fatalf("spans of %d and %d partitions, want every partition", len(spans["a"]), len(spans["b"]))
	}
	produce(plain, "b", 4, "after the listing")
	produce(plain, "a", 1, "after the listing")

	cl, err := kgo.NewClient(append(ClientOpts(), kgo.SeedBrokers(k.Addr()))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var got, done []string
	o := Options{Stall: 15 * time.Second, Done: func(topic string, p int32) { done = append(done, fmt.Sprintf("%s/%d", topic, p)) }}
	err = Read(ctx, cl, spans, o, func(r *kgo.Record) error {
		got = append(got, fmt.Sprintf("%s/%d %s", r.Topic, r.Partition, r.Value))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Sort(done); !slices.Equal(done, []string{"a/0", "a/2", "b/4"}) {
		t.Errorf("done %q, want the partitions with records", done)
	}
	// Partitions interleave as fetches come; each keeps its order.
	want := []string{"a/0 a0-1", "a/0 a0-2", "a/2 a2-1", "b/4 b4-1", "b/4 b4-2", "b/4 b4-3"}
	if sorted := slices.Sorted(slices.Values(got)); !slices.Equal(sorted, want) {
		t.Fatalf("read %q, want %q", got, want)
	}
	for _, p := range []string{"a/0", "b/4"} {
		var order []string
		for _, g := range got {
			if strings.HasPrefix(g, p+" ") {
				order = append(order, g)
			}
		}
		if !slices.IsSorted(order) {
			t.Errorf("%s read out of order: %q", p, order)
		}
	}

	// fn's error ends the read; the same client reads again, from the
	// start.
	stop := errors.New("stop")
	n := 0
	err = Read(ctx, cl, spans, o, func(*kgo.Record) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("fn failing: %v after %d records, want %v after 1", err, n, stop)
	}
	n = 0
	if err := Read(ctx, cl, spans, o, func(*kgo.Record) error { n++; return nil }); err != nil || n != len(want) {
		t.Errorf("read again: %v after %d records, want %d", err, n, len(want))
	}

	// An end that never comes: the read gives up after the stall time and
	// says where it stands.
	short := Spans{"b": {3: {Start: 0, End: 2}}}
	err = Read(ctx, cl, short, Options{Stall: 300 * time.Millisecond}, func(*kgo.Record) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "b/3 at 0 of 2") {
		t.Errorf("stalled read: %v, want it to name b/3", err)
	}

	// Nothing to read: no client, no wait.
	if err := Read(ctx, cl, Spans{"a": {5: {Start: 0, End: 0}}}, Options{}, nil); err != nil {
		t.Errorf("empty spans: %v", err)
	}
}
