package decode

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/winback/winback/pipeline/event"
)

// Registry looks up writer schemas by the id in the Confluent header.
//
// An implementation returns an error wrapping ErrSchemaNotFound for an id it
// does not know and ErrNotAvro for a schema the decoder cannot use; the
// decoder does not retry those. Any other error is taken to be the registry
// being unavailable, and the decoder retries it with backoff.
type Registry interface {
	SchemaByID(ctx context.Context, id int) (string, error)
}

// SchemaRegistry adapts a franz-go schema-registry client to Registry.
func SchemaRegistry(cl *sr.Client) Registry { return srRegistry{cl} }

type srRegistry struct{ cl *sr.Client }

func (r srRegistry) SchemaByID(ctx context.Context, id int) (string, error) {
	s, err := r.cl.SchemaByID(ctx, id)
	if err != nil {
		var re *sr.ResponseError
		if errors.As(err, &re) && (re.StatusCode == http.StatusNotFound || re.StatusCode == http.StatusUnprocessableEntity) {
			return "", fmt.Errorf("schema id %d: %w: %v", id, ErrSchemaNotFound, err)
		}
		return "", fmt.Errorf("schema id %d: %w", id, err)
	}
	if s.Type != sr.TypeAvro {
		return "", fmt.Errorf("schema id %d is %v: %w", id, s.Type, ErrNotAvro)
	}
	if len(s.References) > 0 {
		return "", fmt.Errorf("schema id %d has references: %w", id, ErrNotAvro)
	}
	return s.Schema, nil
}

// schemaEntry is the cached result of looking up one schema id: a plan per
// kind, or why the id cannot be used for that kind.
type schemaEntry struct {
	plans [len(specs)]*avroPlan
	errs  [len(specs)]*Error
	// negative entries (unknown ids, and ids whose lookup found the
	// registry unavailable) expire, so that a schema registered after a
	// record with its id was seen, or a registry that came back, is
	// picked up.
	expires time.Time
}

const maxNegative = 1024 // bounds the cache of unknown and unavailable ids

// plan returns the plan for decoding records of schema id into kind k.
// The hot path is one lock-free map load.
func (d *Decoder) plan(ctx context.Context, k event.Kind, id int) (*avroPlan, error) {
	e, err := d.entry(ctx, id)
	if err != nil {
		return nil, err
	}
	return e.result(k)
}

// entry returns the cache entry of schema id, looking it up if it is not
// cached. Waiting for the lookup ends with ctx (the lookup itself goes
// on, for up to RegistryRetry, and caches its outcome); a ctx that is
// already done never waits.
func (d *Decoder) entry(ctx context.Context, id int) (*schemaEntry, error) {
	if e := d.cached(id); e != nil {
		return e, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, newErr(ReasonRegistryUnavailable, "", fmt.Errorf("schema id %d is not cached: %w", id, err))
	}
	ch := d.flight.DoChan(strconv.Itoa(id), func() (any, error) {
		// A flight that ended between our cache miss and DoChan has
		// stored its result: use it rather than ask again.
		if e := d.cached(id); e != nil {
			return e, nil
		}
		return d.load(context.WithoutCancel(ctx), id)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*schemaEntry), nil
	case <-ctx.Done():
		return nil, newErr(ReasonRegistryUnavailable, "", fmt.Errorf("looking up schema id %d: %w", id, ctx.Err()))
	}
}

// Prefetch looks up the writer schema of a Confluent-framed Avro value
// if it is not cached, waiting until ctx is done at most, so that a
// Decode of the value afterwards finds it cached (or finds the id
// unknown or the registry unavailable, cached too) and does not wait.
// Other values return at once. The error is the lookup's; Decode reports
// it again for the record.
func (d *Decoder) Prefetch(ctx context.Context, value []byte) error {
	if len(value) < 5 || value[0] != 0 || len(value) > d.opts.MaxValueBytes {
		return nil
	}
	_, err := d.entry(ctx, int(binary.BigEndian.Uint32(value[1:5])))
	return err
}

// Unavailable returns why the registry is unavailable: the error of its
// latest failed request, if no request reached it since and that failure
// is less than RegistryRetry + UnavailableTTL old. Otherwise nil. It never
// calls the registry (a readiness check).
func (d *Decoder) Unavailable() error {
	s := d.down.Load()
	if s == nil || d.now().Sub(s.at) > d.opts.RegistryRetry+d.opts.UnavailableTTL {
		return nil
	}
	return fmt.Errorf("registry unavailable: %w", s.err)
}

// cached returns the live cache entry of schema id, or nil; an expired
// negative entry is dropped.
func (d *Decoder) cached(id int) *schemaEntry {
	v, ok := d.cache.Load(id)
	if !ok {
		return nil
	}
	e := v.(*schemaEntry)
	if e.expires.IsZero() || d.now().Before(e.expires) {
		return e
	}
	if d.cache.CompareAndDelete(id, v) {
		d.negative.Add(-1)
	}
	return nil
}

func (e *schemaEntry) result(k event.Kind) (*avroPlan, error) {
	if err := e.errs[k]; err != nil {
		c := *err // callers may annotate their copy
		return nil, &c
	}
	return e.plans[k], nil
}

// load fetches schema id, retrying for up to RegistryRetry, and caches the
// outcome: for UnknownSchemaTTL if the registry does not know the id, for
// UnavailableTTL if it stayed unavailable.
func (d *Decoder) load(ctx context.Context, id int) (*schemaEntry, error) {
	d.evictExpired()
	text, err := d.fetch(ctx, id)
	e := &schemaEntry{}
	switch {
	case errors.Is(err, ErrSchemaNotFound):
		e.fill(newErr(ReasonAvroUnknownSchemaID, "", err))
		e.expires = d.now().Add(d.opts.UnknownSchemaTTL)
	case errors.Is(err, ErrNotAvro):
		e.fill(newErr(ReasonAvroWrongSchema, "", err))
	case err != nil:
		uerr := newErr(ReasonRegistryUnavailable, "", err)
		e.fill(uerr)
		e.expires = d.now().Add(d.opts.UnavailableTTL)
		d.storeNegative(id, e)
		c := *uerr
		return nil, &c
	default:
		e.compile(id, text)
	}
	if !e.expires.IsZero() {
		d.storeNegative(id, e)
		return e, nil
	}
	d.cache.Store(id, e)
	return e, nil
}

// storeNegative caches an expiring entry, unless maxNegative of them are
// cached already.
func (d *Decoder) storeNegative(id int, e *schemaEntry) {
	if d.negative.Add(1) > maxNegative {
		d.negative.Add(-1)
		return
	}
	if old, loaded := d.cache.Swap(id, e); loaded && !old.(*schemaEntry).expires.IsZero() {
		d.negative.Add(-1) // replaced an expired negative entry of the same id
	}
}

// evictExpired drops the expired negative entries. It runs before every
// registry lookup, so that ids seen once do not hold their slots until
// they are seen again.
func (d *Decoder) evictExpired() {
	if d.negative.Load() == 0 {
		return
	}
	now := d.now()
	d.cache.Range(func(k, v any) bool {
		if e := v.(*schemaEntry); !e.expires.IsZero() && !now.Before(e.expires) && d.cache.CompareAndDelete(k, v) {
			d.negative.Add(-1)
		}
		return true
	})
}

func (e *schemaEntry) fill(err *Error) {
	for k := range e.errs {
		e.errs[k] = err
	}
}

func (e *schemaEntry) compile(id int, text string) {
	// goavro is the reference parser: a schema it rejects is not used.
	if _, err := goavro.NewCodec(text); err != nil {
		e.fill(errorf(ReasonAvroWrongSchema, "", "schema id %d is not a valid Avro schema: %w", id, err))
		return
	}
	root, err := parseSchema(text)
	if err != nil {
		e.fill(errorf(ReasonAvroWrongSchema, "", "schema id %d: %w", id, err))
		return
	}
	for k, s := range specs {
		if s == nil {
			continue
		}
		p, perr := compile(s, root)
		if perr != nil {
			perr.Err = fmt.Errorf("schema id %d: %w", id, perr.Err)
			e.errs[k] = perr
			continue
		}
		e.plans[k] = p
	}
}

// fetch asks the registry for schema id, retrying other errors than
// ErrSchemaNotFound and ErrNotAvro with exponential backoff until
// RegistryRetry has passed.
func (d *Decoder) fetch(ctx context.Context, id int) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opts.RegistryRetry)
	defer cancel()
	wait := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		text, err := d.reg.SchemaByID(ctx, id)
		if err == nil || errors.Is(err, ErrSchemaNotFound) || errors.Is(err, ErrNotAvro) {
			d.down.Store(nil)
			return text, err
		}
		d.down.Store(&downState{at: d.now(), err: err})
		d.log.WarnContext(ctx, "schema registry lookup failed", "schema_id", id, "attempt", attempt, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("schema id %d: gave up after %d attempts: %w", id, attempt, err)
		case <-t.C:
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// cacheCounts is for tests: how many ids are cached, and how many of them
// negatively.
func (d *Decoder) cacheCounts() (all, negative int) {
	d.cache.Range(func(any, any) bool { all++; return true })
	return all, int(d.negative.Load())
}
