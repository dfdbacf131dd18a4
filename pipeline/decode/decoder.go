package decode

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/winback/winback/pipeline/event"
)

// DefaultMaxFutureSkew is Options.MaxFutureSkew when it is not set: enough
// for clocks that disagree by a little, not enough for one mis-dated event to
// move event time (and so every timer) by days.
const DefaultMaxFutureSkew = 5 * time.Minute

// Options configures a Decoder. The zero value means every default.
type Options struct {
	// MaxValueBytes is the largest record value accepted; default 1 MiB.
	MaxValueBytes int
	// MaxFutureSkew is how far past Now an event_time may lie; a later one
	// fails with time.in_future. Default DefaultMaxFutureSkew (5 minutes).
	MaxFutureSkew time.Duration
	// Now is the clock for MaxFutureSkew and the schema cache; default time.Now.
	Now func() time.Time
	// RegistryRetry is how long a schema lookup retries an unavailable
	// registry before the record fails with registry.unavailable; default 30 s.
	RegistryRetry time.Duration
	// UnknownSchemaTTL is how long an id the registry does not know is
	// remembered as unknown; default 1 minute.
	UnknownSchemaTTL time.Duration
	// UnavailableTTL is how long an id whose lookup gave up on an
	// unavailable registry is remembered so: records with that id fail
	// with registry.unavailable at once rather than each waiting
	// RegistryRetry. Default 2 s.
	UnavailableTTL time.Duration
	// MaxJSONDepth is the deepest nesting of JSON objects and arrays accepted,
	// the record's own object counting as 1; default 32.
	MaxJSONDepth int
	// Logger receives registry retry warnings; nil discards them.
	Logger *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.MaxValueBytes <= 0 {
		o.MaxValueBytes = 1 << 20
	}
	if o.MaxFutureSkew <= 0 {
		o.MaxFutureSkew = DefaultMaxFutureSkew
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RegistryRetry <= 0 {
		o.RegistryRetry = 30 * time.Second
	}
	if o.UnknownSchemaTTL <= 0 {
		o.UnknownSchemaTTL = time.Minute
	}
	if o.UnavailableTTL <= 0 {
		o.UnavailableTTL = 2 * time.Second
	}
	if o.MaxJSONDepth <= 0 {
		o.MaxJSONDepth = 32
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Decoder turns record values of the three input topics into validated
// events. It is safe for concurrent use.
type Decoder struct {
	reg       Registry
	opts      Options
	now       func() time.Time
	log       *slog.Logger
	maxSkewMs int64
	// latest is the latest event time accepted as of the last clock
	// read (now + MaxFutureSkew, Unix ms): an event up to it is accepted
	// without reading the clock again (a clock stepped back leaves the
	// bound ahead by the step until it catches up).
	latest atomic.Int64

	cache    sync.Map // schema id (int) → *schemaEntry
	negative atomic.Int64
	flight   singleflight.Group
	// down is the registry's latest failure, nil after a lookup that
	// reached it (Unavailable).
	down atomic.Pointer[downState]

	// The scales of the amount in Kafka Connect envelope schemas, by a
	// hash of the schema's text (connect.go); -1: not a Decimal.
	connectSeed   maphash.Seed
	connectMu     sync.Mutex
	connectScales map[uint64]int
}

type downState struct {
	at  time.Time
	err error
}

// NewDecoder returns a Decoder that looks up Avro writer schemas in reg. reg
// may be nil if only JSON is expected; Avro records then fail with
// registry.unavailable.
func NewDecoder(reg Registry, opts Options) *Decoder {
	opts = opts.withDefaults()
	if reg == nil {
		reg = noRegistry{}
	}
	return &Decoder{
		reg:         reg,
		opts:        opts,
		now:         opts.Now,
		log:         opts.Logger,
		maxSkewMs:   opts.MaxFutureSkew.Milliseconds(),
		connectSeed: maphash.MakeSeed(),
	}
}

type noRegistry struct{}

func (noRegistry) SchemaByID(context.Context, int) (string, error) {
	return "", fmt.Errorf("no schema registry configured")
}

// Decode decodes and validates the record (key, value) of the topic for kind
// k into *ev, which it resets first. value is Confluent-framed Avro if it
// starts with the magic byte 0, or a JSON object if its first non-blank byte
// is '{'. Every error about the record is an *Error; Decode returns another
// error only for a kind it does not know. Decode does not retain key or value.
func (d *Decoder) Decode(ctx context.Context, k event.Kind, key, value []byte, ev *event.Event) error {
	*ev = event.Event{}
	s := specFor(k)
	if s == nil {
		return fmt.Errorf("decode: unknown event kind %v", k)
	}
	if len(value) == 0 {
		return errorf(ReasonValueEmpty, "", "record has no value")
	}
	if len(value) > d.opts.MaxValueBytes {
		return errorf(ReasonValueTooLarge, "", "value is %d bytes; the limit is %d", len(value), d.opts.MaxValueBytes)
	}
	var f fields
	if value[0] == 0 {
		if len(value) < 5 {
			return errorf(ReasonAvroTruncated, "", "%d-byte value is shorter than the 5-byte Confluent header", len(value))
		}
		id := int(binary.BigEndian.Uint32(value[1:5]))
		p, err := d.plan(ctx, k, id)
		if err != nil {
			return err
		}
		if err := p.decode(s, value[5:], &f); err != nil {
			return err
		}
	} else {
		i := skipSpace(value, 0)
		if i == len(value) || value[i] != '{' {
			return errorf(ReasonEncodingUnknown, "", "value starts with %q: neither Avro (0x00) nor a JSON object", truncate(value[i:], 16))
		}
		if err := d.decodeJSON(s, value, i, &f); err != nil {
			return err
		}
	}
	return d.finish(s, &f, key, ev)
}
