package consume

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/lapse"
)

// Customers leave a task in two ways.
//
// An erasure request (GDPR, CCPA) is a record on the erasures topic keyed
// by the customer_id, read by the customer's task as its fifth source. It
// takes its place in the task's event-time merge at its record timestamp
// (the time of the request; ties after the events of the same
// millisecond), so the events before it are applied first and are erased
// with the rest. Applying it removes the customer from the engine and
// writes a changelog tombstone, in the open transaction that also commits
// the request's offset: a replay after a crash either applies it again or
// finds it applied. The transaction's erased ids then go to the sink's
// Erase before the transaction's rows are written and before it commits
// (cycle): ClickHouse deletes every row of the customer written before,
// and the pending rows of the customer added in this transaction are
// dropped. A crash before the commit replays the request and deletes
// again; after the commit the delete was done. An id seen again after its
// erasure is a new customer.
//
// An erasure record without a key, or on a partition that murmur2 would
// not give its key, is dead-lettered (key.missing, key.partition_mismatch)
// rather than forwarded: the request is not applied, and the dead letter
// says how to send it again (winback erase produces them correctly).
//
// Eviction (state.ttl_days, lapse.Engine.SetTTL) happens on event time in
// the engine; advance writes each evicted customer's tombstone and its
// last row, marked evicted, to ClickHouse.

// maxErasureKey bounds the key of an erasure request.
const maxErasureKey = 4 << 10

// gone is what a transaction (or a task's outputs) erased and evicted.
type gone struct {
	erased  []string // ids of erasure requests applied
	absent  int      // of which the task held no state
	evicted int
}

func (g *gone) add(o *gone) {
	g.erased = append(g.erased, o.erased...)
	g.absent += o.absent
	g.evicted += o.evicted
}

func (g gone) reset() gone {
	clear(g.erased)
	return gone{erased: g.erased[:0]}
}

// count adds a committed transaction's erasures and evictions to the
// metrics.
func (g *gone) count(m *metrics) {
	if n := len(g.erased) - g.absent; n > 0 {
		m.erasures.WithLabelValues("present").Add(float64(n))
	}
	if g.absent > 0 {
		m.erasures.WithLabelValues("absent").Add(float64(g.absent))
	}
	if g.evicted > 0 {
		m.evictions.Add(float64(g.evicted))
	}
}

// rank orders queue heads of the same event time: orders, e-mail,
// support, then erasure requests.
func (q *queued) rank() int {
	if q.erase {
		return srcErasures
	}
	return lapse.SourceOf(q.ev.Kind)
}

// placeErasure fills q from an erasure record of task t, or marks it for
// the dead-letter topic.
func (t *task) placeErasure(rec *kgo.Record, q *queued) {
	bad := func(reason decode.Reason, format string, a ...any) {
		q.rec, q.err = rec, &decode.Error{Reason: reason, Field: "key", Err: fmt.Errorf(format, a...)}
	}
	id := string(rec.Key)
	switch {
	case len(id) == 0:
		bad(decode.ReasonKeyMissing, "an erasure request needs the customer_id as its key; send it again with winback erase")
	case len(id) > maxErasureKey:
		bad(decode.ReasonFieldTooLong, "erasure key of %d bytes, more than %d", len(id), maxErasureKey)
	case strings.HasPrefix(id, "\x00"):
		bad(decode.ReasonFieldInvalid, "an erasure key cannot start with a NUL byte (winback's own changelog keys do)")
	default:
		if p := t.keys.Of(id, t.nparts); p != t.p {
			bad(decode.ReasonKeyPartition, "erasure request for %q is on partition %d, but murmur2 places it on %d; send it again with winback erase (or a murmur2 partitioner)", truncate(rec.Key, 64), t.p, p)
			return
		}
		q.erase, q.ev.CustomerID, q.ev.Time = true, id, rec.Timestamp.UnixMilli()
	}
}

// erase applies the erasure request q in task t: the customer leaves the
// engine, its changelog key gets a tombstone, and its id joins the
// transaction's erasures for ClickHouse.
func (t *task) erase(q *queued) {
	id := q.ev.CustomerID
	if !t.eng.Erase(id) {
		t.out.gone.absent++
	}
	t.out.recs = append(t.out.recs, t.tombstone(id))
	t.out.gone.erased = append(t.out.gone.erased, id)
	// What the changelog keeps for a restore to write to ClickHouse again
	// (pending.go) loses the customer's triggers, id and evicted row: a restore must
	// not bring its rows back, and the changelog must not name it.
	ofCustomer := func(raw json.RawMessage) bool {
		var v struct{ CustomerID string } // as emit and evicted marshal event.Trigger and event.Aggregate
		return json.Unmarshal(raw, &v) == nil && v.CustomerID == id
	}
	t.pend.items = slices.DeleteFunc(t.pend.items, ofCustomer)
	t.evict.items = slices.DeleteFunc(t.evict.items, ofCustomer)
	quoted := codec.AppendJSONString(nil, id) // as advance writes it
	t.cust.items = slices.DeleteFunc(t.cust.items, func(raw json.RawMessage) bool { return bytes.Equal(raw, quoted) })
}

// tombstone returns a changelog tombstone for customer id of task t.
func (t *task) tombstone(id string) *kgo.Record {
	rec := t.arena.record()
	rec.Topic, rec.Partition = t.cfg.Topics.State, t.p
	rec.Key = t.arena.bytes(func(b []byte) []byte { return append(b, id...) })
	return rec
}

// evicted writes the tombstone and the evicted row of every customer t's
// engine evicted, and reports whether there was one. It runs in advance.
func (t *task) evicted() bool {
	any := false
	t.eng.TakeGone(func(g *lapse.Gone) {
		any = true
		t.out.recs = append(t.out.recs, t.tombstone(g.ID))
		t.out.rows.Aggregates = append(t.out.rows.Aggregates, g.Aggregate)
		t.out.gone.evicted++
		// Kept for a restore (pending.go). A row JSON cannot hold (a
		// NaN) is written to ClickHouse all the same; failing the
		// transaction for it would fail every replay.
		raw, err := json.Marshal(&g.Aggregate)
		if err != nil {
			t.log.Warn("consume: the evicted row cannot be kept for a restore; a crash before ClickHouse confirms this transaction would leave the customer's earlier row", "customer", g.ID, "err", err)
			return
		}
		t.evict.items = append(t.evict.items, raw)
	})
	return any
}

// eraseRows has ClickHouse delete the rows of the customers erased in the
// open transaction, before its rows are written and before it commits.
func (r *Runner) eraseRows(ctx context.Context) error {
	if len(r.cur.gone.erased) == 0 {
		return nil
	}
	if err := r.dep.Sink.Erase(ctx, r.cur.gone.erased); err != nil {
		return fmt.Errorf("consume: clickhouse erase of %d customers: %w", len(r.cur.gone.erased), err)
	}
	return nil
}

// checkErasures creates the erasures topic when it is missing, with the
// inputs' partition count n, and refuses one that is not co-partitioned.
func (r *Runner) checkErasures(ctx context.Context, n int) error {
	name := r.cfg.Topics.Erasures
	if name == "" {
		return nil
	}
	if err := r.ensureInternal(ctx, name, n, nil); err != nil {
		return err
	}
	c, err := r.partitionCounts(ctx, name)
	if err != nil {
		return err
	}
	if c[name] != n {
		return configError{fmt.Errorf("consume: the erasures topic %s has %d partitions, the inputs %d; erasure requests must be co-partitioned with the inputs: add partitions to match, or recreate it with %d once every request in it was applied", name, c[name], n, n)}
	}
	return nil
}
