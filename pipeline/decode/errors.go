package decode

import (
	"errors"
	"fmt"
)

// Reason is a stable code for why a record was rejected. It is written to the
// dead-letter topic (header winback.reason) and to ClickHouse (dlq_records),
// so the strings never change once released; new codes may be added.
type Reason string

// The reasons, in the order the decoder checks them. doc.go describes each.
const (
	ReasonValueEmpty          Reason = "value.empty"
	ReasonValueTooLarge       Reason = "value.too_large"
	ReasonEncodingUnknown     Reason = "encoding.unknown"
	ReasonJSONSyntax          Reason = "json.syntax"
	ReasonJSONType            Reason = "json.type"
	ReasonJSONTooDeep         Reason = "json.too_deep"
	ReasonAvroTruncated       Reason = "avro.truncated"
	ReasonAvroUnknownSchemaID Reason = "avro.unknown_schema_id"
	ReasonAvroWrongSchema     Reason = "avro.wrong_schema"
	ReasonAvroDecode          Reason = "avro.decode"
	ReasonRegistryUnavailable Reason = "registry.unavailable"
	ReasonFieldMissing        Reason = "field.missing"
	ReasonFieldInvalid        Reason = "field.invalid"
	ReasonFieldTooLong        Reason = "field.too_long"
	ReasonTimeOutOfRange      Reason = "time.out_of_range"
	ReasonTimeInFuture        Reason = "time.in_future"
	ReasonKeyMissing          Reason = "key.missing"
	ReasonKeyMismatch         Reason = "key.mismatch"
	// ReasonKeyPartition is not the decoder's: consume uses it for a
	// record whose key is the customer_id but whose partition is not the
	// one murmur2 gives it (another partitioner), with strict
	// partitioning on.
	ReasonKeyPartition Reason = "key.partition_mismatch"
)

// Reasons lists every Reason the decoder returns.
var Reasons = []Reason{
	ReasonValueEmpty, ReasonValueTooLarge, ReasonEncodingUnknown,
	ReasonJSONSyntax, ReasonJSONType, ReasonJSONTooDeep,
	ReasonAvroTruncated, ReasonAvroUnknownSchemaID, ReasonAvroWrongSchema, ReasonAvroDecode,
	ReasonRegistryUnavailable,
	ReasonFieldMissing, ReasonFieldInvalid, ReasonFieldTooLong,
	ReasonTimeOutOfRange, ReasonTimeInFuture,
	ReasonKeyMissing, ReasonKeyMismatch,
}

// Transient reports whether the reason describes the environment rather than
// the record: the same record may decode later. Only registry.unavailable is
// transient; a consumer should pause and retry rather than dead-letter it.
func (r Reason) Transient() bool { return r == ReasonRegistryUnavailable }

// IsKeyError reports whether err says only that the record's key is
// missing or is not its customer_id: the event was decoded and filled in
// all the same, so the record can be routed to its customer's partition.
func IsKeyError(err error) bool {
	r, ok := ReasonOf(err)
	return ok && (r == ReasonKeyMissing || r == ReasonKeyMismatch)
}

// Error is the error Decode returns for every record it rejects. Use
// errors.As to get it, or ReasonOf.
type Error struct {
	Reason Reason
	Field  string // the contract's field name, e.g. "amount"; empty if none
	Err    error  // the underlying problem; never nil
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("decode: %s: %s: %v", e.Reason, e.Field, e.Err)
	}
	return fmt.Sprintf("decode: %s: %v", e.Reason, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of the *Error in err's chain.
func ReasonOf(err error) (Reason, bool) {
	var de *Error
	if errors.As(err, &de) {
		return de.Reason, true
	}
	return "", false
}

// Sentinels in Error.Err, for errors.Is.
var (
	// ErrSchemaNotFound says the registry does not know a schema id.
	// Registry implementations return it (wrapped) for an unknown id, so that
	// the decoder neither retries nor reports the registry as down.
	ErrSchemaNotFound = errors.New("schema not found")
	// ErrNotAvro says a schema id names a schema of another type (Protobuf,
	// JSON Schema) or one that uses references, which the decoder does not
	// follow. Registry implementations return it wrapped.
	ErrNotAvro = errors.New("not a self-contained Avro schema")
	// ErrTruncated says the Avro data ended early.
	ErrTruncated = errors.New("unexpected end of data")
	// ErrDuplicateField says a JSON object names a field twice.
	ErrDuplicateField = errors.New("duplicate field")
)

func newErr(r Reason, field string, err error) *Error {
	return &Error{Reason: r, Field: field, Err: err}
}

func errorf(r Reason, field, format string, args ...any) *Error {
	return &Error{Reason: r, Field: field, Err: fmt.Errorf(format, args...)}
}
