package consume

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
)

// recSink records what the runner hands the ClickHouse sink.
type recSink struct {
	nopSink
	aggs  []event.Aggregate
	trigs []event.Trigger
}

func (s *recSink) Add(rows *event.Rows) {
	s.aggs = append(s.aggs, rows.Aggregates...)
	s.trigs = append(s.trigs, rows.Triggers...)
}

func truthRunner(sink Sink, wall time.Time) *Runner {
	return &Runner{env: &env{cfg: Config{Lapse: lapse.DefaultConfig(), Topics: Topics{State: "st", Progress: "pr"}},
		dep: Deps{Sink: sink, Outputs: testOutputs}, log: slog.New(slog.DiscardHandler), m: newMetrics(nil), now: func() time.Time { return wall }}}
}

func TestEpochRecord(t *testing.T) {
	for _, e := range []uint32{0, 1, 1796000000, 1<<32 - 1} {
		got, err := parseEpoch(appendEpoch(nil, e))
		if err != nil || got != e {
			t.Errorf("epoch %d: got %d, %v", e, got, err)
		}
	}
	f := func(b []byte, want error) {
		t.Helper()
		if _, err := parseEpoch(b); !errors.Is(err, want) {
			t.Errorf("parseEpoch(%x) = %v, want %v", b, err, want)
		}
	}
	f(nil, errEpoch)
	f([]byte{1, 0, 0, 0}, errEpoch)
	f([]byte{1, 0, 0, 0, 0, 0}, errEpoch)
	f([]byte{2, 0, 0, 0, 1}, lapse.ErrSnapshotVersion)
}

func TestStamp(t *testing.T) {
	tk := &task{epoch: 7}
	a := event.Aggregate{Version: 12}
	tk.stamp(&a)
	if a.Version != 7<<32|12 {
		t.Errorf("stamped version %d, want %d", a.Version, uint64(7<<32|12))
	}
	tk.stamp(&a) // idempotent
	if a.Version != 7<<32|12 {
		t.Errorf("stamped twice: %d", a.Version)
	}
	// A new epoch's first version beats the old epoch's last.
	old, fresh := &task{epoch: 1}, &task{epoch: 2}
	x, y := event.Aggregate{Version: 1<<32 - 1}, event.Aggregate{Version: 1}
	old.stamp(&x)
	fresh.stamp(&y)
	if y.Version <= x.Version {
		t.Errorf("new epoch's version %d is not above the old one's %d", y.Version, x.Version)
	}
}

// TestResyncChangedCustomers: a restore writes to ClickHouse again the
// rows of the customers the last committed transaction changed, as the
// changelog names them, not every customer's; a changelog written before
// it named them has every customer's row written again; the named ids
// are carried into the next commit until ClickHouse confirms them.
func TestResyncChangedCustomers(t *testing.T) {
	wall := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	r := truthRunner(nopSink{}, wall)
	src := r.newTask(0, inputPositions{})
	order := func(id string, day int) {
		ev := event.Event{Kind: event.KindOrder, EventID: id + "-" + strconv.Itoa(day), CustomerID: id, OrderType: event.OrderPlaced,
			OrderID: id + "-" + strconv.Itoa(day), Amount: 10, Currency: "EUR", Items: 1, Time: wall.AddDate(0, 0, day-30).UnixMilli()}
		src.eng.Apply(nil, lapse.SourceOrders, &ev, wall)
	}
	var log []*kgo.Record
	commit := func() {
		src.advance(0, false, barrier{}, wall)
		for _, rec := range src.out.recs {
			if rec.Topic == "st" { // not the progress record
				log = append(log, rec)
			}
		}
		src.out.recs = nil
		src.out.rows.Reset()
	}
	for _, id := range []string{"a", "b", "c", "d"} {
		order(id, 1)
	}
	commit()
	order("b", 2)
	order("d", 2)
	commit() // the last transaction changed b and d

	restore := func(log []*kgo.Record) (*task, *recSink) {
		t.Helper()
		sink := &recSink{}
		r := truthRunner(sink, wall)
		tk := r.newTask(0, inputPositions{})
		for _, rec := range log {
			if err := tk.restoreRecord(rec); err != nil {
				t.Fatal(err)
			}
		}
		trigs, ids, evicted, all := tk.finishRestore()
		r.resync(tk, trigs, ids, evicted, all)
		return tk, sink
	}
	tk, sink := restore(log)
	if got := aggIDs(sink.aggs); got != "b,d" {
		t.Errorf("resynced %s, want b,d", got)
	}
	if tk.eng.Len() != 4 {
		t.Errorf("restored %d customers, want 4", tk.eng.Len())
	}
	recs, err := tk.cust.records("st", 0)
	if err != nil || len(recs) != 1 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	if raw, _ := parsePending(recs[0].Value); len(raw) != 2 {
		t.Errorf("the next commit carries %d ids, want b and d", len(raw))
	}

	// An older changelog: no customer chunk.
	var old []*kgo.Record
	for _, rec := range log {
		if _, ok := tk.cust.chunk(rec.Key); !ok {
			old = append(old, rec)
		}
	}
	if _, sink := restore(old); aggIDs(sink.aggs) != "a,b,c,d" {
		t.Errorf("resynced %s from a changelog without the changed customers, want all", aggIDs(sink.aggs))
	}
}

func aggIDs(aggs []event.Aggregate) string {
	ids := make([]string, 0, len(aggs))
	for _, a := range aggs {
		ids = append(ids, a.CustomerID)
	}
	slices.Sort(ids)
	return strings.Join(ids, ",")
}

// TestRestoreRecord: a record that cannot be restored is an error naming
// the partition, the offset and the fix; a tombstone is not.
func TestRestoreRecord(t *testing.T) {
	r := truthRunner(nopSink{}, time.Now())
	tk := r.newTask(0, inputPositions{})
	f := func(key string, value []byte, wantErr error, wantFix string) {
		t.Helper()
		err := tk.restoreRecord(&kgo.Record{Topic: "st", Partition: 4, Offset: 77, Key: []byte(key), Value: value})
		if wantErr == nil {
			if err != nil {
				t.Errorf("key %q: %v", key, err)
			}
			return
		}
		var re *RestoreError
		if !errors.As(err, &re) || !errors.Is(err, wantErr) {
			t.Fatalf("key %q: %v, want a *RestoreError wrapping %v", key, err, wantErr)
		}
		msg := err.Error()
		for _, w := range []string{"partition 4", "offset 77", wantFix} {
			if !strings.Contains(msg, w) {
				t.Errorf("key %q: %q lacks %q", key, msg, w)
			}
		}
	}
	f("alice", []byte{0xee, 1, 2}, lapse.ErrSnapshotVersion, "newer winback")
	f("alice", []byte{3}, lapse.ErrCorruptSnapshot, "recreate")
	f(epochKey, []byte{9, 0, 0, 0, 1}, lapse.ErrSnapshotVersion, "newer winback")
	f(epochKey, []byte{1, 0}, errEpoch, "recreate")
	f(pendKey+"\x00\x00", []byte{1, '['}, errPend, "recreate")
	f(custKey+"\x00\x01", []byte{1, '[', '1', ']'}, errPend, "recreate")
	f(custKey+"\x00\x01", []byte{2}, lapse.ErrSnapshotVersion, "newer winback")
	f(metaKey, []byte{0xee}, lapse.ErrSnapshotVersion, "newer winback")
	f("alice", nil, nil, "") // a tombstone
	f(epochKey, nil, nil, "")
}

// TestFinishRestore: a task whose changelog held no state takes a new
// epoch from the wall clock; state without an epoch record keeps epoch 0;
// a recorded epoch is kept. Either way an unrecorded epoch is written with
// the next commit, and resync hands the sink every customer, stamped.
func TestFinishRestore(t *testing.T) {
	wall := time.Unix(1796000000, 0)
	sink := &recSink{}
	r := truthRunner(sink, wall)

	empty := r.newTask(0, inputPositions{})
	empty.finishRestore()
	if empty.epoch != 1796000000 || !empty.epochDirty {
		t.Errorf("empty changelog: epoch %d, dirty %v", empty.epoch, empty.epochDirty)
	}

	src := lapse.NewEngine(lapse.DefaultConfig(), 3, wall)
	ev := event.Event{Kind: event.KindOrder, EventID: "e1", CustomerID: "bob", Time: wall.Add(-time.Hour).UnixMilli(),
		OrderType: event.OrderPlaced, OrderID: "o1", Amount: 20, Currency: "EUR", Items: 1}
	src.Apply(nil, lapse.SourceOrders, &ev, wall)
	var snap []byte
	src.TakeDirty(func(c *lapse.Customer) { snap = src.AppendSnapshot(nil, c) })

	legacy := r.newTask(1, inputPositions{})
	if err := legacy.restoreRecord(&kgo.Record{Key: []byte("bob"), Value: snap}); err != nil {
		t.Fatal(err)
	}
	legacy.finishRestore()
	if legacy.epoch != 0 || !legacy.epochDirty {
		t.Errorf("state without an epoch: epoch %d, dirty %v", legacy.epoch, legacy.epochDirty)
	}

	known := r.newTask(2, inputPositions{})
	for _, rec := range []*kgo.Record{{Key: []byte(epochKey), Value: appendEpoch(nil, 42)}, {Key: []byte("bob"), Value: snap}} {
		if err := known.restoreRecord(rec); err != nil {
			t.Fatal(err)
		}
	}
	trigs, ids, evicted, all := known.finishRestore()
	r.resync(known, trigs, ids, evicted, all)
	if known.epoch != 42 || known.epochDirty {
		t.Errorf("recorded epoch: %d, dirty %v", known.epoch, known.epochDirty)
	}
	if len(sink.aggs) != 1 || sink.aggs[0].CustomerID != "bob" || sink.aggs[0].Version != 42<<32|1 {
		t.Errorf("resync handed the sink %+v", sink.aggs)
	}
}

func FuzzParseEpoch(f *testing.F) {
	f.Add(appendEpoch(nil, 1796000000))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := parseEpoch(b)
		if err != nil {
			return
		}
		if got := appendEpoch(nil, e); string(got) != string(b) {
			t.Fatalf("%x parsed as %d, written back as %x", b, e, got)
		}
	})
}

// A changelog written by a later release, with control records this one
// does not read: the restore reads on, and commits delete them until one
// has committed, so that the later release, rolled forward again, finds
// nothing stale of them.
func TestUnknownControlRecords(t *testing.T) {
	var logs bytes.Buffer
	r := truthRunner(nopSink{}, time.Now())
	r.log = slog.New(slog.NewTextHandler(&logs, nil))
	tk := r.newTask(1, inputPositions{})
	tk.pend.items = append(tk.pend.items, json.RawMessage(`{"TriggerID":"t1","CustomerID":"c1"}`))
	pend, err := tk.pend.records("st", 1)
	if err != nil {
		t.Fatal(err)
	}
	restored := r.newTask(1, inputPositions{})
	for _, rec := range append(pend,
		&kgo.Record{Key: []byte("\x00future"), Value: []byte("of a later release")},
		&kgo.Record{Key: []byte("\x00later"), Value: []byte("deleted by a commit since")},
		&kgo.Record{Key: []byte("\x00later")},
	) {
		if err := restored.restoreRecord(rec); err != nil {
			t.Fatalf("record %q: %v", rec.Key, err)
		}
	}
	// A customer's record is never skipped, whatever it holds.
	var re *RestoreError
	if err := restored.restoreRecord(&kgo.Record{Key: []byte("c9"), Value: []byte{0xff, 1}}); !errors.As(err, &re) {
		t.Errorf("an unreadable customer snapshot restored with %v, want a RestoreError", err)
	}
	trigs, _, _, _ := restored.finishRestore()
	if len(trigs) != 1 || trigs[0].TriggerID != "t1" {
		t.Errorf("pending triggers %+v, want t1 (the pending set is still read)", trigs)
	}
	if !strings.Contains(logs.String(), `\x00future`) || strings.Contains(logs.String(), `\x00later`) {
		t.Errorf("the warning should name \\x00future only:\n%s", logs.String())
	}

	drops := func() (keys []string) {
		restored.out.recs = restored.out.recs[:0]
		restored.dropUnknown()
		for _, rec := range restored.out.recs {
			if rec.Value != nil || rec.Topic != "st" || rec.Partition != 1 {
				t.Errorf("drop record %+v, want a tombstone on st/1", rec)
			}
			keys = append(keys, string(rec.Key))
		}
		return keys
	}
	restored.checkpoint() // a commit before any transaction deleted them
	if got := drops(); !slices.Equal(got, []string{"\x00future"}) {
		t.Fatalf("first transaction deletes %q, want [\\x00future]", got)
	}
	if got := drops(); got != nil {
		t.Errorf("the same transaction deletes %q again", got)
	}
	if !r.rollbackTask(restored, inputPositions{}) {
		t.Fatal("rollback refused")
	}
	if got := drops(); !slices.Equal(got, []string{"\x00future"}) {
		t.Errorf("after an abort the next transaction deletes %q, want [\\x00future] again", got)
	}
	restored.checkpoint()
	if got := drops(); got != nil {
		t.Errorf("after the commit that deleted them, a transaction deletes %q", got)
	}
}
