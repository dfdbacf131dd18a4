package decode

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"

	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/event"
)

func fuzzKind(k uint8) event.Kind { return event.Kind(k%3 + 1) }

// checkDecodeError fails unless err is nil or an *Error.
func checkDecodeError(t *testing.T, err error) Reason {
	t.Helper()
	if err == nil {
		return ""
	}
	r, ok := ReasonOf(err)
	if !ok {
		t.Fatalf("error is not a *decode.Error: %T %v", err, err)
	}
	return r
}

func FuzzDecodeJSON(f *testing.F) {
	for _, ev := range []event.Event{orderEvent(), emailEvent(), supportEvent()} {
		f.Add(uint8(ev.Kind-1), []byte("c-1"), codec.AppendEventJSON(nil, &ev))
	}
	f.Add(uint8(0), []byte("c-1"), []byte(`{"event_id":"\u00e9\ud83d\ude00","customer_id":"c-1","x":[{"a":-0.5e+3}],"event_time":"2024-05-01T12:00:00.123Z"}`))
	f.Add(uint8(0), []byte("c-1"), []byte(`{"event_id":"e-1","customer_id":"c-1","event_time":1714564800000,"type":"PLACED","order_id":"o-1","amount":"42.50","currency":"EUR","items":2}`))
	f.Add(uint8(0), []byte("c-1"), []byte(`{"schema":{"fields":[{"field":"amount","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}}]},"payload":{"event_id":"e-1","customer_id":"c-1","event_time":1714564800000,"type":"PLACED","order_id":"o-1","amount":"EJo=","currency":"EUR","items":2}}`))
	f.Add(uint8(2), []byte("c-1"), []byte(`{"schema":{"type":"struct"},"payload":{"event_id":"e-1","customer_id":"c-1","event_time":1714564800000,"type":"OPENED","ticket_id":"t","category":"x","priority":"LOW"}}`))
	d := newTestDecoder(nil)
	f.Fuzz(func(t *testing.T, k uint8, key, value []byte) {
		kind := fuzzKind(k)
		var ev event.Event
		err := d.Decode(context.Background(), kind, key, value, &ev)
		r := checkDecodeError(t, err)
		valid := json.Valid(value)
		if !valid && err == nil {
			t.Fatalf("accepted invalid JSON %q", value)
		}
		if valid && r == ReasonJSONSyntax {
			t.Fatalf("json.syntax for valid JSON %q: %v", value, err)
		}
		// Values are judged only once the whole object has been read.
		switch r {
		case ReasonFieldMissing, ReasonFieldInvalid, ReasonFieldTooLong, ReasonTimeOutOfRange, ReasonTimeInFuture, ReasonKeyMissing, ReasonKeyMismatch:
			if !valid {
				t.Fatalf("%s for invalid JSON %q: %v", r, value, err)
			}
		}
		if err != nil {
			return
		}
		// encoding/json reads the same ids, at the top or in Kafka
		// Connect's envelope.
		var m map[string]any
		if err := json.Unmarshal(value, &m); err != nil {
			t.Fatal(err)
		}
		id := func(name string) any {
			if v, ok := m[name]; ok {
				return v
			}
			p, _ := m["payload"].(map[string]any)
			return p[name]
		}
		if id("customer_id") != ev.CustomerID || id("event_id") != ev.EventID {
			t.Fatalf("encoding/json reads ids %q %q, decoder %q %q", id("customer_id"), id("event_id"), ev.CustomerID, ev.EventID)
		}
		// An amount given as a string is a decimal with a point, read as
		// strconv reads it, or base64 in a Kafka Connect envelope whose
		// schema declares it a Decimal.
		if s, ok := id("amount").(string); ok && ev.Kind == event.KindOrder {
			want, ok := oracleAmount(m, s)
			if !ok || want != ev.Amount {
				t.Fatalf("amount %q read as %v, want %v (%v)", s, ev.Amount, want, ok)
			}
		}
		// The event survives a round trip.
		var again event.Event
		if err := d.Decode(context.Background(), kind, key, codec.AppendEventJSON(nil, &ev), &again); err != nil || again != ev {
			t.Fatalf("round trip: %v\n got %+v\nwant %+v", err, again, ev)
		}
	})
}

// oracleAmount reads the string amount s of the record m (as
// encoding/json decoded it) on its own terms: a decimal with a point, or
// base64 two's complement with the scale of m's Connect schema.
func oracleAmount(m map[string]any, s string) (float64, bool) {
	if strings.Contains(s, ".") {
		x, err := strconv.ParseFloat(s, 64)
		return x, err == nil && !strings.ContainsAny(s, "eE+")
	}
	if _, top := m["amount"]; top {
		return 0, false
	}
	schema, _ := m["schema"].(map[string]any)
	fields, _ := schema["fields"].([]any)
	scale := -1
	for _, x := range fields {
		f, _ := x.(map[string]any)
		params, _ := f["parameters"].(map[string]any)
		sc, _ := params["scale"].(string)
		if n, err := strconv.Atoi(sc); err == nil && f["field"] == "amount" && f["name"] == "org.apache.kafka.connect.data.Decimal" && n >= 0 && n <= 64 {
			scale = n
		}
	}
	b, ok := oracleBase64(s)
	if scale < 0 || !ok || len(b) == 0 || len(b) > 32 {
		return 0, false
	}
	u := new(big.Int).SetBytes(b)
	if b[0]&0x80 != 0 {
		u.Sub(u, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	x, _ := new(big.Rat).SetFrac(u, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)).Float64()
	return x, true
}

// oracleBase64 decodes standard, padded base64 by hand: groups of four
// characters of the alphabet, '=' only at the end, unused bits zero.
func oracleBase64(s string) ([]byte, bool) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	if len(s)%4 != 0 {
		return nil, false
	}
	var out []byte
	for g := 0; g < len(s); g += 4 {
		var v uint32
		pad := 0
		for i, c := range []byte(s[g : g+4]) {
			k := strings.IndexByte(alphabet, c)
			switch {
			case c == '=' && g+4 == len(s) && i >= 2:
				pad++
				k = 0
			case k < 0 || pad > 0:
				return nil, false
			}
			v = v<<6 | uint32(k)
		}
		out = append(out, byte(v>>16), byte(v>>8), byte(v))
		if v&(1<<(8*pad)-1) != 0 {
			return nil, false // bits under the padding
		}
		out = out[:len(out)-pad]
	}
	return out, true
}

// fuzzRegistry has the contract's schemas at 1–3 and evolved ones at 4–5.
func fuzzRegistry() *mapRegistry {
	reg := newMapRegistry()
	reg.add(4, orderV2)
	reg.add(5, supportV2)
	reg.add(6, orderConnect)
	reg.add(7, supportConnect)
	return reg
}

// fuzzSchemaKind is the input kind of each schema of fuzzRegistry.
var fuzzSchemaKind = map[int]event.Kind{1: event.KindOrder, 2: event.KindEmail, 3: event.KindSupport,
	4: event.KindOrder, 5: event.KindSupport, 6: event.KindOrder, 7: event.KindSupport}

func FuzzDecodeAvro(f *testing.F) {
	for _, ev := range []event.Event{orderEvent(), emailEvent(), supportEvent()} {
		f.Add(uint8(ev.Kind-1), []byte("c-1"), mustAvro(f, ev))
	}
	f.Add(uint8(0), []byte("c-1"), framed(6, goavroBody(f, orderConnect, map[string]any{"event_id": "e-1", "customer_id": "c-1",
		"event_time": int64(baseTime), "type": "PLACED", "order_id": "o-1", "amount": big.NewRat(-4250, 100), "currency": "EUR",
		"items": int32(2), "note": nil})))
	f.Add(uint8(2), []byte("c-1"), framed(7, goavroBody(f, supportConnect, map[string]any{"event_id": "e-3", "customer_id": "c-1",
		"event_time": int64(baseTime), "type": "OPENED", "ticket_id": "t-1", "category": nil, "priority": "LOW",
		"csat": nil, "nps": goavro.Union("int", int32(10))})))
	reg := fuzzRegistry()
	codecs := map[int]*goavro.Codec{}
	for id, text := range reg.schemas {
		c, err := goavro.NewCodec(text)
		if err != nil {
			f.Fatal(err)
		}
		codecs[id] = c
	}
	d := newTestDecoder(reg)
	f.Fuzz(func(t *testing.T, k uint8, key, value []byte) {
		kind := fuzzKind(k)
		var ev event.Event
		err := d.Decode(context.Background(), kind, key, value, &ev)
		r := checkDecodeError(t, err)
		if len(value) < 5 || value[0] != 0 {
			return
		}
		id := int(value[1])<<24 | int(value[2])<<16 | int(value[3])<<8 | int(value[4])
		ref, ok := codecs[id]
		if !ok {
			return
		}
		// goavro, the reference, must agree that the data is well formed
		// whenever the decoder does. (goavro is laxer: it accepts overlong
		// varints and wraps ints, so the converse does not hold.)
		structural := r == ReasonAvroTruncated || r == ReasonAvroDecode
		// A schema of another kind is wrong for the topic, or (when it
		// is not named after another input) lacks the topic's fields.
		wrongSchema := r == ReasonAvroWrongSchema || (r == ReasonFieldMissing && fuzzSchemaKind[id] != kind)
		if structural || wrongSchema {
			return
		}
		native, rest, gerr := ref.NativeFromBinary(value[5:])
		if gerr != nil || len(rest) != 0 {
			t.Fatalf("decoder: %v; goavro: %v, %d bytes left", err, gerr, len(rest))
		}
		if err != nil {
			return
		}
		if id <= 3 {
			want, nerr := eventFromNative(kind, native.(map[string]any))
			if nerr != nil || want != ev {
				t.Fatalf("goavro %v:\n got %+v\nwant %+v", nerr, ev, want)
			}
		}
		again, aerr := codec.AppendEventAvro(nil, kindSchemaID[kind], &ev)
		if aerr != nil {
			t.Fatal(aerr)
		}
		var ev2 event.Event
		if err := d.Decode(context.Background(), kind, key, again, &ev2); err != nil || ev2 != ev {
			t.Fatalf("round trip: %v\n got %+v\nwant %+v", err, ev2, ev)
		}
	})
}

// writeFuzzSeeds writes the hostile inputs as seeds of both fuzz targets,
// as testdata/fuzz/<target>/hostile_*; other files there are inputs the
// fuzzer found, kept as regression tests.
func writeFuzzSeeds(t *testing.T, inputs []hostileInput) {
	kinds := map[string]uint8{"order": 0, "email": 1, "support": 2}
	for _, target := range []string{"FuzzDecodeJSON", "FuzzDecodeAvro"} {
		dir := filepath.Join("testdata", "fuzz", target)
		old, err := filepath.Glob(filepath.Join(dir, "hostile_*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range old { // keep the fuzzer's finds
			if err := os.Remove(name); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, in := range inputs {
			isAvro := len(in.value) > 0 && in.value[0] == 0
			if isAvro != (target == "FuzzDecodeAvro") || len(in.value) > 4096 {
				continue
			}
			key := in.key
			if key == "-" {
				key = ""
			}
			body := fmt.Sprintf("go test fuzz v1\nuint8(%d)\n[]byte(%s)\n[]byte(%s)\n",
				kinds[in.kind], strconv.Quote(key), strconv.Quote(string(in.value)))
			name := "hostile_" + in.name[:len(in.name)-len(filepath.Ext(in.name))]
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
