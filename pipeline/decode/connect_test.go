package decode

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/winback/winback/pipeline/event"
)

// TestConnectDecimal: random DECIMAL amounts of 1 to 32 bytes, at scales 0
// to 40, as Kafka Connect's JsonConverter writes them (base64 of the
// unscaled two's complement, the scale in the envelope's schema), are
// read as the nearest double to the exact value, or rejected as negative.
func TestConnectDecimal(t *testing.T) {
	d := newTestDecoder(nil)
	r := rand.New(rand.NewPCG(11, 12))
	const order = `{"event_id":"e-1","customer_id":"c-1","event_time":1714564800000,"type":"PLACED","order_id":"o-1","amount":%q,"currency":"EUR","items":2}`
	for i := range 20000 {
		b := make([]byte, 1+r.IntN(32))
		for j := range b {
			b[j] = byte(r.UintN(256))
		}
		scale := r.IntN(41)
		schema := fmt.Sprintf(`{"type":"struct","fields":[{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"%d"},"field":"amount"}]}`, scale)
		value := `{"schema":` + schema + `,"payload":` + fmt.Sprintf(order, base64.StdEncoding.EncodeToString(b)) + `}`
		u := new(big.Int).SetBytes(b)
		if b[0]&0x80 != 0 {
			u.Sub(u, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
		}
		want, _ := new(big.Rat).SetFrac(u, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)).Float64()
		var ev event.Event
		err := d.Decode(context.Background(), event.KindOrder, []byte("c-1"), []byte(value), &ev)
		if u.Sign() < 0 {
			if r, _ := ReasonOf(err); r != ReasonFieldInvalid {
				t.Fatalf("%d: %x scale %d (negative): %v, want field.invalid", i, b, scale, err)
			}
			continue
		}
		if err != nil || ev.Amount != want {
			t.Fatalf("%d: %x scale %d: %v, %v; want %v", i, b, scale, ev.Amount, err, want)
		}
	}
	// A line break inside the base64, which encoding/base64 would skip.
	value := `{"schema":{"fields":[{"name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"},"field":"amount"}]},"payload":` + fmt.Sprintf(order, "EJ\no=") + `}`
	var ev event.Event
	if r, _ := ReasonOf(d.Decode(context.Background(), event.KindOrder, []byte("c-1"), []byte(value), &ev)); r != ReasonFieldInvalid {
		t.Fatalf("a line break in the base64: %s, want field.invalid", r)
	}
	// A schema over 64 KiB is not read.
	huge := `{"fields":[{"name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"},"field":"amount"},{"field":"` + strings.Repeat("x", 64<<10) + `"}]}`
	value = `{"schema":` + huge + `,"payload":` + fmt.Sprintf(order, "EJo=") + `}`
	if r, _ := ReasonOf(d.Decode(context.Background(), event.KindOrder, []byte("c-1"), []byte(value), &ev)); r != ReasonJSONType {
		t.Fatalf("a schema of %d bytes: %s, want json.type", len(huge), r)
	}
}
