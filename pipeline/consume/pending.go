package consume

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
)

// What ClickHouse may lack of a task's last committed transaction stays in
// the changelog until a later commit, made after ClickHouse confirmed it,
// replaces it (truth.go): the transaction's triggers (pendKey), the
// customers it changed (custKey), and the rows of the customers it evicted
// (evictKey: they are gone from the state, which cannot rebuild them). A
// restore writes exactly these to ClickHouse again, and carries them into
// its first commit.
//
// Each is a pendingSet: JSON values in chunk records keyed by the prefix and
// the chunk number (two bytes, big endian), each a format byte and a JSON
// array of at most pendChunkBytes. A commit writes the set's chunks, and an
// empty chunk for every chunk the changelog still holds from before.

// pendKey and custKey prefix the chunk keys of the pending triggers and of
// the changed customers' ids.
const (
	pendKey  = "\x00chpend"
	custKey  = "\x00chcust"
	evictKey = "\x00chevict"
)

const (
	pendVersion = 1
	// pendChunkBytes caps one chunk record, well under the producer's
	// record limit.
	pendChunkBytes = 512 << 10
	// maxPendChunks is the number of chunk keys (two bytes): 32 GiB in
	// one transaction.
	maxPendChunks = 1 << 16
)

var errPend = errors.New("corrupt pending record")

// pendingSet is one of a task's pending lists.
type pendingSet struct {
	key   string            // chunk key prefix
	items []json.RawMessage // to write with the next commit
	// chunks is the number of chunk records the changelog holds
	// non-empty; known that it holds the set at all (a restore read a
	// chunk, or a commit wrote one), so that a restore of a changelog
	// written before the set existed can tell "none" from "unknown".
	chunks   int
	known    bool
	restored map[int][]json.RawMessage // latest value of each chunk, while restoring
	// check tells whether a restored chunk's values are what the set
	// holds (parseTriggers, parseIDs, parseAggregates).
	check func([]json.RawMessage) error
}

// checked is a check of the values that parse reads.
func checked[T any](parse func([]json.RawMessage) ([]T, error)) func([]json.RawMessage) error {
	return func(raw []json.RawMessage) error {
		_, err := parse(raw)
		return err
	}
}

// pendingSets returns t's pending sets.
func (t *task) pendingSets() [3]*pendingSet { return [3]*pendingSet{&t.pend, &t.cust, &t.evict} }

// chunk reports whether k is one of s's chunk keys, and its number.
func (s *pendingSet) chunk(k []byte) (int, bool) {
	if len(k) != len(s.key)+2 || !strings.HasPrefix(string(k), s.key) {
		return 0, false
	}
	return int(binary.BigEndian.Uint16(k[len(s.key):])), true
}

func (s *pendingSet) chunkKey(i int) []byte {
	return binary.BigEndian.AppendUint16([]byte(s.key), uint16(i))
}

// due reports whether the next commit must write s.
func (s *pendingSet) due() bool { return len(s.items) > 0 || s.chunks > 0 || !s.known }

// records returns the chunk records of s.items for partition p of topic,
// and empties s.items.
func (s *pendingSet) records(topic string, p int32) ([]*kgo.Record, error) {
	var chunks [][]json.RawMessage
	var cur []json.RawMessage
	size := 0
	for _, v := range s.items {
		if size+len(v)+1 > pendChunkBytes && len(cur) > 0 {
			chunks = append(chunks, cur)
			cur, size = nil, 0
		}
		cur = append(cur, v)
		size += len(v) + 1
	}
	if len(cur) > 0 {
		chunks = append(chunks, cur)
	}
	if len(chunks) > maxPendChunks {
		return nil, fmt.Errorf("consume: partition %d: %d pending values (%q) in one transaction need %d records, more than %d; lower commit_interval or state.cache_max_bytes",
			p, len(s.items), s.key, len(chunks), maxPendChunks)
	}
	recs := make([]*kgo.Record, 0, max(len(chunks), s.chunks, 1))
	for i := range max(len(chunks), s.chunks, 1) {
		var c []json.RawMessage
		if i < len(chunks) {
			c = chunks[i]
		}
		recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: s.chunkKey(i), Value: appendPending(nil, c)})
	}
	s.chunks, s.known = len(chunks), true
	clear(s.items)
	s.items = s.items[:0]
	return recs, nil
}

// restore reads chunk i's record value b; a later value of the same chunk
// replaces an earlier one.
func (s *pendingSet) restore(i int, b []byte) ([]json.RawMessage, error) {
	raw, err := parsePending(b)
	if err != nil {
		return nil, err
	}
	if s.restored == nil {
		s.restored = map[int][]json.RawMessage{}
	}
	s.restored[i] = raw
	s.known = true
	return raw, nil
}

// finish ends a restore: the restored values, in chunk order, become the
// items to write again with the next commit, and are returned.
func (s *pendingSet) finish() []json.RawMessage {
	for _, i := range slices.Sorted(maps.Keys(s.restored)) {
		s.chunks = i + 1
		s.items = append(s.items, s.restored[i]...)
	}
	s.restored = nil
	return s.items
}

// appendPending appends a chunk record's value: a format byte, then a JSON
// array of vals.
func appendPending(dst []byte, vals []json.RawMessage) []byte {
	dst = append(dst, pendVersion, '[')
	for i, v := range vals {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, v...)
	}
	return append(dst, ']')
}

// parsePending reads a chunk record's value.
func parsePending(b []byte) ([]json.RawMessage, error) {
	if len(b) == 0 {
		return nil, errPend
	}
	if b[0] != pendVersion {
		return nil, fmt.Errorf("pending record format %d: %w", b[0], lapse.ErrSnapshotVersion)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(b[1:], &raw); err != nil {
		return nil, fmt.Errorf("%w: %w", errPend, err)
	}
	return raw, nil
}

// parseTriggers decodes pending triggers.
func parseTriggers(raw []json.RawMessage) ([]event.Trigger, error) {
	trigs := make([]event.Trigger, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &trigs[i]); err != nil {
			return nil, fmt.Errorf("%w: trigger %d: %w", errPend, i, err)
		}
		if trigs[i].TriggerID == "" {
			return nil, fmt.Errorf("%w: trigger %d has no id", errPend, i)
		}
	}
	return trigs, nil
}

// parseAggregates decodes pending evicted rows.
func parseAggregates(raw []json.RawMessage) ([]event.Aggregate, error) {
	rows := make([]event.Aggregate, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &rows[i]); err != nil {
			return nil, fmt.Errorf("%w: evicted row %d: %w", errPend, i, err)
		}
		if rows[i].CustomerID == "" || !rows[i].Evicted {
			return nil, fmt.Errorf("%w: evicted row %d is not an evicted customer's", errPend, i)
		}
	}
	return rows, nil
}

// parseIDs decodes pending customer ids.
func parseIDs(raw []json.RawMessage) ([]string, error) {
	ids := make([]string, len(raw))
	for i, r := range raw {
		if err := json.Unmarshal(r, &ids[i]); err != nil {
			return nil, fmt.Errorf("%w: customer %d: %w", errPend, i, err)
		}
	}
	return ids, nil
}
