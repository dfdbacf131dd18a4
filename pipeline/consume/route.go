package consume

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/event"
)

// A task holds a customer's state only if all of the customer's records
// reach it: keyed by customer_id and placed by Kafka's default murmur2
// partitioner, on the same partition number of each input. Producers do
// not all do that: librdkafka's default partitioner (kcat,
// confluent-kafka-python, -go, -dotnet) hashes keys with CRC32, some
// producers send no key, others key by order or ticket id. Such a record
// is valid; it is in the wrong task. So the task that fetches it forwards
// it at once to the repartition topic, keyed by customer_id (murmur2), in
// the open transaction, as Kafka Streams and ksqlDB do for PARTITION BY,
// and records in its changelog (fwdKey, same transaction) how far it has
// forwarded, so that a replay from an earlier input offset does not
// forward it again: it is applied exactly once, by the customer's own
// task, which reads the repartition topic as a fourth source, behind the
// forwarding barrier (progress.go). The record's kind travels in a
// header. With StrictPartitioning such records are dead-lettered instead.

// srcRepartition is the task's source index of the repartition topic;
// 0–2 are the inputs (lapse.SourceOrders, SourceEmail, SourceSupport).
const srcRepartition = 3

// srcErasures is the task's source index of the erasures topic, and
// nSources the number of a task's sources.
const (
	srcErasures = 4
	nSources    = 5
)

// Headers of a forwarded record.
const (
	hdrKind      = "winback.kind" // order, email or support
	hdrTopic     = "winback.source.topic"
	hdrPartition = "winback.source.partition"
	hdrOffset    = "winback.source.offset"
	hdrTime      = "winback.source.timestamp" // Unix ms
)

var kindNames = map[event.Kind]string{event.KindOrder: "order", event.KindEmail: "email", event.KindSupport: "support"}

// kindOf reads the kind header of a forwarded record: the last one, which
// forward appended after the input record's own headers (a producer may
// have set one of that name too).
func kindOf(rec *kgo.Record) (event.Kind, bool) {
	for i := len(rec.Headers) - 1; i >= 0; i-- {
		if h := rec.Headers[i]; h.Key == hdrKind {
			for k, name := range kindNames {
				if string(h.Value) == name {
					return k, true
				}
			}
			return 0, false
		}
	}
	return 0, false
}

// place decides what task t does with a record of source src decoded into
// q.ev with error err: apply it (nil q.rec), forward it (q.fwd), or
// dead-letter it.
func (t *task) place(src int, rec *kgo.Record, q *queued, err error) {
	switch {
	case err == nil:
		p := t.keys.Of(q.ev.CustomerID, t.nparts)
		if p == t.p {
			return
		}
		if src == srcRepartition {
			// Only a change of partition count while running can
			// do this; forwarding again would loop.
			q.rec, q.err = rec, &decode.Error{Reason: decode.ReasonKeyPartition, Field: "customer_id",
				Err: fmt.Errorf("repartitioned record for customer %q is on partition %d, not %d", q.ev.CustomerID, t.p, p)}
			return
		}
		if t.cfg.StrictPartitioning {
			q.rec, q.err = rec, &decode.Error{Reason: decode.ReasonKeyPartition, Field: "customer_id",
				Err: fmt.Errorf("key %q is on partition %d, but murmur2 places it on %d; produce with the murmur2 partitioner or set --input-partitioning=auto", truncate(rec.Key, 64), t.p, p)}
			return
		}
	case decode.IsKeyError(err) && !t.cfg.StrictPartitioning && src != srcRepartition && q.ev.CustomerID != "":
	default:
		q.rec, q.err = rec, err
		return
	}
	q.rec, q.fwd = rec, true
}

// forward produces q's record to the repartition topic, keyed by its
// customer_id, in t's outputs.
func (t *task) forward(q *queued) {
	src := q.rec
	// What forwarding adds: the five headers' keys (101 bytes), values
	// (kind ≤ 7, topic, partition ≤ 10, offset ≤ 19, timestamp ≤ 13
	// digits) and their varint lengths (10).
	if err := t.dep.Outputs.Fits(src, 160+len(src.Topic)); err != nil {
		// With winback's headers it would not fit the producer's
		// limit, and fail every replay of the transaction.
		t.deadLetter(src, &decode.Error{Reason: decode.ReasonValueTooLarge, Field: "",
			Err: fmt.Errorf("it cannot be forwarded to the repartition topic: %w", err)})
		return
	}
	rec := t.arena.record()
	rec.Topic = t.cfg.Topics.Repartition
	rec.Key = t.arena.bytes(func(b []byte) []byte { return append(b, q.ev.CustomerID...) })
	rec.Value = src.Value
	rec.Headers = append(append(rec.Headers[:0], src.Headers...),
		kgo.RecordHeader{Key: hdrKind, Value: []byte(kindNames[q.ev.Kind])},
		kgo.RecordHeader{Key: hdrTopic, Value: []byte(src.Topic)},
		kgo.RecordHeader{Key: hdrPartition, Value: strconv.AppendInt(nil, int64(src.Partition), 10)},
		kgo.RecordHeader{Key: hdrOffset, Value: strconv.AppendInt(nil, src.Offset, 10)},
		kgo.RecordHeader{Key: hdrTime, Value: strconv.AppendInt(nil, src.Timestamp.UnixMilli(), 10)},
	)
	t.out.recs = append(t.out.recs, rec)
	t.out.fwd.note(q.ev.Time)
	t.m.repartitioned.WithLabelValues(src.Topic).Inc()
}

// origin returns rec, read from the repartition topic, as the input
// record it was forwarded from: that record's topic, partition, offset,
// timestamp and headers. A dead letter then points at the record its
// producer wrote, not at winback's copy. Forwarding appended its headers
// last; a record without them (not forwarded by winback) is returned as
// it is, as is one forwarded before the timestamp header existed, whose
// timestamp stays the forwarding time.
func origin(rec *kgo.Record) *kgo.Record {
	h := rec.Headers
	o := *rec
	if n := len(h); n > 0 && h[n-1].Key == hdrTime {
		ms, err := strconv.ParseInt(string(h[n-1].Value), 10, 64)
		if err != nil {
			return rec
		}
		o.Timestamp, h = time.UnixMilli(ms), h[:n-1]
	}
	n := len(h)
	if n < 4 || h[n-4].Key != hdrKind || h[n-3].Key != hdrTopic || h[n-2].Key != hdrPartition || h[n-1].Key != hdrOffset {
		return rec
	}
	part, err := strconv.ParseInt(string(h[n-2].Value), 10, 32)
	if err != nil {
		return rec
	}
	off, err := strconv.ParseInt(string(h[n-1].Value), 10, 64)
	if err != nil {
		return rec
	}
	o.Topic, o.Partition, o.Offset, o.Headers = string(h[n-3].Value), int32(part), off, h[:n-4:n-4]
	return &o
}

// fwdKey is the changelog key of a task's forwarding positions.
const fwdKey = "\x00fwd"

const fwdVersion = 1

func appendForwarded(dst []byte, next [srcRepartition]int64) []byte {
	dst = append(dst, fwdVersion)
	for _, n := range next {
		dst = binary.AppendVarint(dst, n)
	}
	return dst
}

func parseForwarded(b []byte) ([srcRepartition]int64, error) {
	var next [srcRepartition]int64
	if len(b) == 0 || b[0] != fwdVersion {
		return next, errors.New("consume: corrupt forwarding record: version")
	}
	b = b[1:]
	for i := range next {
		v, n := binary.Varint(b)
		if n <= 0 || v < 0 {
			return next, errors.New("consume: corrupt forwarding record")
		}
		next[i], b = v, b[n:]
	}
	if len(b) != 0 {
		return next, errors.New("consume: corrupt forwarding record: trailing bytes")
	}
	return next, nil
}

// boardBarrier is the forwarding barrier of the group's committed
// progress as read so far.
func (r *Runner) boardBarrier() barrier {
	r.mu.Lock()
	n := r.nparts
	r.mu.Unlock()
	return r.board.barrier(n)
}

// takeBarrier takes b, read from the committed progress of every task
// (boardBarrier), as the cycle's forwarding barrier and, while it is
// active, the last stable offsets of the repartition partitions this
// instance holds, listed after the progress was read: the merge applies
// nothing until it has read them.
func (r *Runner) takeBarrier(ctx context.Context, b barrier) {
	if b.active && !r.cfg.StrictPartitioning {
		lso, err := r.adm.ListCommittedOffsets(ctx, r.cfg.Topics.Repartition)
		if err == nil {
			err = lso.Error()
		}
		if err != nil {
			// Without the offsets the barrier cannot be trusted:
			// apply nothing this cycle.
			r.log.Warn("consume: repartition offsets", "err", err)
			b.until = math.MinInt64
		}
		r.mu.Lock()
		for p, t := range r.tasks {
			if o, ok := lso.Lookup(r.cfg.Topics.Repartition, p); ok {
				t.fwdWait = o.Offset
			}
		}
		r.mu.Unlock()
	}
	if r.cfg.StrictPartitioning {
		b = barrier{} // nothing is forwarded
	}
	r.barrier = b
}

// retakeBarrier takes the forwarding barrier again when the one taken at
// the start of the transaction holds everything and the progress board no
// longer does (the tasks' frontiers, the last ones this instance's own
// commit published among them, have been read since): nothing was applied
// under the old one, so the transaction goes on as if it had started
// under the new one, instead of idling until the next.
func (r *Runner) retakeBarrier(ctx context.Context) {
	if !r.barrier.holdsAll() {
		return
	}
	if b := r.boardBarrier(); !b.holdsAll() {
		r.takeBarrier(ctx, b)
	}
}

// frontierToPublish reports whether a task of this instance knows its
// forwarding frontier and has not published it yet: while the barrier
// holds everything, the group waits for that record, which only a commit
// publishes. It runs without r.mu, like full.
func (r *Runner) frontierToPublish() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.tasks {
		if t.frontier() != math.MinInt64 && (t.published == nil || t.published.frontier == math.MinInt64) {
			return true
		}
	}
	return false
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
