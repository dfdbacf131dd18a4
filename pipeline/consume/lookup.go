package consume

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrUnknownCustomer means this instance owns the customer's partition but
// has no state for the customer.
var ErrUnknownCustomer = errors.New("unknown customer")

// ErrNotOwned means another instance owns the customer's partition; the
// *NotOwnedError says which.
var ErrNotOwned = errors.New("customer's partition is owned by another instance")

// NotOwnedError names the partition of a customer and, when known, the
// group member that owns it.
type NotOwnedError struct {
	Partition int32
	MemberID  string
	ClientID  string
	Host      string
}

func (e *NotOwnedError) Error() string {
	return fmt.Sprintf("partition %d is owned by member %q (client %q, host %q)", e.Partition, e.MemberID, e.ClientID, e.Host)
}

func (e *NotOwnedError) Unwrap() error { return ErrNotOwned }

// PartitionOf returns the input partition of a customer id, as the default
// Kafka partitioner (murmur2) places it.
func PartitionOf(customerID string, partitions int) int32 {
	return Partitioner().Of(customerID, partitions)
}

// KeyPartitioner computes input partitions with franz-go's default
// partitioner for keyed records (Kafka's murmur2); build one with
// Partitioner and reuse it, since building one costs more than using it.
// It is safe for concurrent use. Of runs for every input record, so the
// record it hands the partitioner is pooled, not allocated each time.
type KeyPartitioner struct {
	tp   kgo.TopicPartitioner
	recs *sync.Pool // of *kgo.Record
}

// Partitioner returns a KeyPartitioner with Kafka's default (murmur2)
// placement of keyed records.
func Partitioner() KeyPartitioner {
	return KeyPartitioner{tp: kgo.StickyKeyPartitioner(nil).ForTopic(""), recs: &sync.Pool{New: func() any { return new(kgo.Record) }}}
}

// Of returns the partition of customerID among partitions, or -1.
func (k KeyPartitioner) Of(customerID string, partitions int) int32 {
	if partitions <= 0 {
		return -1
	}
	rec := k.recs.Get().(*kgo.Record)
	rec.Key = append(rec.Key[:0], customerID...)
	p := int32(k.tp.Partition(rec, partitions))
	k.recs.Put(rec)
	return p
}

// Customer returns the live state of a customer as JSON, with its partition.
// It answers from this instance's state; for a customer owned elsewhere it
// returns a *NotOwnedError naming the owner.
func (r *Runner) Customer(ctx context.Context, id string) ([]byte, int32, error) {
	r.mu.Lock()
	p := r.keys.Of(id, r.nparts)
	t := r.tasks[p]
	restoring := r.pending[p]
	adm := r.adm
	var data []byte
	var err error
	if t != nil {
		if c := t.eng.Customer(id); c != nil {
			data, err = c.MarshalJSON()
		} else {
			err = ErrUnknownCustomer
		}
	}
	r.mu.Unlock()
	switch {
	case p < 0:
		return nil, p, errors.New("not started yet")
	case t != nil:
		return data, p, err
	case restoring:
		return nil, p, fmt.Errorf("partition %d is being restored; retry shortly", p)
	}
	return nil, p, r.owner(ctx, adm, p)
}

// owner finds the group member that owns partition p of the orders topic.
func (r *Runner) owner(ctx context.Context, adm *kadm.Client, p int32) error {
	e := &NotOwnedError{Partition: p}
	if adm == nil {
		return e
	}
	groups, err := adm.DescribeGroups(ctx, r.cfg.Group)
	if err != nil {
		return e
	}
	g, ok := groups[r.cfg.Group]
	if !ok {
		return e
	}
	for _, m := range g.Members {
		assigned, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		for _, t := range assigned.Topics {
			if t.Topic != r.cfg.Topics.Orders {
				continue
			}
			for _, q := range t.Partitions {
				if q == p {
					e.MemberID, e.ClientID, e.Host = m.MemberID, m.ClientID, m.ClientHost
					return e
				}
			}
		}
	}
	return e
}
