package kafka

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/event"
)

// Encoder encodes the value of a trigger record (codec.TriggerEncoder does).
type Encoder interface {
	Encode(dst []byte, t *event.Trigger) ([]byte, error)
}

// Output makes the records of winback's output topics: it is what
// pipeline/consume's Records interface asks for.
type Output struct {
	Triggers, DLQ string  // topics
	Encoder       Encoder // trigger values
	// MaxValueBytes cuts a dead-lettered value longer than this (0: never).
	MaxValueBytes int
	// MaxBatchBytes is the producer's batch limit (DefaultMaxBatchBytes
	// when 0).
	MaxBatchBytes int
}

// Trigger returns the record of trigger t (TriggerRecord).
func (o *Output) Trigger(t *event.Trigger) (*kgo.Record, error) {
	val, err := o.Encoder.Encode(nil, t)
	if err != nil {
		return nil, fmt.Errorf("encode trigger %s: %w", t.TriggerID, err)
	}
	return TriggerRecord(o.Triggers, t, val), nil
}

// DeadLetter returns src's dead-letter record (DeadLetterRecord) and its
// dlq_records row (DeadLetter), src having failed with err at wall time at.
func (o *Output) DeadLetter(src *kgo.Record, err error, at time.Time) (*kgo.Record, event.DeadLetter) {
	reason, detail := Reason(err), errorText(err)
	return deadLetterRecord(o.DLQ, src, reason, detail, o.MaxValueBytes), deadLetter(src, reason, detail, at)
}

// Fits returns a *TooLargeError if rec, with extra bytes more, cannot be
// produced under MaxBatchBytes.
func (o *Output) Fits(rec *kgo.Record, extra int) error {
	limit := o.MaxBatchBytes
	if limit <= 0 {
		limit = DefaultMaxBatchBytes
	}
	if n := BatchSize(rec) + extra; n > limit {
		return &TooLargeError{Topic: rec.Topic, Size: n, Limit: limit}
	}
	return nil
}
