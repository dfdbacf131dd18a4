package consume

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
)

// TestRestoreFeed: a task restores from its feed in offset order across
// batches; a record that cannot be restored stops the applying but not the
// reading, and is the error reported; the counts cover every record.
func TestRestoreFeed(t *testing.T) {
	wall := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	r := truthRunner(nopSink{}, wall)
	src := lapse.NewEngine(lapse.DefaultConfig(), 3, wall)
	var recs []*kgo.Record
	for i := range 2*restoreBatch + 7 {
		id := "c" + strconv.Itoa(i%300) // later snapshots of a customer replace earlier ones
		recs = append(recs, &kgo.Record{Offset: int64(i), Key: []byte(id), Value: snapshotOf(t, src, id, i)})
	}
	run := func(recs []*kgo.Record) (*task, *restoreFeed) {
		tk := r.newTask(0, inputPositions{})
		f := &restoreFeed{ch: make(chan []*kgo.Record, 1), records: prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})}
		done := make(chan struct{})
		go func() { f.apply(tk, wall); close(done) }()
		for _, rec := range recs {
			f.add(rec)
		}
		f.close()
		<-done
		return tk, f
	}
	tk, f := run(recs)
	if f.err != nil || f.n != len(recs) || tk.eng.Len() != 300 {
		t.Fatalf("err %v, %d of %d records, %d customers", f.err, f.n, len(recs), tk.eng.Len())
	}
	if got, want := tk.eng.AppendSnapshot(nil, tk.eng.Customer("c7")), recs[307].Value; string(got) != string(want) {
		t.Error("c7 restored from an earlier snapshot than its last")
	}
	bad := append(recs[:10:10], &kgo.Record{Offset: 10, Key: []byte("c0"), Value: []byte{3}})
	bad = append(bad, recs[11:]...)
	if _, f := run(bad); !errors.Is(f.err, lapse.ErrCorruptSnapshot) || f.n != len(bad) {
		t.Errorf("err %v after %d of %d records", f.err, f.n, len(bad))
	}
}

// snapshotOf applies an e-mail event i minutes in for customer id to src
// and returns the customer's snapshot.
func snapshotOf(t *testing.T, src *lapse.Engine, id string, i int) []byte {
	t.Helper()
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	ev := event.Event{Kind: event.KindEmail, EventID: "e" + strconv.Itoa(i), CustomerID: id, EmailType: event.EmailDelivered,
		Time: at.Add(time.Duration(i) * time.Minute).UnixMilli(), CSAT: -1, NPS: -1}
	src.Apply(nil, lapse.SourceEmail, &ev, at)
	var snap []byte
	src.TakeDirty(func(c *lapse.Customer) {
		if c.ID() == id {
			snap = src.AppendSnapshot(nil, c)
		}
	})
	if snap == nil {
		t.Fatalf("no snapshot of %s", id)
	}
	return snap
}
