package gen

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"

	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/event"
)

// The kinds of malformed record (Record.MalformedKind). Each is a defect
// seen in real pipelines; every one must end in the dead-letter topic.
const (
	MalformedJSONGarbage       = "json_garbage"        // a JSON object cut off mid-way
	MalformedNotJSON           = "not_json"            // an HTML error page from a broken proxy
	MalformedAvroTruncated     = "avro_truncated"      // 0x00 magic and less than the 5-byte header
	MalformedAvroUnknownSchema = "avro_unknown_schema" // 0x00, a schema id no registry has, junk
	MalformedMissingCustomerID = "missing_customer_id" // valid JSON without customer_id
	MalformedNegativeAmount    = "negative_amount"     // an order with a negative amount
	MalformedUnknownEnum       = "unknown_enum"        // a type symbol not in the contract
	MalformedCSATOutOfRange    = "csat_out_of_range"   // a RESOLVED ticket with CSAT 9
	MalformedFarFuture         = "event_time_9999"     // event_time in the year 9999
	MalformedEmptyValue        = "empty_value"         // a record with an empty value
	MalformedWrongType         = "wrong_type"          // event_id as a JSON number
)

var malformedKinds = []string{
	MalformedJSONGarbage, MalformedNotJSON, MalformedAvroTruncated, MalformedAvroUnknownSchema,
	MalformedMissingCustomerID, MalformedNegativeAmount, MalformedUnknownEnum,
	MalformedCSATOutOfRange, MalformedFarFuture, MalformedEmptyValue, MalformedWrongType,
}

// MalformedKinds lists every MalformedKind the generator makes.
func MalformedKinds() []string { return append([]string(nil), malformedKinds...) }

// MalformedReason returns the reason pipeline/decode rejects each
// malformed kind with (with a schema registry that does not know the ids
// of MalformedAvroUnknownSchema, which are above 10^9).
func MalformedReason(kind string) decode.Reason {
	switch kind {
	case MalformedJSONGarbage:
		return decode.ReasonJSONSyntax
	case MalformedNotJSON:
		return decode.ReasonEncodingUnknown
	case MalformedAvroTruncated:
		return decode.ReasonAvroTruncated
	case MalformedAvroUnknownSchema:
		return decode.ReasonAvroUnknownSchemaID
	case MalformedMissingCustomerID:
		return decode.ReasonFieldMissing
	case MalformedNegativeAmount, MalformedUnknownEnum, MalformedCSATOutOfRange:
		return decode.ReasonFieldInvalid
	case MalformedFarFuture:
		return decode.ReasonTimeInFuture
	case MalformedEmptyValue:
		return decode.ReasonValueEmpty
	case MalformedWrongType:
		return decode.ReasonJSONType
	}
	return ""
}

// emptyValue is the (non-nil) value of MalformedEmptyValue records.
var emptyValue = []byte{}

// farFuture is 9999-12-31T23:59:59Z in Unix ms.
const farFuture int64 = 253402300799000

// malformer makes malformed records from a stream of valid events.
type malformer struct {
	r   *rand.Rand
	n   int
	buf []byte
}

func newMalformer(r *rand.Rand) *malformer { return &malformer{r: r} }

// make fills rec with a malformed record standing in for an event of
// base's customer at base's time.
func (m *malformer) make(base *event.Event, rec *Record) {
	m.n++
	kind := malformedKinds[m.r.IntN(len(malformedKinds))]
	ev := *base
	ev.EventID = fmt.Sprintf("x-%s-%d", base.CustomerID, m.n)
	switch kind {
	case MalformedNegativeAmount:
		ev = event.Event{
			Kind: event.KindOrder, EventID: ev.EventID, CustomerID: ev.CustomerID, Time: ev.Time,
			OrderType: event.OrderPlaced, OrderID: fmt.Sprintf("ord-%s-x%d", ev.CustomerID, m.n),
			Amount: -float64(100+m.r.IntN(9900)) / 100, Currency: "EUR", Items: 1,
		}
	case MalformedCSATOutOfRange:
		ev = event.Event{
			Kind: event.KindSupport, EventID: ev.EventID, CustomerID: ev.CustomerID, Time: ev.Time,
			SupportType: event.SupportResolved, TicketID: fmt.Sprintf("t-%s-x%d", ev.CustomerID, m.n),
			Category: "delivery", Priority: event.PriorityNormal, CSAT: 9, NPS: event.NoScore,
		}
	}
	rec.Kind = ev.Kind
	rec.Event = ev
	rec.MalformedKind = kind
	m.buf = m.buf[:0]
	switch kind {
	case MalformedEmptyValue:
		rec.Malformed = emptyValue
		return
	case MalformedNotJSON:
		m.buf = append(m.buf, "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"...)
	case MalformedAvroTruncated:
		m.buf = append(m.buf, 0)
		for range 1 + m.r.IntN(3) {
			m.buf = append(m.buf, byte(m.r.IntN(4)))
		}
	case MalformedAvroUnknownSchema:
		m.buf = append(m.buf, 0)
		m.buf = binary.BigEndian.AppendUint32(m.buf, uint32(1_000_000_000+m.r.IntN(1_000_000)))
		for range 8 + m.r.IntN(40) {
			m.buf = append(m.buf, byte(m.r.Uint32()))
		}
	case MalformedJSONGarbage:
		js := codec.AppendEventJSON(m.buf, &ev)
		cut := len(js)/3 + m.r.IntN(len(js)/2)
		m.buf = js[:cut]
	default:
		m.buf = m.mutateJSON(kind, &ev)
	}
	rec.Malformed = m.buf
}

// mutateJSON encodes ev as the pipeline's JSON and breaks one field.
func (m *malformer) mutateJSON(kind string, ev *event.Event) []byte {
	js := codec.AppendEventJSON(m.buf, ev)
	var obj map[string]any
	d := json.NewDecoder(bytes.NewReader(js))
	d.UseNumber()
	if err := d.Decode(&obj); err != nil {
		panic(fmt.Sprintf("gen: codec.AppendEventJSON wrote invalid JSON %q: %v", js, err))
	}
	switch kind {
	case MalformedMissingCustomerID:
		delete(obj, "customer_id")
	case MalformedNegativeAmount:
		obj["amount"] = json.Number(fmt.Sprintf("%.2f", ev.Amount))
	case MalformedUnknownEnum:
		obj["type"] = map[event.Kind]string{
			event.KindOrder: "SHIPPED", event.KindEmail: "FORWARDED", event.KindSupport: "ESCALATED",
		}[ev.Kind]
	case MalformedCSATOutOfRange:
		obj["csat"] = 9
	case MalformedFarFuture:
		if _, isString := obj["event_time"].(string); isString {
			obj["event_time"] = "9999-12-31T23:59:59Z"
		} else {
			obj["event_time"] = farFuture
		}
	case MalformedWrongType:
		obj["event_id"] = 100000 + m.r.IntN(900000)
	}
	out, err := json.Marshal(obj)
	if err != nil {
		panic(fmt.Sprintf("gen: re-encoding malformed JSON: %v", err))
	}
	return append(m.buf[:0], out...)
}
