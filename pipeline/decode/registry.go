package decode

import (
	"context"
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
	// negative entries (unknown ids) expire, so that a schema registered
	// after a record with its id was seen is picked up.
	expires time.Time
}

const maxNegative = 1024 // bounds the cache of unknown ids

// plan returns the plan for decoding records of schema id into kind k.
// The hot path is one lock-free map load.
func (d *Decoder) plan(ctx context.Context, k event.Kind, id int) (*avroPlan, error) {
	if e := d.cached(id); e != nil {
		return e.result(k)
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
		return res.Val.(*schemaEntry).result(k)
	case <-ctx.Done():
		return nil, newErr(ReasonRegistryUnavailable, "", fmt.Errorf("looking up schema id %d: %w", id, ctx.Err()))
	}
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
// outcome unless the registry stayed unavailable.
func (d *Decoder) load(ctx context.Context, id int) (*schemaEntry, error) {
	text, err := d.fetch(ctx, id)
	e := &schemaEntry{}
	switch {
	case errors.Is(err, ErrSchemaNotFound):
		e.fill(newErr(ReasonAvroUnknownSchemaID, "", err))
		e.expires = d.now().Add(d.opts.UnknownSchemaTTL)
		if d.negative.Add(1) > maxNegative {
			d.negative.Add(-1)
			return e, nil // not cached
		}
	case errors.Is(err, ErrNotAvro):
		e.fill(newErr(ReasonAvroWrongSchema, "", err))
	case err != nil:
		return nil, newErr(ReasonRegistryUnavailable, "", err)
	default:
		e.compile(id, text)
	}
	d.cache.Store(id, e)
	return e, nil
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
			return text, err
		}
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
