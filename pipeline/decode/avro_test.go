package decode

import (
	"context"
	"encoding/binary"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/winback/winback/pipeline/event"
)

// Writer schemas other than the contract's, to test resolution by name.
const (
	// Order v2: fields reordered, new optional and complex fields between
	// them, unions with null, int → long and float → double promotions,
	// event_time in microseconds, and a new enum symbol.
	orderV2 = `{"type":"record","name":"Order","namespace":"com.shop.v2","fields":[
	  {"name":"customer_id","type":["null","string"],"default":null},
	  {"name":"coupon","type":["null","string"],"default":null},
	  {"name":"lines","type":{"type":"array","items":{"type":"record","name":"Line","fields":[
	     {"name":"sku","type":"string"},{"name":"qty","type":"int"},{"name":"price","type":{"type":"fixed","name":"Money","size":8}}]}},"default":[]},
	  {"name":"attrs","type":{"type":"map","values":["null","double","Line"]},"default":{}},
	  {"name":"event_id","type":"string"},
	  {"name":"event_time","type":{"type":"long","logicalType":"timestamp-micros"}},
	  {"name":"type","type":{"type":"enum","name":"OrderType","symbols":["PLACED","CANCELLED","REFUNDED","RETURNED"]}},
	  {"name":"amount","type":"float"},
	  {"name":"order_id","type":"bytes"},
	  {"name":"currency","type":"string"},
	  {"name":"items","type":"long"},
	  {"name":"gift","type":"boolean","default":false}
	]}`
	// A record under another name, with the topic's name as an alias.
	orderAlias = `{"type":"record","name":"Purchase","aliases":["legacy.Order"],"fields":[
	  {"name":"event_id","type":"string"},{"name":"customer_id","type":"string"},
	  {"name":"event_time","type":"long"},
	  {"name":"type","type":{"type":"enum","name":"T","symbols":["PLACED"]}},
	  {"name":"order_id","type":"string"},{"name":"amount","type":"int"},
	  {"name":"currency","type":"string"},{"name":"items","type":"int"}]}`
	orderNoCurrency = `{"type":"record","name":"Order","fields":[
	  {"name":"event_id","type":"string"},{"name":"customer_id","type":"string"},
	  {"name":"event_time","type":"long"},
	  {"name":"type","type":{"type":"enum","name":"T","symbols":["PLACED"]}},
	  {"name":"order_id","type":"string"},{"name":"amount","type":"double"},{"name":"items","type":"int"}]}`
	orderAmountString = `{"type":"record","name":"Order","fields":[
	  {"name":"event_id","type":"string"},{"name":"customer_id","type":"string"},
	  {"name":"event_time","type":"long"},
	  {"name":"type","type":{"type":"enum","name":"T","symbols":["PLACED"]}},
	  {"name":"order_id","type":"string"},{"name":"amount","type":"string"},
	  {"name":"currency","type":"string"},{"name":"items","type":"int"}]}`
	// Support with csat/nps as plain ints, a reversed union order and a
	// recursive type among the skipped fields.
	supportV2 = `{"type":"record","name":"SupportEvent","fields":[
	  {"name":"event_id","type":"string"},{"name":"customer_id","type":"string"},
	  {"name":"event_time","type":"long"},
	  {"name":"type","type":{"type":"enum","name":"T","symbols":["OPENED","UPDATED","REOPENED","RESOLVED"]}},
	  {"name":"thread","type":{"type":"record","name":"Msg","fields":[{"name":"text","type":"string"},{"name":"next","type":["null","Msg"]}]}},
	  {"name":"ticket_id","type":"string"},{"name":"category","type":"string"},
	  {"name":"priority","type":{"type":"enum","name":"P","symbols":["LOW","NORMAL","HIGH","URGENT"]}},
	  {"name":"csat","type":"int"},{"name":"nps","type":["int","null"]}]}`
	notARecord = `"string"`
	// Kafka Connect's AvroConverter, as it writes an orders table's rows:
	// its own record name, strings for the enums, the amount a Connect
	// Decimal (bytes, scale 2), Connect's type parameters, optional
	// columns as unions with null.
	orderConnect = `{"type":"record","name":"ConnectDefault","namespace":"io.confluent.connect.avro","fields":[
	  {"name":"event_id","type":"string"},{"name":"customer_id","type":"string"},
	  {"name":"event_time","type":{"type":"long","connect.version":1,"connect.name":"org.apache.kafka.connect.data.Timestamp","logicalType":"timestamp-millis"}},
	  {"name":"type","type":"string"},
	  {"name":"order_id","type":"string"},
	  {"name":"amount","type":{"type":"bytes","scale":2,"precision":12,"connect.version":1,"connect.parameters":{"scale":"2","connect.decimal.precision":"12"},"connect.name":"org.apache.kafka.connect.data.Decimal","logicalType":"decimal"}},
	  {"name":"currency","type":"string"},
	  {"name":"items","type":"int"},
	  {"name":"note","type":["null","string"],"default":null}
	],"connect.name":"io.confluent.connect.avro.ConnectDefault"}`
	// A decimal amount in a fixed, scale 4, under a table's name.
	orderFixedDecimal = `{"type":"record","name":"orders","fields":[
	  {"name":"event_id","type":"string"},{"name":"customer_id","type":"string"},
	  {"name":"event_time","type":"long"},{"name":"type","type":"string"},
	  {"name":"order_id","type":"string"},
	  {"name":"amount","type":{"type":"fixed","name":"Money","size":9,"logicalType":"decimal","precision":20,"scale":4}},
	  {"name":"currency","type":"string"},{"name":"items","type":"long"}]}`
	// Debezium's ZonedTimestamp: event_time an ISO 8601 string.
	emailZoned = `{"type":"record","name":"Value","namespace":"dbserver1.crm.email","fields":[
	  {"name":"event_id","type":"string"},{"name":"customer_id","type":"string"},
	  {"name":"event_time","type":{"type":"string","connect.version":1,"connect.name":"io.debezium.time.ZonedTimestamp"}},
	  {"name":"type","type":"string"},{"name":"campaign_id","type":"string"}]}`
	orderHugeFixed = `{"type":"record","name":"orders","fields":[
	  {"name":"event_id","type":"string"},{"name":"customer_id","type":"string"},
	  {"name":"event_time","type":"long"},{"name":"type","type":"string"},
	  {"name":"order_id","type":"string"},
	  {"name":"amount","type":{"type":"fixed","name":"Big","size":40,"logicalType":"decimal","precision":90,"scale":2}},
	  {"name":"currency","type":"string"},{"name":"items","type":"long"}]}`
	supportConnect = `{"type":"record","name":"Value","namespace":"dbserver1.helpdesk.tickets","fields":[
	  {"name":"event_id","type":"string"},{"name":"customer_id","type":"string"},
	  {"name":"event_time","type":"long"},{"name":"type","type":"string"},
	  {"name":"ticket_id","type":"string"},{"name":"category","type":["null","string"],"default":null},
	  {"name":"priority","type":"string"},
	  {"name":"csat","type":["null","int"],"default":null},{"name":"nps","type":["null","int"],"default":null}]}`
)

func framed(id int, body []byte) []byte {
	return append(binary.BigEndian.AppendUint32([]byte{0}, uint32(id)), body...)
}

func goavroBody(t testing.TB, schema string, native map[string]any) []byte {
	t.Helper()
	c, err := goavro.NewCodec(schema)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.BinaryFromNative(nil, native)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeAvro(t *testing.T) {
	reg := newMapRegistry()
	reg.add(10, orderV2)
	reg.add(11, orderAlias)
	reg.add(12, orderNoCurrency)
	reg.add(13, orderAmountString)
	reg.add(14, supportV2)
	reg.add(15, notARecord)
	reg.add(16, `{"type":"record","name":"Order","fields":[{"name":"x","type":"nosuchtype"}]}`)
	reg.add(17, orderConnect)
	reg.add(18, orderFixedDecimal)
	reg.add(19, supportConnect)
	reg.add(20, emailZoned)
	reg.add(21, orderHugeFixed)
	d := newTestDecoder(reg)
	zoned := func(at string) []byte {
		return framed(20, goavroBody(t, emailZoned, map[string]any{"event_id": "e-2", "customer_id": "c-1",
			"event_time": at, "type": "OPENED", "campaign_id": "spring-sale"}))
	}

	// conn is orderEvent() as Kafka Connect writes it: amount in cents.
	conn := func(mod func(m map[string]any)) []byte {
		m := map[string]any{"event_id": "e-1", "customer_id": "c-1", "event_time": time.UnixMilli(baseTime).UTC(),
			"type": "PLACED", "order_id": "o-1", "amount": big.NewRat(4250, 100), "currency": "EUR", "items": int32(2),
			"note": goavro.Union("string", "gift wrap")}
		if mod != nil {
			mod(m)
		}
		return framed(17, goavroBody(t, orderConnect, m))
	}
	// Money is a 9-byte two's complement: the unscaled amount at scale 4.
	money := func(unscaled int64) []byte {
		b := binary.BigEndian.AppendUint64([]byte{0}, uint64(unscaled))
		if unscaled < 0 {
			b[0] = 0xff
		}
		return b
	}
	fixedDecAt := func(amount []byte, at int64) []byte {
		return framed(18, goavroBody(t, strings.Replace(orderFixedDecimal, `"logicalType":"decimal",`, "", 1), map[string]any{
			"event_id": "e-1", "customer_id": "c-1", "event_time": at, "type": "PLACED",
			"order_id": "o-1", "amount": amount, "currency": "EUR", "items": int64(2)}))
	}
	fixedDec := func(amount []byte) []byte { return fixedDecAt(amount, int64(baseTime)) }
	connSupport := func(prio string) []byte {
		return framed(19, goavroBody(t, supportConnect, map[string]any{
			"event_id": "e-3", "customer_id": "c-1", "event_time": int64(baseTime), "type": "RESOLVED",
			"ticket_id": "t-1", "category": goavro.Union("string", "delivery"), "priority": prio,
			"csat": goavro.Union("int", int32(2)), "nps": nil}))
	}
	withAmount := func(x float64) *event.Event { e := orderEvent(); e.Amount = x; return &e }

	v2 := func(mod func(m map[string]any)) []byte {
		m := map[string]any{
			"customer_id": goavro.Union("string", "c-1"),
			"coupon":      goavro.Union("string", "SPRING"),
			"lines": []any{
				map[string]any{"sku": "s-1", "qty": int32(2), "price": []byte("12345678")},
				map[string]any{"sku": "s-2", "qty": int32(1), "price": []byte("abcdefgh")},
			},
			"attrs": map[string]any{"a": nil, "b": goavro.Union("double", 1.5),
				"c": goavro.Union("com.shop.v2.Line", map[string]any{"sku": "x", "qty": int32(1), "price": []byte("00000000")})},
			"event_id":   "e-1",
			"event_time": int64(baseTime)*1000 + 999,
			"type":       "PLACED",
			"amount":     float32(42.5),
			"order_id":   []byte("o-1"),
			"currency":   "EUR",
			"items":      int64(2),
			"gift":       true,
		}
		if mod != nil {
			mod(m)
		}
		return framed(10, goavroBody(t, orderV2, m))
	}
	supp2 := func(mod func(m map[string]any)) []byte {
		m := map[string]any{
			"event_id": "e-3", "customer_id": "c-1", "event_time": int64(baseTime), "type": "RESOLVED",
			"thread":    map[string]any{"text": "hi", "next": goavro.Union("Msg", map[string]any{"text": "again", "next": nil})},
			"ticket_id": "t-1", "category": "delivery", "priority": "HIGH",
			"csat": int32(2), "nps": goavro.Union("int", int32(9)),
		}
		if mod != nil {
			mod(m)
		}
		return framed(14, goavroBody(t, supportV2, m))
	}
	order := func(mod func(e *event.Event)) []byte {
		e := orderEvent()
		if mod != nil {
			mod(&e)
		}
		return mustAvro(t, e)
	}
	support := func(mod func(e *event.Event)) []byte {
		e := supportEvent()
		if mod != nil {
			mod(&e)
		}
		return mustAvro(t, e)
	}
	valid := order(nil)
	s2 := supportEvent()
	s2.NPS = 9

	for _, tc := range []struct {
		name  string
		kind  event.Kind
		key   string // "-" for none
		value []byte
		want  Reason
		ev    *event.Event // checked if set
	}{
		{"contract order", event.KindOrder, "c-1", valid, "", &[]event.Event{orderEvent()}[0]},
		{"evolved order", event.KindOrder, "c-1", v2(nil), "", &[]event.Event{orderEvent()}[0]},
		{"alias", event.KindOrder, "c-1", framed(11, goavroBody(t, orderAlias, map[string]any{
			"event_id": "e-1", "customer_id": "c-1", "event_time": int64(baseTime), "type": "PLACED",
			"order_id": "o-1", "amount": int32(42), "currency": "EUR", "items": int32(2)})), "", nil},
		{"evolved support", event.KindSupport, "c-1", supp2(nil), "", &s2},
		{"evolved support nps null", event.KindSupport, "c-1", supp2(func(m map[string]any) { m["nps"] = nil }), "", &[]event.Event{supportEvent()}[0]},
		{"kafka connect order", event.KindOrder, "c-1", conn(nil), "", &[]event.Event{orderEvent()}[0]},
		{"kafka connect support", event.KindSupport, "c-1", connSupport("HIGH"), "", &[]event.Event{supportEvent()}[0]},
		{"decimal 39.99", event.KindOrder, "c-1", conn(func(m map[string]any) { m["amount"] = big.NewRat(3999, 100) }), "", withAmount(39.99)},
		{"decimal 0", event.KindOrder, "c-1", conn(func(m map[string]any) { m["amount"] = big.NewRat(0, 1) }), "", withAmount(0)},
		{"decimal of 20 digits", event.KindOrder, "c-1", conn(func(m map[string]any) { m["amount"], _ = new(big.Rat).SetString("123456789012345678.91") }), "", withAmount(123456789012345678.91)},
		{"fixed decimal", event.KindOrder, "c-1", fixedDec(money(425000)), "", withAmount(42.5)},
		// event_time a plain long: Debezium's MicroTimestamp, say.
		{"plain long event_time in microseconds", event.KindOrder, "c-1", fixedDecAt(money(425000), int64(baseTime)*1000+999), "", withAmount(42.5)},
		{"plain long event_time in seconds", event.KindOrder, "c-1", fixedDecAt(money(425000), int64(baseTime)/1000), "", withAmount(42.5)},
		{"fixed decimal of 18 digits", event.KindOrder, "c-1", fixedDec(money(999999999999999999)), "", withAmount(99999999999999.9999)},
		{"negative decimal", event.KindOrder, "c-1", conn(func(m map[string]any) { m["amount"] = big.NewRat(-1, 100) }), ReasonFieldInvalid, nil},
		{"negative fixed decimal", event.KindOrder, "c-1", fixedDec(money(-425000)), ReasonFieldInvalid, nil},
		{"empty decimal", event.KindOrder, "c-1", framed(17, goavroBody(t, strings.Replace(orderConnect, `,"logicalType":"decimal"`, "", 1), map[string]any{
			"event_id": "e-1", "customer_id": "c-1", "event_time": int64(baseTime), "type": "PLACED", "order_id": "o-1",
			"amount": []byte{}, "currency": "EUR", "items": int32(2), "note": nil})), ReasonFieldInvalid, nil},
		{"zoned timestamp", event.KindEmail, "c-1", zoned("2024-05-01T14:00:00+02:00"), "", &[]event.Event{emailEvent()}[0]},
		{"zoned timestamp, not RFC 3339", event.KindEmail, "c-1", zoned("May 1, 2024"), ReasonFieldInvalid, nil},
		{"fixed decimal of 40 bytes", event.KindOrder, "c-1", framed(21, nil), ReasonAvroWrongSchema, nil},
		{"unknown type string", event.KindOrder, "c-1", conn(func(m map[string]any) { m["type"] = "placed" }), ReasonFieldInvalid, nil},
		{"unknown priority string", event.KindSupport, "c-1", connSupport("P1"), ReasonFieldInvalid, nil},

		{"header only", event.KindOrder, "c-1", []byte{0, 0, 0}, ReasonAvroTruncated, nil},
		{"header no body", event.KindOrder, "c-1", []byte{0, 0, 0, 0, 1}, ReasonAvroTruncated, nil},
		{"truncated string", event.KindOrder, "c-1", valid[:9], ReasonAvroTruncated, nil},
		{"truncated double", event.KindOrder, "c-1", valid[:len(valid)-7], ReasonAvroTruncated, nil},
		{"truncated varint", event.KindOrder, "c-1", framed(1, []byte{0x80}), ReasonAvroTruncated, nil},
		{"truncated skipped array", event.KindOrder, "c-1", v2(nil)[:30], ReasonAvroTruncated, nil},
		{"unknown schema id", event.KindOrder, "c-1", framed(999, valid[5:]), ReasonAvroUnknownSchemaID, nil},
		{"email schema on orders", event.KindOrder, "c-1", mustAvro(t, emailEvent()), ReasonAvroWrongSchema, nil},
		{"order schema on support", event.KindSupport, "c-1", valid, ReasonAvroWrongSchema, nil},
		{"amount of type string", event.KindOrder, "c-1", framed(13, nil), ReasonAvroWrongSchema, nil},
		{"schema not a record", event.KindOrder, "c-1", framed(15, []byte{2, 'x'}), ReasonAvroWrongSchema, nil},
		{"invalid schema", event.KindOrder, "c-1", framed(16, nil), ReasonAvroWrongSchema, nil},
		{"schema without currency", event.KindOrder, "c-1", framed(12, nil), ReasonFieldMissing, nil},
		{"null customer_id", event.KindOrder, "c-1", v2(func(m map[string]any) { m["customer_id"] = nil }), ReasonFieldMissing, nil},
		{"varint too long", event.KindOrder, "c-1", framed(1, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}), ReasonAvroDecode, nil},
		{"negative length", event.KindOrder, "c-1", framed(1, []byte{1}), ReasonAvroDecode, nil},
		{"trailing bytes", event.KindOrder, "c-1", append(order(nil), 0), ReasonAvroDecode, nil},
		{"enum index out of range", event.KindOrder, "c-1", framed(1, []byte{6, 'e', '-', '1', 6, 'c', '-', '1', 0, 6}), ReasonAvroDecode, nil},
		{"int out of range", event.KindOrder, "c-1", append(order(nil)[:len(valid)-1], 0x80, 0x80, 0x80, 0x80, 0x10), ReasonAvroDecode, nil},
		{"union index out of range", event.KindSupport, "c-1", append(support(func(e *event.Event) { e.NPS = event.NoScore })[:len(support(func(e *event.Event) { e.NPS = event.NoScore }))-1], 4), ReasonAvroDecode, nil},
		{"bad boolean in a skipped field", event.KindOrder, "c-1", append(v2(nil)[:len(v2(nil))-1], 2), ReasonAvroDecode, nil},
		{"unknown symbol, then truncated", event.KindOrder, "c-1", v2(func(m map[string]any) { m["type"] = "RETURNED" })[:len(v2(nil))-12], ReasonAvroTruncated, nil},
		{"new enum symbol", event.KindOrder, "c-1", v2(func(m map[string]any) { m["type"] = "RETURNED" }), ReasonFieldInvalid, nil},
		{"NaN amount", event.KindOrder, "c-1", order(func(e *event.Event) { e.Amount = math.NaN() }), ReasonFieldInvalid, nil},
		{"Inf amount", event.KindOrder, "c-1", order(func(e *event.Event) { e.Amount = math.Inf(1) }), ReasonFieldInvalid, nil},
		{"negative amount", event.KindOrder, "c-1", order(func(e *event.Event) { e.Amount = -0.01 }), ReasonFieldInvalid, nil},
		{"negative items", event.KindOrder, "c-1", order(func(e *event.Event) { e.Items = -1 }), ReasonFieldInvalid, nil},
		{"lower-case currency", event.KindOrder, "c-1", order(func(e *event.Event) { e.Currency = "eur" }), ReasonFieldInvalid, nil},
		{"long currency", event.KindOrder, "c-1", order(func(e *event.Event) { e.Currency = "EURO" }), ReasonFieldInvalid, nil},
		{"empty event_id", event.KindOrder, "c-1", order(func(e *event.Event) { e.EventID = "" }), ReasonFieldInvalid, nil},
		{"empty order_id", event.KindOrder, "c-1", order(func(e *event.Event) { e.OrderID = "" }), ReasonFieldInvalid, nil},
		{"invalid UTF-8", event.KindOrder, "c-1", order(func(e *event.Event) { e.OrderID = "o-\xff" }), ReasonFieldInvalid, nil},
		{"csat 0", event.KindSupport, "c-1", support(func(e *event.Event) { e.CSAT = 0 }), ReasonFieldInvalid, nil},
		{"csat 9", event.KindSupport, "c-1", support(func(e *event.Event) { e.CSAT = 9 }), ReasonFieldInvalid, nil},
		{"nps 11", event.KindSupport, "c-1", support(func(e *event.Event) { e.NPS = 11 }), ReasonFieldInvalid, nil},
		{"nps -2", event.KindSupport, "c-1", support(func(e *event.Event) { e.NPS = -2 }), ReasonFieldInvalid, nil},
		{"csat as plain int 6", event.KindSupport, "c-1", supp2(func(m map[string]any) { m["csat"] = int32(6) }), ReasonFieldInvalid, nil},
		{"year 9999", event.KindOrder, "c-1", order(func(e *event.Event) { e.Time = 253402300799000 }), ReasonTimeInFuture, nil},
		{"before 1970", event.KindOrder, "c-1", order(func(e *event.Event) { e.Time = -1 }), ReasonTimeOutOfRange, nil},
		{"1999", event.KindOrder, "c-1", order(func(e *event.Event) { e.Time = 946684799999 }), ReasonTimeOutOfRange, nil},
		{"8 days ahead", event.KindOrder, "c-1", order(func(e *event.Event) { e.Time = testNow.UnixMilli() + 8*86400000 }), ReasonTimeInFuture, nil},
		{"null key", event.KindOrder, "-", valid, ReasonKeyMissing, nil},
		{"empty key", event.KindOrder, "", valid, ReasonKeyMissing, nil},
		{"other key", event.KindOrder, "c-2", valid, ReasonKeyMismatch, nil},
		{"key prefix", event.KindOrder, "c-", valid, ReasonKeyMismatch, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var key []byte
			if tc.key != "-" {
				key = []byte(tc.key)
			}
			var ev event.Event
			err := d.Decode(context.Background(), tc.kind, key, tc.value, &ev)
			checkReason(t, err, tc.want)
			if tc.ev != nil && ev != *tc.ev {
				t.Errorf("\n got %+v\nwant %+v", ev, *tc.ev)
			}
		})
	}
}

// TestDecodeAvroAgreesWithGoavro decodes the contract's records with goavro
// and with the decoder and compares the results.
func TestDecodeAvroAgreesWithGoavro(t *testing.T) {
	d := newTestDecoder(newMapRegistry())
	for _, ev := range []event.Event{orderEvent(), emailEvent(), supportEvent()} {
		val := mustAvro(t, ev)
		reg := newMapRegistry()
		codec, err := goavro.NewCodec(reg.schemas[kindSchemaID[ev.Kind]])
		if err != nil {
			t.Fatal(err)
		}
		native, rest, err := codec.NativeFromBinary(val[5:])
		if err != nil || len(rest) != 0 {
			t.Fatalf("goavro: %v, %d bytes left", err, len(rest))
		}
		fromGoavro, err := eventFromNative(ev.Kind, native.(map[string]any))
		if err != nil {
			t.Fatal(err)
		}
		var got event.Event
		if err := d.Decode(context.Background(), ev.Kind, []byte("c-1"), val, &got); err != nil {
			t.Fatal(err)
		}
		if got != fromGoavro || got != ev {
			t.Errorf("\ndecoder %+v\n goavro %+v\n   sent %+v", got, fromGoavro, ev)
		}
	}
}

// TestDecimal: an Avro decimal reads as the float64 that strconv.ParseFloat
// gives for the same number written out, from one byte to the 32 read,
// at scales 0 to 40.
func TestDecimal(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 20000 {
		n := 1 + rng.IntN(maxDecimalBytes)
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if i%3 == 0 && n > 1 { // small values in long encodings
			for j := range b[:n-1] {
				b[j] = 0
			}
		}
		scale := rng.IntN(41)
		got, ok := decimal(b, scale)
		u := new(big.Int).SetBytes(b)
		if b[0]&0x80 != 0 {
			u.Sub(u, new(big.Int).Lsh(big.NewInt(1), uint(8*n)))
		}
		text := u.String() + "e-" + strconv.Itoa(scale)
		want, err := strconv.ParseFloat(text, 64)
		if !ok || err != nil || got != want {
			t.Fatalf("%x at scale %d (%s): got %v, %v; ParseFloat %v, %v", b, scale, text, got, ok, want, err)
		}
	}
	for _, b := range [][]byte{nil, make([]byte, maxDecimalBytes+1)} {
		if _, ok := decimal(b, 2); ok {
			t.Errorf("decimal of %d bytes accepted", len(b))
		}
	}
}
