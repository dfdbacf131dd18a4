package consume

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A task's sources start at the group's committed offsets, and each
// transaction commits, per input partition, its first unapplied record:
// the head of its queue.

// newSources starts task p's queues at the group's committed offsets (or
// the log start, where nothing is committed) and the partitions' high
// watermarks, so that a source with nothing to read holds nobody back and
// one with data is waited for.
func newSources(t Topics, p int32, pos inputPositions, now time.Time) [nSources]source {
	mk := func(topic string) source {
		if topic == "" {
			return source{maxTime: math.MinInt64} // not read: holds nothing back
		}
		s := source{topic: topic, next: -1, hwm: -1, seen: now, maxTime: math.MinInt64}
		if e, ok := pos.ends.Lookup(topic, p); ok && e.Err == nil {
			s.hwm = e.Offset
		}
		s.next = pos.next(topic, p)
		return s
	}
	return [nSources]source{mk(t.Orders), mk(t.Email), mk(t.Support), mk(t.Repartition), mk(t.Erasures)}
}

// inputPositions are the input partitions' offsets: the group's committed
// offsets, the last stable offsets (ends), and the log start offsets,
// listed only when some partition has no committed offset.
type inputPositions struct {
	committed    kadm.OffsetResponses
	starts, ends kadm.ListedOffsets
}

func (r *Runner) inputPositions(ctx context.Context) (inputPositions, error) {
	var pos inputPositions
	var err error
	if pos.committed, err = r.adm.FetchOffsets(ctx, r.cfg.Group); err != nil {
		return pos, fmt.Errorf("consume: committed offsets: %w", err)
	}
	topics := r.inputTopics()
	// The last stable offsets: what a read_committed consumer reaches.
	if pos.ends, err = r.adm.ListCommittedOffsets(ctx, topics...); err != nil {
		return pos, fmt.Errorf("consume: input end offsets: %w", err)
	}
	uncommitted := false
	pos.ends.Each(func(o kadm.ListedOffset) { uncommitted = uncommitted || pos.next(o.Topic, o.Partition) < 0 })
	if uncommitted {
		if pos.starts, err = r.adm.ListStartOffsets(ctx, topics...); err != nil {
			return pos, fmt.Errorf("consume: input start offsets: %w", err)
		}
	}
	return pos, nil
}

// next returns where partition p of topic is to be read from: the group's
// committed offset, or the log start where nothing is committed; -1 when
// neither is known.
func (pos inputPositions) next(topic string, p int32) int64 {
	if c, ok := pos.committed.Lookup(topic, p); ok && c.Err == nil && c.At >= 0 {
		return c.At
	}
	if st, ok := pos.starts.Lookup(topic, p); ok && st.Err == nil {
		return st.Offset
	}
	return -1
}

// commitOffsets returns the function that rewrites the transaction's offset
// commit so that each input partition commits its first unapplied record:
// the head of its queue, or the offset after the last record fetched when
// the queue is empty. It takes them when called, so records polled and
// applied afterwards (processing ahead) are not committed by it.
func (r *Runner) commitOffsets() func(*kmsg.TxnOffsetCommitRequest) error {
	r.mu.Lock()
	heads := map[string]map[int32]int64{}
	for p, t := range r.tasks {
		for i := range t.src {
			s := &t.src[i]
			if s.topic == "" {
				continue // not read
			}
			off := s.next
			switch {
			case s.len() == 0:
			case i == srcRepartition: // kept in event-time order
				off = s.minOffset()
			default:
				off = s.peek().off
			}
			if off < 0 {
				continue
			}
			if heads[s.topic] == nil {
				heads[s.topic] = map[int32]int64{}
			}
			heads[s.topic][p] = off
		}
	}
	r.mu.Unlock()
	return func(req *kmsg.TxnOffsetCommitRequest) error {
		// A partition without a position here has no task (it was
		// assigned while processing ahead): its polled records were
		// not applied, so its commit stays where it was.
		topics := req.Topics[:0]
		for _, tp := range req.Topics {
			parts := tp.Partitions[:0]
			for _, pp := range tp.Partitions {
				if off, ok := heads[tp.Topic][pp.Partition]; ok {
					if off < pp.Offset {
						pp.Offset, pp.LeaderEpoch = off, -1
					}
					parts = append(parts, pp)
				}
			}
			if tp.Partitions = parts; len(parts) > 0 {
				topics = append(topics, tp)
			}
		}
		req.Topics = topics
		return nil
	}
}
