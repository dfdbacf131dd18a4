package consume

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
)

// ClickHouse holds what Kafka committed, nothing else (docs/ARCHITECTURE.md,
// "ClickHouse equals what Kafka committed"):
//
//   - The sink is written only after the transaction that produced its rows
//     has committed, and the next transaction commits only after the sink
//     confirmed them. An aborted transaction's rows are discarded
//     (Sink.Discard), never written.
//   - A crash between a commit and the sink's confirmation loses at most
//     that one transaction's rows; the next owner of the task restores them:
//     every restore writes the aggregate row of every restored customer
//     again, and the triggers of the task's last transaction, which the
//     changelog holds under pendKey until a later transaction (committed
//     after the sink confirmed them) clears them. A restore after an abort
//     skips the rewrite for a partition whose committed rows this process
//     saw confirmed since it was assigned (Runner.confirmed).
//   - Versions are epoch<<32 | the customer's own counter, the epoch stored
//     in the changelog (epochKey) and set from the wall clock whenever a
//     task's state starts from nothing (a new or recreated changelog), so a
//     rebuilt state's rows replace the old ones in ReplacingMergeTree.

// epochKey is the changelog key of a task's state epoch.
const epochKey = "\x00epoch"

// pendKey prefixes the changelog keys of a task's unconfirmed triggers:
// pendKey + the chunk number (two bytes, big endian).
const pendKey = "\x00chpend"

const (
	epochVersion = 1
	pendVersion  = 1
	// pendChunkBytes caps one pending-triggers record, well under the
	// producer's record limit.
	pendChunkBytes = 512 << 10
	// maxPendChunks is the number of chunk keys (two bytes): 32 GiB of
	// triggers in one transaction.
	maxPendChunks = 1 << 16
)

var (
	errEpoch = errors.New("corrupt epoch record")
	errPend  = errors.New("corrupt pending-triggers record")
)

func appendEpoch(dst []byte, epoch uint32) []byte {
	return binary.BigEndian.AppendUint32(append(dst, epochVersion), epoch)
}

func parseEpoch(b []byte) (uint32, error) {
	if len(b) != 5 {
		return 0, errEpoch
	}
	if b[0] != epochVersion {
		return 0, fmt.Errorf("epoch record format %d: %w", b[0], lapse.ErrSnapshotVersion)
	}
	return binary.BigEndian.Uint32(b[1:]), nil
}

// stamp prefixes a's version with the task's epoch.
func (t *task) stamp(a *event.Aggregate) {
	a.Version = uint64(t.epoch)<<32 | a.Version&(1<<32-1)
}

func pendChunkKey(i int) []byte { return binary.BigEndian.AppendUint16([]byte(pendKey), uint16(i)) }

// parsePendKey reports whether k is a pending-triggers key, and its chunk.
func parsePendKey(k []byte) (int, bool) {
	if len(k) != len(pendKey)+2 || !strings.HasPrefix(string(k), pendKey) {
		return 0, false
	}
	return int(binary.BigEndian.Uint16(k[len(pendKey):])), true
}

// appendPending appends a pending-triggers record holding the JSON triggers
// trigs: a format byte, then a JSON array.
func appendPending(dst []byte, trigs []json.RawMessage) []byte {
	dst = append(dst, pendVersion, '[')
	for i, tr := range trigs {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, tr...)
	}
	return append(dst, ']')
}

// parsePending reads a pending-triggers record: the raw triggers (to be
// carried to the next transaction) and their decoded form.
func parsePending(b []byte) ([]json.RawMessage, []event.Trigger, error) {
	if len(b) == 0 {
		return nil, nil, errPend
	}
	if b[0] != pendVersion {
		return nil, nil, fmt.Errorf("pending-triggers record format %d: %w", b[0], lapse.ErrSnapshotVersion)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b[1:], &raw); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errPend, err)
	}
	trigs := make([]event.Trigger, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &trigs[i]); err != nil {
			return nil, nil, fmt.Errorf("%w: trigger %d: %w", errPend, i, err)
		}
		if trigs[i].TriggerID == "" {
			return nil, nil, fmt.Errorf("%w: trigger %d has no id", errPend, i)
		}
	}
	return raw, trigs, nil
}

// pendingRecords returns the changelog records of t's unconfirmed
// triggers: t.pend in chunks of at most pendChunkBytes, then an empty
// chunk for every chunk the changelog still holds from before. It resets
// t.pend; t.pendChunks becomes the chunks written non-empty.
func (t *task) pendingRecords() ([]*kgo.Record, error) {
	var chunks [][]json.RawMessage
	var cur []json.RawMessage
	size := 0
	for _, tr := range t.pend {
		if size+len(tr)+1 > pendChunkBytes && len(cur) > 0 {
			chunks = append(chunks, cur)
			cur, size = nil, 0
		}
		cur = append(cur, tr)
		size += len(tr) + 1
	}
	if len(cur) > 0 {
		chunks = append(chunks, cur)
	}
	if len(chunks) > maxPendChunks {
		return nil, fmt.Errorf("consume: partition %d: %d triggers in one transaction need %d pending records, more than %d; lower max_poll_records",
			t.p, len(t.pend), len(chunks), maxPendChunks)
	}
	var recs []*kgo.Record
	for i := range max(len(chunks), t.pendChunks) {
		var c []json.RawMessage
		if i < len(chunks) {
			c = chunks[i]
		}
		recs = append(recs, &kgo.Record{Topic: t.cfg.Topics.State, Partition: t.p, Key: pendChunkKey(i), Value: appendPending(nil, c)})
	}
	t.pendChunks = len(chunks)
	clear(t.pend)
	t.pend = t.pend[:0]
	return recs, nil
}

// RestoreError stops winback when a changelog record cannot be restored:
// a corrupt record, or one written by a newer winback. Skipping it would
// restart the customer from nothing and let ClickHouse keep an older row
// for good, so the restore fails and names the record and the fix.
type RestoreError struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       string // quoted; the customer id for a snapshot
	Err       error
}

func (e *RestoreError) Error() string {
	fix := "the record is corrupt: restore the changelog topic from a backup, or rebuild the state: stop every instance, delete and recreate " +
		"the changelog topic, reset the group's input offsets to the earliest, and start again (the rebuilt state takes a new epoch, so ClickHouse shows it; docs/production.md, section Rebuilding the state)"
	if errors.Is(e.Err, lapse.ErrSnapshotVersion) {
		fix = "the record was written by a newer winback: run that version (or a later one) again; a rollback below the state format is not possible"
	}
	return fmt.Sprintf("consume: cannot restore changelog %s partition %d offset %d (key %s): %v; %s", e.Topic, e.Partition, e.Offset, e.Key, e.Err, fix)
}

func (e *RestoreError) Unwrap() error { return e.Err }

// resync adds to the sink the rows of t's restored state: every customer's
// aggregate and the unconfirmed triggers of the last transaction, since
// the previous owner may have committed them without writing them. Rows
// written before are written again unchanged (same version). It runs with
// r.mu held.
func (r *Runner) resync(t *task, trigs []event.Trigger) {
	r.dep.Sink.Add(&event.Rows{Triggers: trigs})
	rows := event.Rows{Aggregates: make([]event.Aggregate, 0, 4096)}
	t.eng.Each(func(c *lapse.Customer) {
		rows.Aggregates = append(rows.Aggregates, c.Aggregate(t.eng))
		t.stamp(&rows.Aggregates[len(rows.Aggregates)-1])
		if len(rows.Aggregates) == cap(rows.Aggregates) {
			r.dep.Sink.Add(&rows)
			rows.Reset()
		}
	})
	r.dep.Sink.Add(&rows)
}

// pendChunk is one restored pending-triggers record.
type pendChunk struct {
	raw   []json.RawMessage
	trigs []event.Trigger
}
