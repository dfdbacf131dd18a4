package consume

import (
	"encoding/binary"
	"errors"
	"fmt"

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
//     a restore writes again the triggers of the task's last transaction
//     and the aggregate rows of the customers it changed, which the
//     changelog holds (pending.go) until a later transaction, committed
//     after the sink confirmed them, replaces them. (A changelog written
//     before the changed customers were recorded has every restored
//     customer's row written again.) A restore after an abort
//     skips the rewrite for a partition whose committed rows this process
//     saw confirmed since it was assigned (Runner.confirmed).
//   - Versions are epoch<<32 | the customer's own counter, the epoch stored
//     in the changelog (epochKey) and set from the wall clock whenever a
//     task's state starts from nothing (a new or recreated changelog), so a
//     rebuilt state's rows replace the old ones in ReplacingMergeTree.

// epochKey is the changelog key of a task's state epoch.
const epochKey = "\x00epoch"

const epochVersion = 1

var errEpoch = errors.New("corrupt epoch record")

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

// resync adds to the sink what the last committed transaction of t's
// restored state wrote, since its owner may have committed it without
// writing it: the triggers, and the aggregate rows of the customers ids
// it changed (every customer's if all). Rows written before are written
// again unchanged (same version). It runs with r.mu held.
func (r *Runner) resync(t *task, trigs []event.Trigger, ids []string, evicted []event.Aggregate, all bool) {
	r.dep.Sink.Add(&event.Rows{Triggers: trigs, Aggregates: evicted})
	rows := event.Rows{Aggregates: make([]event.Aggregate, 0, min(4096, t.eng.Len()))}
	add := func(c *lapse.Customer) {
		rows.Aggregates = append(rows.Aggregates, c.Aggregate(t.eng))
		t.stamp(&rows.Aggregates[len(rows.Aggregates)-1])
		if len(rows.Aggregates) == cap(rows.Aggregates) {
			r.dep.Sink.Add(&rows)
			rows.Reset()
		}
	}
	if all {
		t.eng.Each(add)
	} else {
		for _, id := range ids {
			if c := t.eng.Customer(id); c != nil {
				add(c)
			}
		}
	}
	r.dep.Sink.Add(&rows)
}
