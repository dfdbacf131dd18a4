package decode

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/linkedin/goavro/v2"

	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/event"
)

var benchEvents = []struct {
	name string
	ev   event.Event
}{
	{"order", orderEvent()},
	{"email", emailEvent()},
	{"support", supportEvent()},
}

func benchDecode(b *testing.B, encode func(testing.TB, event.Event) []byte) {
	for _, be := range benchEvents {
		b.Run(be.name, func(b *testing.B) {
			d := newTestDecoder(newMapRegistry())
			val := encode(b, be.ev)
			key := []byte(be.ev.CustomerID)
			ctx := context.Background()
			var ev event.Event
			if err := d.Decode(ctx, be.ev.Kind, key, val, &ev); err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(val)))
			b.ReportAllocs()
			for b.Loop() {
				if err := d.Decode(ctx, be.ev.Kind, key, val, &ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeAvro(b *testing.B) { benchDecode(b, mustAvro) }

func BenchmarkDecodeJSON(b *testing.B) {
	benchDecode(b, func(_ testing.TB, ev event.Event) []byte { return codec.AppendEventJSON(nil, &ev) })
}

// BenchmarkDecodeAvroParallel shows the schema cache does not contend.
func BenchmarkDecodeAvroParallel(b *testing.B) {
	d := newTestDecoder(newMapRegistry())
	val := mustAvro(b, orderEvent())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var ev event.Event
		for pb.Next() {
			if err := d.Decode(context.Background(), event.KindOrder, []byte("c-1"), val, &ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkGoavroReference is the straightforward alternative the decoder
// replaces: goavro's native map, then a map → event conversion (no
// validation).
func BenchmarkGoavroReference(b *testing.B) {
	codec, err := goavro.NewCodec(newMapRegistry().schemas[1])
	if err != nil {
		b.Fatal(err)
	}
	val := mustAvro(b, orderEvent())[5:]
	b.ReportAllocs()
	for b.Loop() {
		n, _, err := codec.NativeFromBinary(val)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := eventFromNative(event.KindOrder, n.(map[string]any)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStdlibJSONReference is encoding/json into a struct, the
// alternative to the hand-rolled scanner (no validation).
func BenchmarkStdlibJSONReference(b *testing.B) {
	ev := orderEvent()
	val := codec.AppendEventJSON(nil, &ev)
	var rec struct {
		EventID    string  `json:"event_id"`
		CustomerID string  `json:"customer_id"`
		EventTime  int64   `json:"event_time"`
		Type       string  `json:"type"`
		OrderID    string  `json:"order_id"`
		Amount     float64 `json:"amount"`
		Currency   string  `json:"currency"`
		Items      int32   `json:"items"`
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := json.Unmarshal(val, &rec); err != nil {
			b.Fatal(err)
		}
	}
}
