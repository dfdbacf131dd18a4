package consume

import (
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"math"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A task's event time comes from its own inputs. A task whose partitions
// go quiet (a small shop, a night, the end of a backfill) would then stop
// firing its customers' silence timers, since nothing moves its watermark.
// So every task publishes its progress (watermark, caught up or not,
// forwarding frontier, floor) to a small compacted topic, in the same
// transaction as its changelog, and every instance reads that topic. A
// task that is caught up (nothing left to read on any input, up to the
// last stable offset) and has had no input for lapse.idle_timeout follows
// the pipeline's event time: the most advanced task's watermark, held back
// by any task that still has input to apply (judged from the broker's
// offsets, not from what it published: follow.go), by the records this
// instance forwarded in the open transaction and, while the forwarding
// barrier is active, by the barrier. The follow is recorded like any
// other state change (the task's meta record in the changelog, in the
// same transaction as the triggers it fires), so a restore never takes it
// back and a replay does not recompute it from the wall clock.
//
// When every input of the group is silent, no watermark moves, so neither
// does the pipeline's event time: an upstream outage declares nobody
// lapsed. The followed time is also capped at wall clock plus
// MaxFutureSkew.

const progressVersion = 2

// progress is one task's published state.
type progress struct {
	wm       int64 // watermark, Unix ms; math.MinInt64 before any event
	caughtUp bool  // no input left to read up to the last stable offset
	// frontier: every record the task will still forward to the
	// repartition topic is at or after this event time (math.MaxInt64
	// when it has read all its input); forwarded: it ever forwarded one.
	frontier  int64
	forwarded bool
	// floor: every record still to come on the task's inputs is expected
	// at or after this event time (task.floor; math.MinInt64: none
	// delivered an event). Unlike wm it counts the records the task
	// forwards, so that a task whose input all belongs to other tasks
	// still says how old its next records may be. It travels in a record
	// of its own (floorKey), which releases before it ignore.
	floor int64
}

// Keys of the progress topic: a prefix naming the record, then the task's
// partition, four bytes big-endian.
const (
	taskPrefix  = "task/"
	floorPrefix = "floor/" // ten bytes in all, so that a release that reads only task keys (nine) skips it
)

func progressKey(p int32) []byte { return partitionKey(taskPrefix, p) }
func floorKey(p int32) []byte    { return partitionKey(floorPrefix, p) }

func parseProgressKey(k []byte) (int32, bool) { return parsePartitionKey(k, taskPrefix) }
func parseFloorKey(k []byte) (int32, bool)    { return parsePartitionKey(k, floorPrefix) }

func partitionKey(prefix string, p int32) []byte {
	return binary.BigEndian.AppendUint32([]byte(prefix), uint32(p))
}

func parsePartitionKey(k []byte, prefix string) (int32, bool) {
	if len(k) != len(prefix)+4 || string(k[:len(prefix)]) != prefix {
		return 0, false
	}
	return int32(binary.BigEndian.Uint32(k[len(prefix):])), true
}

const floorVersion = 1

func appendFloor(dst []byte, floor int64) []byte {
	return binary.AppendVarint(append(dst, floorVersion), floor)
}

func parseFloor(b []byte) (int64, error) {
	if len(b) < 2 || b[0] != floorVersion {
		return 0, errProgress
	}
	f, n := binary.Varint(b[1:])
	if n <= 0 || 1+n != len(b) {
		return 0, errProgress
	}
	return f, nil
}

const (
	flagCaughtUp  = 1
	flagForwarded = 2
)

func (g progress) appendBinary(dst []byte) []byte {
	dst = append(dst, progressVersion)
	dst = binary.AppendVarint(dst, g.wm)
	dst = binary.AppendVarint(dst, g.frontier)
	var f byte
	if g.caughtUp {
		f |= flagCaughtUp
	}
	if g.forwarded {
		f |= flagForwarded
	}
	return append(dst, f)
}

var errProgress = errors.New("consume: corrupt progress record")

func parseProgress(b []byte) (progress, error) {
	if len(b) < 4 || b[0] != progressVersion {
		return progress{}, errProgress
	}
	wm, n := binary.Varint(b[1:])
	if n <= 0 {
		return progress{}, errProgress
	}
	fr, m := binary.Varint(b[1+n:])
	if m <= 0 || len(b) != 1+n+m+1 || b[1+n+m] > flagCaughtUp|flagForwarded {
		return progress{}, errProgress
	}
	f := b[1+n+m]
	return progress{wm: wm, frontier: fr, caughtUp: f&flagCaughtUp != 0, forwarded: f&flagForwarded != 0}, nil
}

// board holds every task's latest committed progress, as read from the
// progress topic, for all instances of the group.
type board struct {
	mu     sync.Mutex
	tasks  map[int32]progress // floor unset: floors holds it
	floors map[int32]int64
}

func newBoard() *board { return &board{tasks: map[int32]progress{}, floors: map[int32]int64{}} }

func (b *board) set(p int32, g progress) {
	b.mu.Lock()
	b.tasks[p] = g
	b.mu.Unlock()
}

func (b *board) setFloor(p int32, floor int64) {
	b.mu.Lock()
	b.floors[p] = floor
	b.mu.Unlock()
}

func (b *board) forget(p int32) {
	b.mu.Lock()
	delete(b.tasks, p)
	delete(b.floors, p)
	b.mu.Unlock()
}

// snapshot returns a copy of the tasks' progress, each with its floor
// (math.MinInt64 where the task published none).
func (b *board) snapshot() map[int32]progress {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[int32]progress, len(b.tasks))
	for p, g := range b.tasks {
		g.floor = math.MinInt64
		if f, ok := b.floors[p]; ok {
			g.floor = f
		}
		out[p] = g
	}
	return out
}

// barrier is how far a task may apply events while records may still be
// on their way to it through the repartition topic.
type barrier struct {
	active bool  // some task has forwarded a record, or not all have said yet
	until  int64 // apply events at or before this event time only
}

// holdsAll reports whether b lets no event through: some task of the
// group has not published a frontier yet. The transaction then reads on
// past max_poll_records (it applies nothing, so it holds no work), until
// the commit interval or the queues' bound: a client that serves a large
// buffered fetch max_poll_records at a time would otherwise take a
// transaction per batch to reach the partitions that task waits for (the
// fault test, max_poll_records 40, on a loaded machine, held every task
// for over a minute so).
func (b barrier) holdsAll() bool { return b.active && b.until == math.MinInt64 }

// barrier returns the forwarding barrier of a group of n tasks, from
// committed progress only (a local task's forwards of the open
// transaction are not readable yet): the least frontier of any task, once
// any task of the group has forwarded a record. Until every task has
// published a frontier, nobody knows whether the others forward: the
// barrier holds everything. A task that has input left but has fetched
// none of it (frontier math.MinInt64: a task just restored, which
// publishes before its first fetch) does not know either, so it counts as
// not published. Once every task has read all its input (every frontier
// math.MaxInt64) the barrier still waits for the forwarded records to be
// read, though no longer for an event time: they are committed, but a
// task that applied its own inputs before fetching them would apply them
// late. A group whose producers all key by customer_id with murmur2 never
// forwards, and pays nothing after that.
func (b *board) barrier(n int) barrier {
	b.mu.Lock()
	defer b.mu.Unlock()
	seen, fwd, until := 0, false, int64(math.MaxInt64)
	for p, g := range b.tasks {
		if int(p) >= n || g.frontier == math.MinInt64 {
			continue // a task of an earlier partition count, or one that has fetched nothing
		}
		seen++
		fwd = fwd || g.forwarded
		until = min(until, g.frontier)
	}
	if seen < n {
		return barrier{active: true, until: math.MinInt64}
	}
	if !fwd {
		return barrier{until: math.MaxInt64}
	}
	return barrier{active: true, until: until}
}

// readProgress follows the progress topic (one partition, read_committed)
// into b until ctx is done.
func readProgress(ctx context.Context, cl *kgo.Client, b *board, log *slog.Logger) {
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				log.Warn("consume: progress fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		fs.EachRecord(func(rec *kgo.Record) {
			if p, ok := parseFloorKey(rec.Key); ok && rec.Value != nil {
				if f, err := parseFloor(rec.Value); err == nil {
					b.setFloor(p, f)
				} else {
					log.Warn("consume: floor record skipped", "offset", rec.Offset, "err", err)
				}
				return
			}
			p, ok := parseProgressKey(rec.Key)
			if !ok {
				return
			}
			if rec.Value == nil {
				b.forget(p)
				return
			}
			g, err := parseProgress(rec.Value)
			if err != nil {
				log.Warn("consume: progress record skipped", "offset", rec.Offset, "err", err)
				return
			}
			b.set(p, g)
		})
	}
}

// caughtUp reports whether t has nothing left to read on any input: every
// queue is empty and every source has fetched up to the last stable offset
// it last saw (transaction markers and aborted tails count as read).
func (t *task) caughtUp() bool {
	for i := range t.src {
		if !t.src[i].drained() {
			return false
		}
	}
	return true
}

// forwardsPending reports whether records committed to the repartition
// topic when the barrier b was taken are still to be read by t.
func (t *task) forwardsPending(b barrier) bool {
	return b.active && t.src[srcRepartition].next < t.fwdWait
}

// drained reports whether s has nothing left to deliver: nothing queued,
// and read up to the end the broker last showed.
func (s *source) drained() bool { return s.len() == 0 && s.hwm >= 0 && s.next >= s.hwm }

// noteDrained tells t's engine which inputs have nothing left to deliver:
// drained, and so is the repartition source, which carries every kind,
// with nothing pending behind the forwarding barrier b. An input that
// never delivered an event then stops holding event time back at once,
// instead of for lapse.idle_timeout after every start: an orders-only
// shop's empty e-mail and support topics.
func (t *task) noteDrained(b barrier) {
	fwd := t.src[srcRepartition].drained() && !t.forwardsPending(b)
	for i := range srcRepartition {
		t.eng.SetDrained(i, fwd && t.src[i].drained())
	}
}

// frontier returns the event time from which t may still forward records:
// the least, over its input sources not yet read to the end, of the
// newest event time fetched (a partition's records come in about
// event-time order). math.MaxInt64 when every input is read.
func (t *task) frontier() int64 {
	f := int64(math.MaxInt64)
	for i := range srcRepartition {
		s := &t.src[i]
		if s.hwm >= 0 && s.next >= s.hwm {
			continue
		}
		f = min(f, s.maxTime)
	}
	return f
}

// publish adds t's progress record to its outputs when it changed since
// the last one, and its floor record when the floor did.
func (t *task) publish() {
	g := progress{wm: t.eng.Watermark(), caughtUp: t.caughtUp(), frontier: t.frontier(), forwarded: t.forwarded, floor: t.floor(t.now())}
	last := t.published
	if last != nil && *last == g {
		return
	}
	t.published = &g
	rest := g // all but the floor, as last had it
	if last != nil {
		rest.floor = last.floor
	}
	if last == nil || rest != *last {
		t.progressRecord(progressKey(t.p), g.appendBinary(nil))
	}
	if last == nil || last.floor != g.floor {
		t.progressRecord(floorKey(t.p), appendFloor(nil, g.floor))
	}
}

// progressRecord adds a record of the progress topic to t's outputs.
func (t *task) progressRecord(key, value []byte) {
	rec := t.arena.record()
	rec.Topic, rec.Partition, rec.Key, rec.Value = t.cfg.Topics.Progress, 0, key, value
	t.out.recs = append(t.out.recs, rec)
}
