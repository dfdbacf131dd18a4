package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/config"
	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/event"
)

// TestKillNineDuringFollow kills winback while quiet tasks follow the
// pipeline's event time: 30 weekly buyers who stopped 60–90 days ago,
// spread over three partitions, and one active buyer whose orders run to
// two days ago, so that only following brings the other partitions'
// lapses due. SIGKILLs land around the idle timeout, when the follows and
// their triggers happen; after the restarts the trigger ids and the
// aggregates must equal an undisturbed run's.
func TestKillNineDuringFollow(t *testing.T) {
	s := newStack(t, 3)
	now := time.Now().UTC()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.cfg.Kafka.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	order := func(cust string, n int, at time.Time) *kgo.Record {
		ev := event.Event{Kind: event.KindOrder, EventID: fmt.Sprintf("%s-%d", cust, n), CustomerID: cust, Time: at.UnixMilli(),
			OrderType: event.OrderPlaced, OrderID: fmt.Sprintf("%s-o%d", cust, n), Amount: 25, Currency: "EUR", Items: 1}
		return &kgo.Record{Topic: s.cfg.Topics.Orders, Key: []byte(cust), Value: codec.AppendEventJSON(nil, &ev), Timestamp: at}
	}
	const lapsers = 30
	var recs []*kgo.Record
	for c := range lapsers {
		end := now.AddDate(0, 0, -60-c)
		for i := range 10 {
			recs = append(recs, order(fmt.Sprintf("lapser-%02d", c), i, end.AddDate(0, 0, -7*(9-i))))
		}
	}
	for i := range 30 {
		recs = append(recs, order("active", i, now.AddDate(0, 0, -2-7*(29-i))))
	}
	// In event-time order, as a live feed writes them: the e-mail and
	// support topics are empty, so the orders alone move each task's
	// event time, record by record.
	slices.SortStableFunc(recs, func(a, b *kgo.Record) int { return a.Timestamp.Compare(b.Timestamp) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	base := s.cfg
	base.Lapse.IdleTimeout = 2 * time.Second
	// The events are placed from the wall clock, so the trigger ids, and
	// the holdout's draw on them, change with the day: at the default
	// share (0.1) some days give none of the 30 triggers CONTROL, and the
	// treatment check (chaos_test.go compare) needs both arms.
	base.Lapse.Lifecycle.HoldoutShare = 0.5
	waitTriggers := func(cfg config.Config, want int) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for {
			n := len(consumeAll(t, cfg.Kafka.Brokers, cfg.Topics.Triggers))
			if n >= want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d triggers after a minute, want %d", cfg.Kafka.Group, n, want)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}

	ref := runConfig(base, "followref")
	in := startInstance(t, ref, "followref-0")
	waitTriggers(ref, lapsers)
	time.Sleep(2 * time.Second) // nothing more may come
	in.stop(ref.ShutdownTimeout)
	want := collect(t, ref)
	if len(want.triggerIDs) != lapsers {
		t.Fatalf("undisturbed run: %d triggers, want one per lapser (%d)", len(want.triggerIDs), lapsers)
	}

	cfg := runConfig(base, "followkill")
	rng := rand.New(rand.NewPCG(3, 5))
	early := 0 // kills before every follow had committed
	for range 6 {
		in := startInstance(t, cfg, "followkill")
		in.waitReady(time.Minute)
		time.Sleep(time.Duration(1000+rng.IntN(2500)) * time.Millisecond)
		in.kill()
		if len(consumeAll(t, cfg.Kafka.Brokers, cfg.Topics.Triggers)) < lapsers {
			early++
		}
	}
	if early == 0 {
		t.Fatal("every kill came after the follows had committed; the test proves nothing")
	}
	t.Logf("%d of 6 kills landed before every follow had committed", early)
	in = startInstance(t, cfg, "followkill")
	waitTriggers(cfg, lapsers)
	time.Sleep(2 * time.Second)
	in.stop(cfg.ShutdownTimeout)
	compare(t, "SIGKILLs during the follows", want, collect(t, cfg))
}
