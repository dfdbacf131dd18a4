package consume

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
)

// TestPickErasures: an erasure request takes its place in the merge at
// its timestamp, after the events of the same millisecond, and an empty
// erasures partition not read to its end holds the others back like any
// input.
func TestPickErasures(t *testing.T) {
	now := time.Unix(0, 0)
	erasures := func(next, hwm int64, times ...int64) source {
		s := queue(next, hwm, times...)
		for i := range s.len() {
			s.at(i).erase = true
		}
		return s
	}
	f := func(name string, er source, want []int) {
		t.Helper()
		tk := &task{}
		tk.src[0] = queue(3, 3, 10, 30, 50)
		tk.src[1], tk.src[2], tk.src[srcRepartition] = queue(0, 0), queue(0, 0), queue(0, 0)
		tk.src[srcErasures] = er
		var got []int
		for i := tk.pick(now, barrier{}); i >= 0; i = tk.pick(now, barrier{}) {
			tk.src[i].pop()
			got = append(got, i)
		}
		if len(got) != len(want) {
			t.Errorf("%s: picked %v, want %v", name, got, want)
			return
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: picked %v, want %v", name, got, want)
				return
			}
		}
	}
	f("in time order", erasures(2, 2, 30, 60), []int{0, 0, srcErasures, 0, srcErasures})
	f("held back", erasures(0, 1), nil)
	f("not read", source{}, []int{0, 0, 0}) // no erasures topic
}

// TestPlaceErasure: a request keyed by a customer id in its task becomes
// an erasure at its timestamp; one without a key, with a key that cannot
// be a customer's, or on another partition than murmur2 gives its key is
// dead-lettered with a reason that says so.
func TestPlaceErasure(t *testing.T) {
	r := &Runner{env: &env{keys: Partitioner(), nparts: 4}}
	var mine, other string
	for i := 0; mine == "" || other == ""; i++ {
		id := "c" + strconv.Itoa(i)
		if r.keys.Of(id, 4) == 2 {
			mine = id
		} else {
			other = id
		}
	}
	tk := &task{env: r.env, p: 2}
	at := time.UnixMilli(1_700_000_000_000)
	f := func(key []byte, want decode.Reason) {
		t.Helper()
		var q queued
		rec := &kgo.Record{Key: key, Timestamp: at, Partition: 2}
		tk.placeErasure(rec, &q)
		if want == "" {
			if !q.erase || q.rec != nil || q.ev.CustomerID != string(key) || q.ev.Time != at.UnixMilli() {
				t.Errorf("key %q: %+v, want an erasure at %d", key, q, at.UnixMilli())
			}
			return
		}
		if got, _ := decode.ReasonOf(q.err); q.erase || q.rec != rec || got != want {
			t.Errorf("key %q: erase %v, reason %q; want dead-lettered as %q", key, q.erase, got, want)
		}
	}
	f([]byte(mine), "")
	f(nil, decode.ReasonKeyMissing)
	f([]byte(other), decode.ReasonKeyPartition)
	f([]byte("\x00meta"), decode.ReasonFieldInvalid)
	f(make([]byte, maxErasureKey+1), decode.ReasonFieldTooLong)
}

// TestErase: applying an erasure removes the customer from the engine,
// adds its changelog tombstone to the task's outputs and its id to the
// transaction's erasures; a customer the task never held counts as
// absent, and its tombstone is written all the same.
func TestErase(t *testing.T) {
	r := &Runner{env: &env{cfg: Config{Topics: Topics{State: "st"}}, dep: Deps{Sink: nopSink{}}, m: newMetrics(nil)}}
	tk := &task{env: r.env, p: 1, eng: lapse.NewEngine(lapse.DefaultConfig(), 3, time.Unix(0, 0)), pend: pendingSet{key: pendKey}, cust: pendingSet{key: custKey}}
	ev := event.Event{Kind: event.KindEmail, EmailType: event.EmailDelivered, CustomerID: "a", Time: 1_700_000_000_000, CSAT: -1, NPS: -1}
	tk.eng.Apply(nil, lapse.SourceEmail, &ev, time.Unix(0, 0))
	// The transaction's unconfirmed triggers (truth.go): a's must go, so
	// that a restore does not write them to ClickHouse again.
	for _, id := range []string{"a", "c", "a"} {
		raw, err := json.Marshal(&event.Trigger{TriggerID: "t-" + id, CustomerID: id})
		if err != nil {
			t.Fatal(err)
		}
		tk.pend.items = append(tk.pend.items, raw)
		tk.cust.items = append(tk.cust.items, json.RawMessage(`"`+id+`"`))
	}
	for _, id := range []string{"a", "b"} {
		q := queued{erase: true}
		q.ev.CustomerID = id
		tk.erase(&q)
	}
	if tk.eng.Customer("a") != nil || tk.eng.Len() != 0 {
		t.Fatal("customer a still in the engine")
	}
	if len(tk.out.recs) != 2 {
		t.Fatalf("%d records, want 2 tombstones", len(tk.out.recs))
	}
	for i, id := range []string{"a", "b"} {
		if rec := tk.out.recs[i]; rec.Topic != "st" || rec.Partition != 1 || string(rec.Key) != id || rec.Value != nil {
			t.Errorf("record %d: %s/%d %q = %q, want the tombstone of %s on st/1", i, rec.Topic, rec.Partition, rec.Key, rec.Value, id)
		}
	}
	g := tk.out.gone
	if len(g.erased) != 2 || g.erased[0] != "a" || g.erased[1] != "b" || g.absent != 1 {
		t.Errorf("gone %+v, want a and b erased, 1 absent", g)
	}
	if len(tk.pend.items) != 1 || !strings.Contains(string(tk.pend.items[0]), `"t-c"`) {
		t.Errorf("pending triggers after erasing a: %s, want only c's", tk.pend.items)
	}
	if len(tk.cust.items) != 1 || string(tk.cust.items[0]) != `"c"` {
		t.Errorf("pending customers after erasing a: %s, want only c", tk.cust.items)
	}
}

// TestKeyPartitionerAllocatesNothing: Of runs for every input record; it
// places ids as franz-go's default partitioner does, and allocates
// nothing once warm.
func TestKeyPartitionerAllocatesNothing(t *testing.T) {
	k := Partitioner()
	ref := kgo.StickyKeyPartitioner(nil).ForTopic("")
	for i := range 2000 {
		id := "customer-" + strconv.Itoa(i*7919)
		for _, n := range []int{1, 3, 12, 97} {
			if got, want := k.Of(id, n), int32(ref.Partition(&kgo.Record{Key: []byte(id)}, n)); got != want {
				t.Fatalf("Of(%q, %d) = %d, franz-go says %d", id, n, got, want)
			}
		}
	}
	// AllocsPerRun counts the whole process: a stray allocation elsewhere
	// must not fail this, one per call must.
	if allocs := testing.AllocsPerRun(1000, func() { k.Of("customer-123456", 12) }); allocs >= 0.5 {
		t.Errorf("Of allocates %.2f times per call", allocs)
	}
}
