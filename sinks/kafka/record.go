package kafka

import (
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/event"
)

// Header keys of the records this package makes.
const (
	HeaderTriggerID       = "winback.trigger_id"
	HeaderKind            = "winback.kind"
	HeaderSchema          = "winback.schema"
	HeaderReason          = "winback.reason"
	HeaderError           = "winback.error"
	HeaderSourceTopic     = "winback.source.topic"
	HeaderSourcePartition = "winback.source.partition"
	HeaderSourceOffset    = "winback.source.offset"
	HeaderSourceTimestamp = "winback.source.timestamp"
	HeaderTruncated       = "winback.truncated"   // "true" when the value, key or source headers were cut
	HeaderSourceSize      = "winback.source.size" // the original value's size, when cut
	// HeaderSourceKeySize is the original key's size, when the key was cut.
	HeaderSourceKeySize = "winback.source.key_size"
	// HeaderSourceHeadersDropped counts the source headers left out.
	HeaderSourceHeadersDropped = "winback.source.headers_dropped"
)

// Caps on what a dead letter copies from its source record beside the
// value, so that a hostile key or header set cannot make a dead letter the
// producer refuses. Together with the winback.* headers (at most about
// 1.5 KiB: the error is capped at MaxErrorBytes) a dead letter is at most
// DeadLetterOverhead bytes larger than its value cap.
const (
	// MaxDeadLetterKeyBytes caps the key. A valid key is a customer_id of
	// at most decode.MaxIDBytes, so only a bad record's key is ever cut.
	MaxDeadLetterKeyBytes = 4 << 10
	// MaxDeadLetterHeaderBytes caps the source's own headers (names and
	// values); headers past it are left out, in order.
	MaxDeadLetterHeaderBytes = 16 << 10
	// DeadLetterOverhead bounds BatchSize(dead letter) - value cap.
	DeadLetterOverhead = MaxDeadLetterKeyBytes + MaxDeadLetterHeaderBytes + 4<<10
)

// ReasonInternal is the dead-letter reason of an error that is not a
// *decode.Error.
const ReasonInternal = "internal"

// MaxErrorBytes caps the winback.error header and DeadLetter.Detail.
const MaxErrorBytes = 1024

// TriggerRecord returns the record for trigger t on topic, with value as
// made by codec.TriggerEncoder.Encode, keyed by customer_id.
func TriggerRecord(topic string, t *event.Trigger, value []byte) *kgo.Record {
	return &kgo.Record{
		Topic: topic,
		Key:   []byte(t.CustomerID),
		Value: value,
		Headers: []kgo.RecordHeader{
			{Key: HeaderTriggerID, Value: []byte(t.TriggerID)},
			{Key: HeaderKind, Value: []byte(t.Kind)},
			{Key: HeaderSchema, Value: []byte(codec.TriggerSchemaName)},
		},
	}
}

// Reason returns the dead-letter reason of err: its decode.Reason, or
// ReasonInternal.
func Reason(err error) string {
	var de *decode.Error
	if errors.As(err, &de) {
		return string(de.Reason)
	}
	return ReasonInternal
}

// DeadLetterRecord returns the dead-letter record on topic for src, which
// failed with err: src's key and value, the winback.* headers (see the
// package doc) and then src's own headers.
//
// What would not fit is cut, so that the record always fits the dead-letter
// topic and the producer's batch limit (one that does not would fail its
// transaction on every replay and stall the pipeline): a value longer than
// maxValue bytes (maxValue > 0) is cut to maxValue, a key longer than
// MaxDeadLetterKeyBytes to that, and src's headers are kept in order while
// they total at most MaxDeadLetterHeaderBytes. Each cut adds
// winback.truncated=true and says what was cut: winback.source.size (the
// value's size), winback.source.key_size, winback.source.headers_dropped.
// The source coordinates (topic, partition, offset) are never cut: they
// still point at the whole original record. With maxValue > 0,
// BatchSize of the result is at most maxValue + DeadLetterOverhead.
func DeadLetterRecord(topic string, src *kgo.Record, err error, maxValue int) *kgo.Record {
	return deadLetterRecord(topic, src, Reason(err), errorText(err), maxValue)
}

func deadLetterRecord(topic string, src *kgo.Record, reason, detail string, maxValue int) *kgo.Record {
	h := make([]kgo.RecordHeader, 0, 10+len(src.Headers))
	h = append(h,
		kgo.RecordHeader{Key: HeaderReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: HeaderError, Value: []byte(detail)},
		kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(src.Topic)},
		kgo.RecordHeader{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(src.Partition), 10)},
		kgo.RecordHeader{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, src.Offset, 10)},
		kgo.RecordHeader{Key: HeaderSourceTimestamp, Value: strconv.AppendInt(nil, src.Timestamp.UnixMilli(), 10)},
	)
	value, key := src.Value, src.Key
	cut := false
	if maxValue > 0 && len(value) > maxValue {
		value, cut = value[:maxValue], true
		h = append(h, kgo.RecordHeader{Key: HeaderSourceSize, Value: strconv.AppendInt(nil, int64(len(src.Value)), 10)})
	}
	if len(key) > MaxDeadLetterKeyBytes {
		key, cut = key[:MaxDeadLetterKeyBytes], true
		h = append(h, kgo.RecordHeader{Key: HeaderSourceKeySize, Value: strconv.AppendInt(nil, int64(len(src.Key)), 10)})
	}
	kept, size := 0, 0
	for _, sh := range src.Headers {
		size += headerSize(sh)
		if size > MaxDeadLetterHeaderBytes {
			break
		}
		kept++
	}
	if kept < len(src.Headers) {
		cut = true
		h = append(h, kgo.RecordHeader{Key: HeaderSourceHeadersDropped, Value: strconv.AppendInt(nil, int64(len(src.Headers)-kept), 10)})
	}
	if cut {
		h = append(h, kgo.RecordHeader{Key: HeaderTruncated, Value: []byte("true")})
	}
	h = append(h, src.Headers[:kept]...)
	return &kgo.Record{Topic: topic, Key: key, Value: value, Headers: h}
}

// headerSize is what h adds to a record on the wire.
func headerSize(h kgo.RecordHeader) int {
	return kbin.VarintLen(int32(len(h.Key))) + len(h.Key) + kbin.VarintLen(int32(len(h.Value))) + len(h.Value)
}

// DeadLetter describes src, which failed with err at wall time at, as a
// dlq_records row: the key cut to MaxDeadLetterKeyBytes, the whole value
// as the sample. Key and Sample share src's memory; the store cuts the
// sample to its column's size and copies both.
func DeadLetter(src *kgo.Record, err error, at time.Time) event.DeadLetter {
	return deadLetter(src, Reason(err), errorText(err), at)
}

func deadLetter(src *kgo.Record, reason, detail string, at time.Time) event.DeadLetter {
	return event.DeadLetter{
		Topic:     src.Topic,
		Partition: src.Partition,
		Offset:    src.Offset,
		Key:       src.Key[:min(len(src.Key), MaxDeadLetterKeyBytes)],
		Reason:    reason,
		Detail:    detail,
		Size:      len(src.Value),
		Sample:    src.Value,
		At:        at.UnixMilli(),
	}
}

// errorText is err's message made valid UTF-8 and cut to MaxErrorBytes on
// a rune boundary.
func errorText(err error) string {
	if err == nil {
		return ""
	}
	s := strings.ToValidUTF8(err.Error(), "\uFFFD")
	if len(s) > MaxErrorBytes {
		const ellipsis = "…"
		cut := MaxErrorBytes - len(ellipsis)
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + ellipsis
	}
	return s
}
