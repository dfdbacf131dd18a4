package codec

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/schemas"
)

// avroSchemaName is the embedded schema of each input kind.
var avroSchemaName = [...]string{
	event.KindOrder:   schemas.AvroOrder,
	event.KindEmail:   schemas.AvroEmailEvent,
	event.KindSupport: schemas.AvroSupportEvent,
}

// EventEncoder writes input events as producers do: Confluent-framed Avro
// with the contract's schemas (AppendEventJSON writes the JSON form). The
// traffic generator, the benchmarks and the tests use it. It is safe for
// concurrent use.
type EventEncoder struct {
	ids [len(avroSchemaName)]int // schema id per kind; 0 if not registered
}

// knownKind reports whether k is one of the contract's input kinds.
func knownKind(k event.Kind) bool {
	return int(k) < len(avroSchemaName) && avroSchemaName[k] != ""
}

// Subject is the schema-registry subject of a topic's record values.
func Subject(topic string) string {
	if strings.HasSuffix(topic, "-value") {
		return topic
	}
	return topic + "-value"
}

// NewEventEncoder registers the contract's schema of each kind in topics under
// the subject <topic>-value (a name that already ends in -value is used as
// it is). It registers in kind order (Order, EmailEvent, SupportEvent), so
// a fresh registry gives them ids 1, 2 and 3 as testdata/hostile assumes.
func NewEventEncoder(ctx context.Context, client *sr.Client, topics map[event.Kind]string) (*EventEncoder, error) {
	for k := range topics {
		if !knownKind(k) {
			return nil, fmt.Errorf("codec: unknown event kind %v", k)
		}
	}
	e := &EventEncoder{}
	for _, k := range []event.Kind{event.KindOrder, event.KindEmail, event.KindSupport} {
		topic, ok := topics[k]
		if !ok {
			continue
		}
		ss, err := client.CreateSchema(ctx, Subject(topic), sr.Schema{
			Schema: schemas.Avro(avroSchemaName[k]),
			Type:   sr.TypeAvro,
		})
		if err != nil {
			return nil, fmt.Errorf("codec: registering the %v schema under %s: %w", k, Subject(topic), err)
		}
		e.ids[k] = ss.ID
	}
	return e, nil
}

// SchemaID returns the registry id of kind k's schema, 0 if not registered.
func (e *EventEncoder) SchemaID(k event.Kind) int {
	if !knownKind(k) {
		return 0
	}
	return e.ids[k]
}

// Avro appends ev to dst as Confluent-framed Avro: 0x00, the 4-byte
// big-endian schema id, and the Avro binary encoding. It encodes what it is
// given, valid or not (so tests can make bad records), and fails only for
// what the schema cannot express: an unregistered kind or an enum value
// outside the contract.
func (e *EventEncoder) Avro(dst []byte, ev *event.Event) ([]byte, error) {
	id := e.SchemaID(ev.Kind)
	if id == 0 {
		return dst, fmt.Errorf("codec: no schema registered for %v events", ev.Kind)
	}
	return AppendEventAvro(dst, id, ev)
}

// AppendEventAvro appends ev to dst as Confluent-framed Avro under schema
// id, which must be the registry id of the contract's schema for ev.Kind
// (EventEncoder.Avro looks it up). Like EventEncoder.Avro it writes
// invalid values as they are.
func AppendEventAvro(dst []byte, id int, ev *event.Event) ([]byte, error) {
	dst = append(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(id))
	dst = AppendAvroString(dst, ev.EventID)
	dst = AppendAvroString(dst, ev.CustomerID)
	dst = AppendAvroLong(dst, ev.Time)
	switch ev.Kind {
	case event.KindOrder:
		if ev.OrderType < event.OrderPlaced || ev.OrderType > event.OrderRefunded {
			return dst, fmt.Errorf("codec: order type %v not in the contract", ev.OrderType)
		}
		dst = AppendAvroLong(dst, int64(ev.OrderType)-1)
		dst = AppendAvroString(dst, ev.OrderID)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(ev.Amount))
		dst = AppendAvroString(dst, ev.Currency)
		dst = AppendAvroLong(dst, int64(ev.Items))
	case event.KindEmail:
		if ev.EmailType < event.EmailSent || ev.EmailType > event.EmailComplained {
			return dst, fmt.Errorf("codec: email type %v not in the contract", ev.EmailType)
		}
		dst = AppendAvroLong(dst, int64(ev.EmailType)-1)
		dst = AppendAvroString(dst, ev.CampaignID)
	case event.KindSupport:
		if ev.SupportType < event.SupportOpened || ev.SupportType > event.SupportResolved {
			return dst, fmt.Errorf("codec: support type %v not in the contract", ev.SupportType)
		}
		if ev.Priority < event.PriorityLow || ev.Priority > event.PriorityUrgent {
			return dst, fmt.Errorf("codec: ticket priority %v not in the contract", ev.Priority)
		}
		dst = AppendAvroLong(dst, int64(ev.SupportType)-1)
		dst = AppendAvroString(dst, ev.TicketID)
		dst = AppendAvroString(dst, ev.Category)
		dst = AppendAvroLong(dst, int64(ev.Priority)-1)
		dst = appendAvroScore(dst, ev.CSAT)
		dst = appendAvroScore(dst, ev.NPS)
	default:
		return dst, fmt.Errorf("codec: unknown event kind %v", ev.Kind)
	}
	return dst, nil
}

// appendAvroScore writes a ["null","int"] union.
func appendAvroScore(dst []byte, v int8) []byte {
	if v == event.NoScore {
		return AppendAvroLong(dst, 0)
	}
	return AppendAvroLong(AppendAvroLong(dst, 1), int64(v))
}

// AppendEventJSON appends ev to dst as the JSON form of its kind's record:
// the contract's field names, enums as their symbols, event_time as epoch
// milliseconds, csat and nps null when absent. Like EventEncoder.Avro it writes
// bad values as they are (an unknown enum as its String form, invalid UTF-8
// unchanged), except a NaN or infinite amount, which JSON cannot express: it
// is written as null.
func AppendEventJSON(dst []byte, ev *event.Event) []byte {
	dst = append(dst, `{"event_id":`...)
	dst = AppendJSONString(dst, ev.EventID)
	dst = append(dst, `,"customer_id":`...)
	dst = AppendJSONString(dst, ev.CustomerID)
	dst = append(dst, `,"event_time":`...)
	dst = strconv.AppendInt(dst, ev.Time, 10)
	dst = append(dst, `,"type":`...)
	switch ev.Kind {
	case event.KindOrder:
		dst = AppendJSONString(dst, ev.OrderType.String())
		dst = append(dst, `,"order_id":`...)
		dst = AppendJSONString(dst, ev.OrderID)
		dst = append(dst, `,"amount":`...)
		if math.IsNaN(ev.Amount) || math.IsInf(ev.Amount, 0) {
			dst = append(dst, "null"...)
		} else {
			dst = strconv.AppendFloat(dst, ev.Amount, 'g', -1, 64)
		}
		dst = append(dst, `,"currency":`...)
		dst = AppendJSONString(dst, ev.Currency)
		dst = append(dst, `,"items":`...)
		dst = strconv.AppendInt(dst, int64(ev.Items), 10)
	case event.KindEmail:
		dst = AppendJSONString(dst, ev.EmailType.String())
		dst = append(dst, `,"campaign_id":`...)
		dst = AppendJSONString(dst, ev.CampaignID)
	case event.KindSupport:
		dst = AppendJSONString(dst, ev.SupportType.String())
		dst = append(dst, `,"ticket_id":`...)
		dst = AppendJSONString(dst, ev.TicketID)
		dst = append(dst, `,"category":`...)
		dst = AppendJSONString(dst, ev.Category)
		dst = append(dst, `,"priority":`...)
		dst = AppendJSONString(dst, ev.Priority.String())
		dst = append(dst, `,"csat":`...)
		dst = appendJSONScore(dst, ev.CSAT)
		dst = append(dst, `,"nps":`...)
		dst = appendJSONScore(dst, ev.NPS)
	default:
		dst = append(dst, "null"...)
	}
	return append(dst, '}')
}

func appendJSONScore(dst []byte, v int8) []byte {
	if v == event.NoScore {
		return append(dst, "null"...)
	}
	return strconv.AppendInt(dst, int64(v), 10)
}
