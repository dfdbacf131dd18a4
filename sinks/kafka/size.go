package kafka

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultMaxBatchBytes is franz-go's default ProducerBatchMaxBytes, which is
// also Kafka's default max.message.bytes.
const DefaultMaxBatchBytes = 1_000_012

// batchOverhead is the size of a record batch (magic v2) without records,
// its length prefix included, as franz-go counts it against
// ProducerBatchMaxBytes.
const batchOverhead = 4 + // array length
	8 + // first offset
	4 + // batch length
	4 + // partition leader epoch
	1 + // magic
	4 + // crc
	2 + // attributes
	4 + // last offset delta
	8 + // first timestamp
	8 + // max timestamp
	8 + // producer id
	2 + // producer epoch
	4 + // first sequence
	4 // record count

// BatchSize is the size of a record batch holding only rec, uncompressed:
// what the producer compares with ProducerBatchMaxBytes (and the broker
// with max.message.bytes) before it can send rec at all. A record that is
// bigger fails with MESSAGE_TOO_LARGE however it is batched.
// BatchSize frames the batch as produce versions before 9 do, with a 4-byte
// length prefix, which newer versions shorten by a byte or two: so it is
// never less than what franz-go counts.
func BatchSize(rec *kgo.Record) int {
	l := 1 + // attributes
		1 + // timestamp delta 0: the first record of its batch
		1 + // offset delta 0
		kbin.VarintLen(int32(len(rec.Key))) + len(rec.Key) +
		kbin.VarintLen(int32(len(rec.Value))) + len(rec.Value) +
		kbin.VarintLen(int32(len(rec.Headers)))
	for _, h := range rec.Headers {
		l += headerSize(h)
	}
	return batchOverhead + kbin.VarintLen(int32(l)) + l
}

// TooLargeError says an output record does not fit the producer's batch
// limit. It wraps kerr.MessageTooLarge.
type TooLargeError struct {
	Topic string
	Size  int // BatchSize of the record
	Limit int
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("record for %s is %d bytes in a batch of its own, over the producer's limit of %d (ProducerBatchMaxBytes)", e.Topic, e.Size, e.Limit)
}

func (e *TooLargeError) Unwrap() error { return kerr.MessageTooLarge }

// CheckSize returns a *TooLargeError if rec cannot be produced under a
// batch limit of limit bytes (ProducerBatchMaxBytes; DefaultMaxBatchBytes
// if limit <= 0), and nil if it can. Check each output record with it
// before it joins a transaction: one the producer refuses fails the
// transaction, and the same record fails again on every replay.
func CheckSize(rec *kgo.Record, limit int) error {
	if limit <= 0 {
		limit = DefaultMaxBatchBytes
	}
	if n := BatchSize(rec); n > limit {
		return &TooLargeError{Topic: rec.Topic, Size: n, Limit: limit}
	}
	return nil
}
