package kafka

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

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
	HeaderTruncated       = "winback.truncated"   // "true" when the value was cut
	HeaderSourceSize      = "winback.source.size" // the original value's size, when cut
)

// ReasonInternal is the dead-letter reason of an error that is not a
// *decode.Error.
const ReasonInternal = "internal"

// MaxErrorBytes caps the winback.error header and DeadLetter.Detail.
const MaxErrorBytes = 1024

// TriggerRecord returns the record for trigger t on topic, with value as
// made by TriggerEncoder.Encode, keyed by customer_id.
func TriggerRecord(topic string, t *event.Trigger, value []byte) *kgo.Record {
	return &kgo.Record{
		Topic: topic,
		Key:   []byte(t.CustomerID),
		Value: value,
		Headers: []kgo.RecordHeader{
			{Key: HeaderTriggerID, Value: []byte(t.TriggerID)},
			{Key: HeaderKind, Value: []byte(t.Kind)},
			{Key: HeaderSchema, Value: []byte(SchemaName)},
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
// package doc) and then src's own headers. A value longer than maxValue
// bytes (maxValue > 0) is cut to maxValue, with the headers
// winback.truncated=true and winback.source.size, so that the record fits
// the dead-letter topic: one that does not would fail its transaction on
// every replay and stall the pipeline. The source coordinates in the
// headers still point at the whole original record.
func DeadLetterRecord(topic string, src *kgo.Record, err error, maxValue int) *kgo.Record {
	h := make([]kgo.RecordHeader, 0, 8+len(src.Headers))
	h = append(h,
		kgo.RecordHeader{Key: HeaderReason, Value: []byte(Reason(err))},
		kgo.RecordHeader{Key: HeaderError, Value: []byte(errorText(err))},
		kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(src.Topic)},
		kgo.RecordHeader{Key: HeaderSourcePartition, Value: strconv.AppendInt(nil, int64(src.Partition), 10)},
		kgo.RecordHeader{Key: HeaderSourceOffset, Value: strconv.AppendInt(nil, src.Offset, 10)},
		kgo.RecordHeader{Key: HeaderSourceTimestamp, Value: strconv.AppendInt(nil, src.Timestamp.UnixMilli(), 10)},
	)
	value := src.Value
	if maxValue > 0 && len(value) > maxValue {
		value = value[:maxValue]
		h = append(h,
			kgo.RecordHeader{Key: HeaderTruncated, Value: []byte("true")},
			kgo.RecordHeader{Key: HeaderSourceSize, Value: strconv.AppendInt(nil, int64(len(src.Value)), 10)},
		)
	}
	h = append(h, src.Headers...)
	return &kgo.Record{Topic: topic, Key: src.Key, Value: value, Headers: h}
}

// DeadLetter describes src, which failed with err, as a row for ClickHouse:
// the value is cut to its first sampleCap bytes (none if sampleCap <= 0),
// and At is the wall time now. Key and Sample are copies.
func DeadLetter(src *kgo.Record, err error, sampleCap int) event.DeadLetter {
	n := min(max(sampleCap, 0), len(src.Value))
	return event.DeadLetter{
		Topic:     src.Topic,
		Partition: src.Partition,
		Offset:    src.Offset,
		Key:       bytes.Clone(src.Key),
		Reason:    Reason(err),
		Detail:    errorText(err),
		Size:      len(src.Value),
		Sample:    bytes.Clone(src.Value[:n]),
		At:        time.Now().UnixMilli(),
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
