package replay

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/consume"
	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
)

// TestOrder: golden cases of the order a task's events are applied in:
// the merge of its streams, one per (source, input partition).
func TestOrder(t *testing.T) {
	type rec struct {
		src  int
		part int32
		time int64
	}
	for _, tc := range []struct {
		name string
		recs []rec // in input order
		want string
	}{
		{"by event time across sources",
			[]rec{{0, 0, 10}, {1, 0, 5}, {2, 0, 7}, {0, 0, 20}, {1, 0, 15}},
			"1/0@5 2/0@7 0/0@10 1/0@15 0/0@20"},
		{"ties to the lower source, whatever the input order",
			[]rec{{2, 0, 5}, {1, 0, 5}, {0, 0, 5}},
			"0/0@5 1/0@5 2/0@5"},
		{"ties in a source to the lower partition",
			[]rec{{0, 3, 5}, {0, 1, 5}, {1, 0, 5}, {0, 2, 5}},
			"0/1@5 0/2@5 0/3@5 1/0@5"},
		{"a stream keeps its input order",
			[]rec{{0, 0, 10}, {0, 0, 4}, {1, 0, 7}},
			"1/0@7 0/0@10 0/0@4"},
		{"one stream", []rec{{2, 1, 3}, {2, 1, 1}}, "2/1@3 2/1@1"},
	} {
		in := NewInput("test", 1)
		for i, r := range tc.recs {
			in.Add(r.src, r.part, &event.Event{CustomerID: "c1", EventID: fmt.Sprint(i), Time: r.time})
		}
		var got []string
		err := in.tasks[0].each(context.Background(), func(src int, ev *event.Event) {
			part := tc.recs[int(ev.EventID[0]-'0')].part
			got = append(got, fmt.Sprintf("%d/%d@%d", src, part, ev.Time))
		})
		if err != nil {
			t.Fatal(err)
		}
		if s := strings.Join(got, " "); s != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, s, tc.want)
		}
	}
}

// TestPlacement: customers go to the task of the input partition the
// pipeline gives them.
func TestPlacement(t *testing.T) {
	in := NewInput("test", 6)
	for i := range 200 {
		in.Add(0, 0, &event.Event{CustomerID: fmt.Sprintf("c%06d", i)})
	}
	for p := range in.tasks {
		for _, s := range in.tasks[p].streams {
			for _, ev := range s.evs {
				if want := consume.PartitionOf(ev.CustomerID, 6); int32(p) != want {
					t.Fatalf("%s in task %d, the pipeline's partition %d", ev.CustomerID, p, want)
				}
			}
		}
	}
	if in.Events != 200 {
		t.Errorf("%d events counted, want 200", in.Events)
	}
}

// generated reads a generated history into an Input of parts tasks.
func generated(t *testing.T, parts int) *Input {
	t.Helper()
	g, err := gen.New(gen.Config{Customers: 80, Days: 200, Start: time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC), Seed: 5})
	if err != nil {
		t.Fatal(err)
	}
	in := NewInput("gen", parts)
	err = g.Each(func(r *gen.Record) error {
		if r.Malformed == nil {
			in.Add(lapse.SourceOf(r.Kind), 0, &r.Event)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// TestReplay: a replay is repeatable, does not depend on how customers
// are spread over tasks (no refits at this size), and applies nothing at
// or after its until.
func TestReplay(t *testing.T) {
	ctx := context.Background()
	cfg := lapse.DefaultConfig()
	triggers := func(rs []Result) []string {
		var out []string
		for _, r := range rs {
			for _, tr := range r.Triggers {
				out = append(out, fmt.Sprintf("%s %s %d %v", tr.CustomerID, tr.Kind, tr.AsOf, tr.Reasons))
			}
		}
		slices.Sort(out)
		return out
	}
	one := generated(t, 1)
	a, err := one.Replay(ctx, cfg, math.MaxInt64, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := one.Replay(ctx, cfg, math.MaxInt64, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(triggers(a)) == 0 {
		t.Fatal("no triggers: the history is too short to test anything")
	}
	if !reflect.DeepEqual(triggers(a), triggers(b)) || !reflect.DeepEqual(a[0].Stats, b[0].Stats) {
		t.Error("a second replay of the same input differs")
	}
	if a[0].Stats.Events != uint64(one.Events) {
		t.Errorf("applied %d events of %d", a[0].Stats.Events, one.Events)
	}
	four, err := generated(t, 4).Replay(ctx, cfg, math.MaxInt64, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := triggers(four), triggers(a); !slices.Equal(got, want) {
		t.Errorf("4 tasks: %d triggers, 1 task: %d; they differ", len(got), len(want))
	}

	// An event's own time: it is not applied.
	evs := one.tasks[0].streams[0].evs
	until := evs[len(evs)/2].Time
	c, err := one.Replay(ctx, cfg, until, nil)
	if err != nil {
		t.Fatal(err)
	}
	before, placedAfter := 0, 0
	for _, s := range one.tasks[0].streams {
		for _, ev := range s.evs {
			switch {
			case ev.Time < until:
				before++
			case ev.Kind == event.KindOrder && ev.OrderType == event.OrderPlaced:
				placedAfter++
			}
		}
	}
	if c[0].Stats.Events != uint64(before) || len(c[0].After) != placedAfter {
		t.Errorf("until: applied %d events, %d placed orders after; want %d and %d", c[0].Stats.Events, len(c[0].After), before, placedAfter)
	}
	for _, ev := range c[0].Orders {
		if ev.Time >= until {
			t.Fatalf("order at %d applied, at or after until %d", ev.Time, until)
		}
	}
	for _, ev := range c[0].After {
		if ev.Time < until || ev.OrderType != event.OrderPlaced {
			t.Fatalf("order at %d (type %v) in After, until %d", ev.Time, ev.OrderType, until)
		}
	}
}

// TestReject: bad records are counted by reason; a registry outage and an
// error that is not a decode error stop the read instead.
func TestReject(t *testing.T) {
	in := NewInput("test", 1)
	f := func(err error, stops bool) {
		t.Helper()
		if got := in.Reject("r", err); (got != nil) != stops {
			t.Errorf("Reject(%v) = %v, want stopping %v", err, got, stops)
		}
	}
	f(&decode.Error{Reason: decode.ReasonJSONSyntax, Err: errors.New("x")}, false)
	f(fmt.Errorf("wrapped: %w", &decode.Error{Reason: decode.ReasonJSONSyntax, Err: errors.New("y")}), false)
	f(&decode.Error{Reason: decode.ReasonTimeInFuture, Err: errors.New("z")}, false)
	f(&decode.Error{Reason: decode.ReasonRegistryUnavailable, Err: errors.New("down")}, true)
	f(errors.New("disk on fire"), true)
	if want := map[string]int{"json.syntax": 2, "time.in_future": 1}; !reflect.DeepEqual(in.Bad, want) || in.BadTotal() != 3 {
		t.Errorf("bad %v (total %d), want %v", in.Bad, in.BadTotal(), want)
	}
}
