package lapse

import (
	"bytes"
	"errors"
	"testing"

	"github.com/winback/winback/pipeline/event"
)

// fuzzSeeds returns real snapshots of customers with every kind of state.
func fuzzSeeds(tb testing.TB) (*Engine, [][]byte) {
	stream := genStream(9, 40, 200, 0.01)
	e := NewEngine(DefaultConfig(), 3, wallAt(0))
	for i := range stream {
		e.Apply(nil, stream[i].src, &stream[i].ev, wallAt(i))
	}
	var seeds [][]byte
	for slot := uint32(0); slot < e.n; slot++ {
		seeds = append(seeds, e.AppendSnapshot(nil, e.at(slot)))
	}
	return e, seeds
}

// FuzzRestoreCustomer: corrupt snapshots never panic; they either fail with
// a *SnapshotError and change nothing, or restore a customer that encodes
// back to the same bytes and keeps working.
func FuzzRestoreCustomer(f *testing.F) {
	_, seeds := fuzzSeeds(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Add([]byte{})
	f.Add([]byte{2})
	f.Fuzz(func(t *testing.T, b []byte) {
		e := NewEngine(DefaultConfig(), 3, wallAt(0))
		err := e.RestoreCustomer("c", b)
		if err != nil {
			var se *SnapshotError
			if !errors.As(err, &se) || !(errors.Is(err, ErrCorruptSnapshot) || errors.Is(err, ErrSnapshotVersion)) {
				t.Fatalf("untyped error %v", err)
			}
			if e.Len() != 0 || e.PendingTimers() != 0 {
				t.Fatal("a failed restore changed the engine")
			}
			return
		}
		c := e.Customer("c")
		out := e.AppendSnapshot(nil, c)
		if !bytes.Equal(out, b) {
			// Varints may be non-canonical in the input: the output must
			// at least be a fixed point.
			e2 := NewEngine(DefaultConfig(), 3, wallAt(0))
			if err := e2.RestoreCustomer("c", out); err != nil {
				t.Fatalf("re-encoded snapshot does not restore: %v", err)
			}
			if again := e2.AppendSnapshot(nil, e2.Customer("c")); !bytes.Equal(again, out) {
				t.Fatal("re-encoding is not stable")
			}
		}
		// The restored customer keeps working.
		c.Aggregate(e)
		if _, err := c.MarshalJSON(); err != nil {
			t.Fatal(err)
		}
		for i, ev := range []event.Event{
			{Kind: event.KindOrder, EventID: "x1", CustomerID: "c", Time: 1780000000000, OrderType: event.OrderPlaced, Amount: 10, CSAT: -1, NPS: -1},
			{Kind: event.KindEmail, EventID: "x2", CustomerID: "c", Time: 1780000001000, EmailType: event.EmailOpened, CampaignID: "k", CSAT: -1, NPS: -1},
			{Kind: event.KindSupport, EventID: "x3", CustomerID: "c", Time: 1780000002000, SupportType: event.SupportResolved, TicketID: "t", CSAT: 1, NPS: 3},
		} {
			e.Apply(nil, i, &ev, wallAt(1))
		}
		e.Advance(nil, wallAt(1e6))
		e.RestoreCustomer("c", b) // and again over the changed one
	})
}

// FuzzRestoreMeta: corrupt task meta never panics.
func FuzzRestoreMeta(f *testing.F) {
	e, _ := fuzzSeeds(f)
	f.Add(e.AppendMeta(nil))
	f.Add(e.wm.AppendBinary([]byte{metaSnapshotV1})) // before the purchase model
	f.Add([]byte{1, 3, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		e := NewEngine(DefaultConfig(), 3, wallAt(0))
		before := e.AppendMeta(nil)
		if err := e.RestoreMeta(b); err != nil {
			var se *SnapshotError
			if !errors.As(err, &se) {
				t.Fatalf("untyped error %v", err)
			}
			if !bytes.Equal(e.AppendMeta(nil), before) {
				t.Fatal("a failed restore changed the meta")
			}
			return
		}
		ev := event.Event{Kind: event.KindOrder, EventID: "x", CustomerID: "c", Time: 1780000000000, OrderType: event.OrderPlaced, Amount: 10, CSAT: -1, NPS: -1}
		e.Apply(nil, 0, &ev, wallAt(1))
		e.Advance(nil, wallAt(1e6))
		e.Watermark()
	})
}
