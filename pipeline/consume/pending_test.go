package consume

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/winback/winback/pipeline/event"
)

// TestPendingRecords: the triggers of a transaction go to the changelog in
// chunks under the record limit; the next transaction clears every chunk
// it does not rewrite, and a restore reads back what was written.
func TestPendingRecords(t *testing.T) {
	r := truthRunner(nopSink{}, time.Now())
	tk := r.newTask(2, inputPositions{})
	var want []string
	for i := range 6000 {
		tr := event.Trigger{TriggerID: strings.Repeat("x", 100) + string(rune('a'+i%26)) + string(rune('A'+i/26%26)) + string(rune('0'+i/676)),
			CustomerID: "c", Kind: event.TriggerWinback, Evidence: map[string]float64{"days": float64(i)}, AsOf: int64(i), EmittedAt: 5}
		raw, err := json.Marshal(&tr)
		if err != nil {
			t.Fatal(err)
		}
		tk.pend.items = append(tk.pend.items, raw)
		want = append(want, tr.TriggerID)
	}
	recs, err := tk.pend.records("st", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) < 2 || tk.pend.chunks != len(recs) || len(tk.pend.items) != 0 {
		t.Fatalf("%d records, chunks %d, %d left pending", len(recs), tk.pend.chunks, len(tk.pend.items))
	}
	restored := r.newTask(2, inputPositions{})
	for i, rec := range recs {
		if len(rec.Value) > pendChunkBytes+2 {
			t.Errorf("chunk %d holds %d bytes", i, len(rec.Value))
		}
		if rec.Topic != "st" || rec.Partition != 2 {
			t.Errorf("chunk %d goes to %s/%d", i, rec.Topic, rec.Partition)
		}
		if err := restored.restoreRecord(rec); err != nil {
			t.Fatal(err)
		}
	}
	trigs, _, _, _ := restored.finishRestore()
	if len(trigs) != len(want) {
		t.Fatalf("restored %d triggers, wrote %d", len(trigs), len(want))
	}
	for i := range trigs {
		if trigs[i].TriggerID != want[i] || trigs[i].Evidence["days"] != float64(i) {
			t.Fatalf("trigger %d restored as %+v", i, trigs[i])
		}
	}
	if restored.pend.chunks != len(recs) || len(restored.pend.items) != len(want) {
		t.Errorf("restored task carries %d triggers in %d chunks", len(restored.pend.items), restored.pend.chunks)
	}

	// The next transaction has one trigger: chunk 0 holds it, the others
	// are cleared; then none: chunk 0 is cleared; then nothing is due.
	tk.pend.items = append(tk.pend.items, json.RawMessage(`{"TriggerID":"one"}`))
	next, err := tk.pend.records("st", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(next) != len(recs) || tk.pend.chunks != 1 {
		t.Fatalf("%d records (want %d), chunks %d", len(next), len(recs), tk.pend.chunks)
	}
	for i, rec := range next[1:] {
		raw, err := parsePending(rec.Value)
		if err != nil || len(raw) != 0 {
			t.Errorf("chunk %d not cleared: %v %d", i+1, err, len(raw))
		}
	}
	if clear, _ := tk.pend.records("st", 2); len(clear) != 1 || tk.pend.chunks != 0 {
		t.Errorf("%d records to clear one chunk, chunks %d", len(clear), tk.pend.chunks)
	}
	if tk.pend.due() {
		t.Error("due with nothing pending and nothing to clear")
	}
}

func FuzzParsePending(f *testing.F) {
	f.Add(appendPending(nil, nil))
	f.Add(appendPending(nil, []json.RawMessage{json.RawMessage(`{"TriggerID":"a","Evidence":{"x":1.5},"PLapse":0.25}`)}))
	f.Add(appendPending(nil, []json.RawMessage{json.RawMessage(`"c-1"`), json.RawMessage(`"c-2"`)}))
	f.Add([]byte{1, '[', '{', '}', ']'})
	f.Add([]byte{2, '[', ']'})
	f.Fuzz(func(t *testing.T, b []byte) {
		raw, err := parsePending(b)
		if err != nil {
			return
		}
		// What parses is written back the same, and decodes the same.
		raw2, err := parsePending(appendPending(nil, raw))
		if err != nil || len(raw2) != len(raw) {
			t.Fatalf("re-encoded: %v, %d of %d", err, len(raw2), len(raw))
		}
		trigs, err := parseTriggers(raw)
		trigs2, err2 := parseTriggers(raw2)
		if (err == nil) != (err2 == nil) || len(trigs) != len(trigs2) {
			t.Fatalf("triggers: %v then %v", err, err2)
		}
		for i := range trigs2 {
			if trigs2[i].TriggerID != trigs[i].TriggerID {
				t.Fatalf("trigger %d: %q, then %q", i, trigs[i].TriggerID, trigs2[i].TriggerID)
			}
		}
		ids, err := parseIDs(raw)
		ids2, err2 := parseIDs(raw2)
		if (err == nil) != (err2 == nil) || !slices.Equal(ids, ids2) {
			t.Fatalf("ids: %q, %v then %q, %v", ids, err, ids2, err2)
		}
	})
}

// TestEvictedRowsPending: the evicted rows of a transaction stay in the
// changelog like its triggers, so that a restore after a crash before
// ClickHouse confirmed them writes them again (the customer is gone from
// the state, which cannot rebuild them); an erasure drops them, and a
// pending row that is not an evicted customer's is refused.
func TestEvictedRowsPending(t *testing.T) {
	r := truthRunner(nopSink{}, time.Now())
	tk := r.newTask(1, inputPositions{})
	if tk.evict.due() {
		t.Error("a task that evicted nobody would write evicted-row chunks, which releases before them cannot restore")
	}
	want := []event.Aggregate{
		{CustomerID: "c1", Evicted: true, AsOf: 5, OrdersTotal: 3, SpendTotal: 42.5, LastCSAT: -1, BaselineSource: "personal"},
		{CustomerID: "c2", Evicted: true, AsOf: 6},
	}
	for i := range want {
		raw, err := json.Marshal(&want[i])
		if err != nil {
			t.Fatal(err)
		}
		tk.evict.items = append(tk.evict.items, raw)
	}
	tk.erase(&queued{ev: event.Event{CustomerID: "c2"}})
	recs, err := tk.evict.records("st", 1)
	if err != nil {
		t.Fatal(err)
	}
	restored := r.newTask(1, inputPositions{})
	for _, rec := range recs {
		if err := restored.restoreRecord(rec); err != nil {
			t.Fatal(err)
		}
	}
	_, _, got, _ := restored.finishRestore()
	if !reflect.DeepEqual(got, want[:1]) {
		t.Errorf("restored evicted rows %+v, want %+v (c2 erased)", got, want[:1])
	}
	if _, err := parseAggregates([]json.RawMessage{json.RawMessage(`{"CustomerID":"c3"}`)}); err == nil {
		t.Error("a pending row that is not evicted was accepted")
	}
}
