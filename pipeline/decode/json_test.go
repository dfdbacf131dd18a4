package decode

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/winback/winback/pipeline/event"
)

func TestDecodeJSON(t *testing.T) {
	d := newTestDecoder(nil)
	const order = `{"event_id":"e-1","customer_id":"c-1","event_time":1714564800000,"type":"PLACED","order_id":"o-1","amount":42.5,"currency":"EUR","items":2}`
	// with replaces the first occurrence of old in the valid order.
	with := func(old, new string) string {
		if !strings.Contains(order, old) {
			t.Fatalf("%q not in the order", old)
		}
		return strings.Replace(order, old, new, 1)
	}
	const support = `{"event_id":"e-3","customer_id":"c-1","event_time":"2024-05-01T14:00:00+02:00","type":"RESOLVED","ticket_id":"t-1","category":"delivery","priority":"HIGH","csat":2}`
	wantOrder := orderEvent()
	wantSupport := supportEvent()
	wantEmail := emailEvent()
	deep := `{"x":` + strings.Repeat(`[`, 40) + strings.Repeat(`]`, 40) + `,` + order[1:]
	justDeepEnough := `{"x":` + strings.Repeat(`[`, 31) + strings.Repeat(`]`, 31) + `,` + order[1:]

	f := func(name string, kind event.Kind, key, value string, want Reason, wantEv *event.Event) {
		t.Helper()
		var k []byte
		if key != "-" {
			k = []byte(key)
		}
		var ev event.Event
		err := d.Decode(context.Background(), kind, k, []byte(value), &ev)
		if want == "" && err != nil {
			t.Errorf("%s: %v", name, err)
			return
		}
		if want != "" {
			r, _ := ReasonOf(err)
			if r != want {
				t.Errorf("%s: got %v, want reason %s", name, err, want)
			}
			return
		}
		if wantEv != nil && ev != *wantEv {
			t.Errorf("%s:\n got %+v\nwant %+v", name, ev, *wantEv)
		}
	}
	o := event.KindOrder
	f("order", o, "c-1", order, "", &wantOrder)
	f("blanks", o, "c-1", " \r\n\t"+strings.ReplaceAll(order, ",", " ,\n ")+"\n ", "", &wantOrder)
	f("field order and unknown fields", o, "c-1", `{"items":2,"extra":{"a":[1,2.5e3,true,false,null,"x\"y"]},"currency":"EUR","amount":42.5,"order_id":"o-1","type":"PLACED","event_time":1714564800000,"customer_id":"c-1","event_id":"e-1","campaign_id":7}`, "", &wantOrder)
	f("escaped strings", o, "c-1", with(`"o-1"`, `"\u006f-\u0031"`), "", &wantOrder)
	f("integer amount", o, "c-1", with(`42.5`, `425e-1`), "", &wantOrder)
	f("RFC 3339 time", event.KindSupport, "c-1", support, "", &wantSupport)
	f("email", event.KindEmail, "c-1", `{"event_id":"e-2","customer_id":"c-1","event_time":1714564800000,"type":"OPENED","campaign_id":"spring-sale"}`, "", &wantEmail)
	// Kafka Connect's JsonConverter with schemas.enable=true.
	const connectSchema = `{"type":"struct","fields":[{"type":"string","optional":false,"field":"event_id"},{"type":"int64","optional":false,"name":"org.apache.kafka.connect.data.Timestamp","version":1,"field":"event_time"}],"optional":false,"name":"orders"}`
	f("connect envelope", o, "c-1", `{"schema":`+connectSchema+`,"payload":`+order+`}`, "", &wantOrder)
	f("connect envelope, payload first", o, "c-1", `{"payload":`+order+`,"schema":`+connectSchema+`}`, "", &wantOrder)
	f("connect envelope, null schema", o, "c-1", `{"schema":null,"payload":`+order+`}`, "", &wantOrder)
	f("connect envelope split", o, "c-1", `{"event_id":"e-1","payload":`+strings.Replace(order, `"event_id":"e-1",`, "", 1)+`}`, "", &wantOrder)
	f("connect envelope, a field twice", o, "c-1", `{"event_id":"e-1","payload":`+order+`}`, ReasonFieldInvalid, nil)
	f("connect envelope twice", o, "c-1", `{"payload":{"event_id":"e-1"},"payload":`+strings.Replace(order, `"event_id":"e-1",`, "", 1)+`}`, ReasonFieldInvalid, nil)
	f("connect tombstone", o, "c-1", `{"schema":null,"payload":null}`, ReasonFieldMissing, nil)
	// A DECIMAL amount as the JsonConverter writes it by default: base64
	// of the unscaled value (4250 = 0x109a: "EJo="), its scale in the
	// schema.
	decimalSchema := func(scale string) string {
		return `{"type":"struct","fields":[{"type":"string","optional":false,"field":"event_id"},{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"` + scale + `","connect.decimal.precision":"10"},"field":"amount"}],"optional":false,"name":"shop.public.orders.Value"}`
	}
	envelope := func(scale, amount string) string {
		return `{"schema":` + decimalSchema(scale) + `,"payload":` + with(`42.5`, amount) + `}`
	}
	f("connect decimal", o, "c-1", envelope("2", `"EJo="`), "", &wantOrder)
	f("connect decimal, schema after the payload", o, "c-1", `{"payload":`+with(`42.5`, `"EJo="`)+`,"schema":`+decimalSchema("2")+`}`, "", &wantOrder)
	f("connect decimal, scale 3", o, "c-1", envelope("3", `"AKYE"`), "", &wantOrder) // 42500
	f("connect decimal, numeric", o, "c-1", envelope("2", `42.5`), "", &wantOrder)
	f("connect decimal, the schema given again as null", o, "c-1", `{"schema":`+decimalSchema("2")+`,"schema":null,"payload":`+with(`42.5`, `"EJo="`)+`}`, ReasonJSONType, nil)
	f("connect decimal, the schema given again", o, "c-1", `{"schema":null,"schema":`+decimalSchema("2")+`,"payload":`+with(`42.5`, `"EJo="`)+`}`, "", &wantOrder)
	f("connect decimal, no schema", o, "c-1", `{"schema":null,"payload":`+with(`42.5`, `"EJo="`)+`}`, ReasonJSONType, nil)
	f("connect decimal, amount not a Decimal", o, "c-1", `{"schema":`+connectSchema+`,"payload":`+with(`42.5`, `"EJo="`)+`}`, ReasonJSONType, nil)
	f("connect decimal, scale not a number", o, "c-1", envelope("two", `"EJo="`), ReasonJSONType, nil)
	f("connect decimal, outside an envelope", o, "c-1", `{"schema":`+decimalSchema("2")+`,`+with(`42.5`, `"EJo="`)[1:], ReasonJSONType, nil)
	f("connect decimal, bad base64", o, "c-1", envelope("2", `"EJo"`), ReasonFieldInvalid, nil)
	f("connect decimal, negative", o, "c-1", envelope("2", `"72Y="`), ReasonFieldInvalid, nil)
	f("connect decimal, 33 bytes", o, "c-1", envelope("2", `"`+strings.Repeat("AAAA", 11)+`"`), ReasonFieldInvalid, nil)
	f("connect decimal, empty", o, "c-1", envelope("2", `""`), ReasonFieldInvalid, nil)
	f("connect envelope, then a null payload", o, "c-1", `{"payload":`+order+`,"payload":null}`, ReasonFieldInvalid, nil)
	f("a string payload, then the envelope", o, "c-1", `{"payload":"x","payload":`+order+`}`, ReasonFieldInvalid, nil)
	f("payload too deep", o, "c-1", `{"payload":{"x":`+strings.Repeat(`[`, 31)+strings.Repeat(`]`, 31)+`,`+order[1:]+`}`, ReasonJSONTooDeep, nil)
	f("payload in a payload", o, "c-1", `{"payload":{"payload":`+order+`}}`, ReasonFieldMissing, nil)
	f("payload not an object", o, "c-1", `{"payload":"`+strings.ReplaceAll(order, `"`, `\"`)+`"}`, ReasonFieldMissing, nil)
	f("payload with bad syntax", o, "c-1", `{"payload":{"event_id":"e-1",}}`, ReasonJSONSyntax, nil)
	f("null scores", event.KindSupport, "c-1", strings.Replace(support, `"csat":2`, `"csat":null,"nps":null`, 1), "", nil)
	f("just deep enough", o, "c-1", justDeepEnough, "", &wantOrder)
	f("surrogate pair", o, "c-1", with(`"o-1"`, `"o-\ud83d\ude00"`), "", nil)

	f("escapes in a skipped string", o, "c-1", `{"x":"a\"\\\/\b\f\n\r\t\u00e9","y":{"\"k":true}, `+order[1:], "", &wantOrder)
	f("bad escape in a skipped string", o, "c-1", `{"x":"\q",`+order[1:], ReasonJSONSyntax, nil)
	f("short unicode escape in a skipped string", o, "c-1", `{"x":"\u12"}`, ReasonJSONSyntax, nil)
	f("unterminated skipped string", o, "c-1", `{"x":"abc`, ReasonJSONSyntax, nil)
	f("control char in a skipped string", o, "c-1", "{\"x\":\"a\x01\"}", ReasonJSONSyntax, nil)
	f("bad literal in a skipped field", o, "c-1", `{"x":tru}`, ReasonJSONSyntax, nil)
	f("short literal at the end", o, "c-1", `{"x":fa`, ReasonJSONSyntax, nil)
	f("avro without a registry", o, "c-1", string(mustAvro(t, orderEvent())), ReasonRegistryUnavailable, nil)
	f("empty", o, "c-1", ``, ReasonValueEmpty, nil)
	f("garbage", o, "c-1", `hello`, ReasonEncodingUnknown, nil)
	f("blank only", o, "c-1", "  \n", ReasonEncodingUnknown, nil)
	f("array", o, "c-1", `[`+order+`]`, ReasonEncodingUnknown, nil)
	f("string", o, "c-1", `"c-1"`, ReasonEncodingUnknown, nil)
	f("BOM", o, "c-1", "\xef\xbb\xbf"+order, ReasonEncodingUnknown, nil)
	f("truncated", o, "c-1", order[:40], ReasonJSONSyntax, nil)
	f("unclosed", o, "c-1", order[:len(order)-1], ReasonJSONSyntax, nil)
	f("trailing data", o, "c-1", order+`{}`, ReasonJSONSyntax, nil)
	f("trailing comma", o, "c-1", with(`,"items":2`, `,"items":2,`), ReasonJSONSyntax, nil)
	f("missing colon", o, "c-1", with(`"items":`, `"items" `), ReasonJSONSyntax, nil)
	f("single quotes", o, "c-1", with(`"o-1"`, `'o-1'`), ReasonJSONSyntax, nil)
	f("bad escape", o, "c-1", with(`"o-1"`, `"o\x1"`), ReasonJSONSyntax, nil)
	f("bad unicode escape", o, "c-1", with(`"o-1"`, `"o\u12g4"`), ReasonJSONSyntax, nil)
	f("control char", o, "c-1", with(`"o-1"`, "\"o\n1\""), ReasonJSONSyntax, nil)
	f("bad literal", o, "c-1", with(`"o-1"`, `nul`), ReasonJSONSyntax, nil)
	f("bad number", o, "c-1", with(`42.5`, `42.`), ReasonJSONSyntax, nil)
	f("leading zero", o, "c-1", with(`42.5`, `042.5`), ReasonJSONSyntax, nil)
	f("bad skipped value", o, "c-1", `{"x":[1,,2],`+order[1:], ReasonJSONSyntax, nil)
	f("bad type then bad syntax", o, "c-1", with(`42.5`, `[1,,]`), ReasonJSONSyntax, nil)
	f("unknown enum, then bad syntax", o, "c-1", with(`"PLACED"`, `"SHIPPED"`)+"x", ReasonJSONSyntax, nil)
	f("duplicate, then bad syntax", o, "c-1", with(`"items":2`, `"items":2,"items":3,`), ReasonJSONSyntax, nil)
	f("amount as a decimal string", o, "c-1", with(`42.5`, `"42.50"`), "", &wantOrder)
	f("amount as an escaped decimal string", o, "c-1", with(`42.5`, `"42\u002e50"`), "", &wantOrder)
	f("amount as a string without a point", o, "c-1", with(`42.5`, `"42"`), ReasonJSONType, nil)
	f("amount as a base64 decimal", o, "c-1", with(`42.5`, `"EJo="`), ReasonJSONType, nil)
	f("amount as a string with an exponent", o, "c-1", with(`42.5`, `"4.25e1"`), ReasonJSONType, nil)
	f("amount as a string with a point alone", o, "c-1", with(`42.5`, `"42."`), ReasonJSONType, nil)
	f("amount as an empty string", o, "c-1", with(`42.5`, `""`), ReasonJSONType, nil)
	f("amount as a negative decimal string", o, "c-1", with(`42.5`, `"-42.50"`), ReasonFieldInvalid, nil)
	f("amount as a string with a bad escape", o, "c-1", with(`42.5`, `"42\q50"`), ReasonJSONSyntax, nil)
	f("items as string", o, "c-1", with(`"items":2`, `"items":"2"`), ReasonJSONType, nil)
	f("items fraction", o, "c-1", with(`"items":2`, `"items":2.5`), ReasonJSONType, nil)
	f("items exponent", o, "c-1", with(`"items":2`, `"items":2e0`), ReasonJSONType, nil)
	f("event_time fraction", o, "c-1", with(`1714564800000`, `1714564800000.5`), ReasonJSONType, nil)
	// An epoch number whose unit its magnitude tells.
	f("event_time in seconds", o, "c-1", with(`1714564800000`, `1714564800`), "", &wantOrder)
	f("event_time in microseconds", o, "c-1", with(`1714564800000`, `1714564800000999`), "", &wantOrder)
	f("event_time in nanoseconds", o, "c-1", with(`1714564800000`, `1714564800000999999`), "", &wantOrder)
	f("event_time in seconds before 2000", o, "c-1", with(`1714564800000`, `946684799`), ReasonTimeOutOfRange, nil)
	y2k := wantOrder
	y2k.Time = 946684800000
	f("event_time in seconds, year 2000", o, "c-1", with(`1714564800000`, `946684800`), "", &y2k)
	f("event_time in milliseconds, year 9999", o, "c-1", with(`1714564800000`, `253402300799000`), ReasonTimeInFuture, nil)
	f("event_time in microseconds, the future", o, "c-1", with(`1714564800000`, `4102444800000000`), ReasonTimeInFuture, nil)
	f("event_time in milliseconds, 1970", o, "c-1", with(`1714564800000`, `86400000`), ReasonTimeOutOfRange, nil)
	f("event_time in milliseconds, 1999", o, "c-1", with(`1714564800000`, `946684799000`), ReasonTimeOutOfRange, nil) // not seconds of the year 31,969
	f("event_time in seconds, the future", o, "c-1", with(`1714564800000`, `4102444799`), ReasonTimeInFuture, nil)    // 2099, not 1970
	f("event_time bool", o, "c-1", with(`1714564800000`, `true`), ReasonJSONType, nil)
	f("customer_id number", o, "c-1", with(`"c-1"`, `1`), ReasonJSONType, nil)
	f("type object", o, "c-1", with(`"PLACED"`, `{"s":"PLACED"}`), ReasonJSONType, nil)
	f("too deep", o, "c-1", deep, ReasonJSONTooDeep, nil)
	f("empty object", o, "c-1", `{}`, ReasonFieldMissing, nil)
	f("null customer_id", o, "c-1", with(`"c-1"`, `null`), ReasonFieldMissing, nil)
	f("names match exactly", o, "c-1", with(`"currency"`, `"Currency"`), ReasonFieldMissing, nil)
	f("support lacks priority", event.KindSupport, "c-1", strings.Replace(support, `"priority":"HIGH",`, ``, 1), ReasonFieldMissing, nil)
	f("duplicate field", o, "c-1", with(`"items":2`, `"items":2,"customer_id":"c-2"`), ReasonFieldInvalid, nil)
	f("unknown enum", o, "c-1", with(`"PLACED"`, `"SHIPPED"`), ReasonFieldInvalid, nil)
	f("lower-case enum", o, "c-1", with(`"PLACED"`, `"placed"`), ReasonFieldInvalid, nil)
	f("negative amount", o, "c-1", with(`42.5`, `-1`), ReasonFieldInvalid, nil)
	f("amount overflow", o, "c-1", with(`42.5`, `1e999`), ReasonFieldInvalid, nil)
	f("items overflow", o, "c-1", with(`"items":2`, `"items":3000000000`), ReasonFieldInvalid, nil)
	f("items int64 overflow", o, "c-1", with(`"items":2`, `"items":99999999999999999999`), ReasonFieldInvalid, nil)
	f("invalid UTF-8", o, "c-1", with(`"o-1"`, "\"o-\xc3\x28\""), ReasonFieldInvalid, nil)
	f("lone surrogate", o, "c-1", with(`"o-1"`, `"o-\ud800"`), ReasonFieldInvalid, nil)
	f("empty id", o, "c-1", with(`"e-1"`, `""`), ReasonFieldInvalid, nil)
	f("currency", o, "c-1", with(`"EUR"`, `"€"`), ReasonFieldInvalid, nil)
	f("bad RFC 3339", o, "c-1", with(`1714564800000`, `"2024-05-01 12:00:00"`), ReasonFieldInvalid, nil)
	// RFC 3339 5.6: "T" and "Z" may be lower case; Go's layout takes only
	// upper case.
	f("RFC 3339, lower-case t and z", o, "c-1", with(`1714564800000`, `"2024-05-01t12:00:00z"`), "", &wantOrder)
	f("RFC 3339, lower-case t, offset", o, "c-1", with(`1714564800000`, `"2024-05-01t14:00:00.000+02:00"`), "", &wantOrder)
	f("RFC 3339, a lower-case letter elsewhere", o, "c-1", with(`1714564800000`, `"2024-05-01x12:00:00z"`), ReasonFieldInvalid, nil)
	f("digits as a time string", o, "c-1", with(`1714564800000`, `"1714564800000"`), ReasonFieldInvalid, nil)
	f("csat 9", event.KindSupport, "c-1", strings.Replace(support, `"csat":2`, `"csat":9`, 1), ReasonFieldInvalid, nil)
	f("nps 11", event.KindSupport, "c-1", strings.Replace(support, `"csat":2`, `"nps":11`, 1), ReasonFieldInvalid, nil)
	f("year 9999", o, "c-1", with(`1714564800000`, `"9999-12-31T23:59:59Z"`), ReasonTimeInFuture, nil)
	f("before 1970", o, "c-1", with(`1714564800000`, `-86400000`), ReasonTimeOutOfRange, nil)
	f("beyond int64", o, "c-1", with(`1714564800000`, `92233720368547758070`), ReasonTimeOutOfRange, nil)
	f("null key", o, "-", order, ReasonKeyMissing, nil)
	f("key mismatch", o, "C-1", order, ReasonKeyMismatch, nil)
}

// TestDecodeJSONDepthOption checks that MaxJSONDepth is honoured.
func TestDecodeJSONDepthOption(t *testing.T) {
	d := NewDecoder(nil, Options{MaxJSONDepth: 2, Now: func() time.Time { return testNow }})
	val := []byte(`{"x":{"y":1},"event_id":"e-1"}`)
	var ev event.Event
	checkReason(t, d.Decode(context.Background(), event.KindOrder, []byte("c-1"), val, &ev), ReasonFieldMissing)
	val = []byte(`{"x":{"y":[]},"event_id":"e-1"}`)
	checkReason(t, d.Decode(context.Background(), event.KindOrder, []byte("c-1"), val, &ev), ReasonJSONTooDeep)
}

// The future-skew check reads the clock only for an event later than the
// latest accepted at the last read, and a clock that moved on accepts
// what it refused before.
func TestFutureSkewClock(t *testing.T) {
	now, reads := testNow, 0
	d := NewDecoder(nil, Options{MaxFutureSkew: time.Minute, Now: func() time.Time { reads++; return now }})
	var ev event.Event
	order := func(at time.Time) []byte {
		return fmt.Appendf(nil, `{"event_id":"e-1","customer_id":"c-1","event_time":%d,"type":"PLACED","order_id":"o-1","amount":1,"currency":"EUR","items":1}`, at.UnixMilli())
	}
	for i := range 100 {
		if err := d.Decode(context.Background(), event.KindOrder, []byte("c-1"), order(testNow.Add(-time.Duration(i)*time.Hour)), &ev); err != nil {
			t.Fatal(err)
		}
	}
	if reads != 1 {
		t.Errorf("100 past events read the clock %d times, want 1", reads)
	}
	ahead := order(testNow.Add(2 * time.Minute))
	checkReason(t, d.Decode(context.Background(), event.KindOrder, []byte("c-1"), ahead, &ev), ReasonTimeInFuture)
	now = now.Add(90 * time.Second)
	if err := d.Decode(context.Background(), event.KindOrder, []byte("c-1"), ahead, &ev); err != nil {
		t.Errorf("2 minutes ahead of a clock that moved 90 s on (skew 1 minute): %v", err)
	}
}
