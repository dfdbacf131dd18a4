package decode

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/winback/winback/internal/srtest"
	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/event"
)

var testTopics = map[event.Kind]string{
	event.KindOrder:   "orders",
	event.KindEmail:   "email-events",
	event.KindSupport: "support-events",
}

func TestEncoderDecoderWithSchemaRegistry(t *testing.T) {
	fake, cl := srtest.New(t)
	ctx := context.Background()
	enc, err := codec.NewEventEncoder(ctx, cl, testTopics)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[event.Kind]int{event.KindOrder: 1, event.KindEmail: 2, event.KindSupport: 3} {
		if got := enc.SchemaID(k); got != want {
			t.Errorf("schema id of %v = %d, want %d (testdata/hostile relies on it)", k, got, want)
		}
	}
	if !fake.SubjectExists("orders-value") || !fake.SubjectExists("support-events-value") {
		t.Error("subjects <topic>-value not registered")
	}
	// Registering again is idempotent: same ids.
	enc2, err := codec.NewEventEncoder(ctx, cl, map[event.Kind]string{event.KindSupport: "support-events-value"})
	if err != nil {
		t.Fatal(err)
	}
	if enc2.SchemaID(event.KindSupport) != 3 || enc2.SchemaID(event.KindOrder) != 0 {
		t.Errorf("re-registering gave ids %d (support) and %d (order), want 3 and 0", enc2.SchemaID(event.KindSupport), enc2.SchemaID(event.KindOrder))
	}

	d := NewDecoder(SchemaRegistry(cl), Options{})
	for _, want := range []event.Event{orderEvent(), emailEvent(), supportEvent()} {
		val, err := enc.Avro(nil, &want)
		if err != nil {
			t.Fatal(err)
		}
		var got event.Event
		if err := d.Decode(ctx, want.Kind, []byte("c-1"), val, &got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("\n got %+v\nwant %+v", got, want)
		}
	}
	var ev event.Event
	checkReason(t, d.Decode(ctx, event.KindOrder, []byte("c-1"), framed(77, nil), &ev), ReasonAvroUnknownSchemaID)

	if _, err := enc2.Avro(nil, &[]event.Event{orderEvent()}[0]); err == nil {
		t.Error("Avro encoded an order without an Order schema id")
	}
	bad := supportEvent()
	bad.Priority = 0
	if _, err := enc.Avro(nil, &bad); err == nil {
		t.Error("Avro encoded priority 0, which the schema cannot express")
	}
}

func TestSchemaRegistryAdapter(t *testing.T) {
	fake, cl := srtest.New(t)
	ctx := context.Background()
	reg := SchemaRegistry(cl)
	id, _, err := fake.RegisterSchema("p-value", sr.Schema{Schema: `syntax = "proto3"; message M { string a = 1; }`, Type: sr.TypeProtobuf})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.SchemaByID(ctx, id); !errors.Is(err, ErrNotAvro) {
		t.Errorf("protobuf schema: got %v, want ErrNotAvro", err)
	}
	if _, err := reg.SchemaByID(ctx, 4242); !errors.Is(err, ErrSchemaNotFound) {
		t.Errorf("unknown id: got %v, want ErrSchemaNotFound", err)
	}
	d := NewDecoder(reg, Options{})
	var ev event.Event
	checkReason(t, d.Decode(ctx, event.KindOrder, []byte("c-1"), framed(id, nil), &ev), ReasonAvroWrongSchema)

	// A registry answering 500 is unavailable, not "not found".
	fake.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusInternalServerError)
		return true
	})
	_, err = reg.SchemaByID(ctx, 1)
	if err == nil || errors.Is(err, ErrSchemaNotFound) {
		t.Errorf("500: got %v, want a plain error", err)
	}
}

func TestRegistryDown(t *testing.T) {
	fake, cl := srtest.New(t)
	ctx := context.Background()
	enc, err := codec.NewEventEncoder(ctx, cl, testTopics)
	if err != nil {
		t.Fatal(err)
	}
	d := NewDecoder(SchemaRegistry(cl), Options{RegistryRetry: 300 * time.Millisecond})
	order, email := orderEvent(), emailEvent()
	orderVal, _ := enc.Avro(nil, &order)
	emailVal, _ := enc.Avro(nil, &email)
	var ev event.Event
	if err := d.Decode(ctx, event.KindOrder, []byte("c-1"), orderVal, &ev); err != nil {
		t.Fatal(err)
	}

	fake.Close() // the registry goes away

	// The cached schema keeps working.
	if err := d.Decode(ctx, event.KindOrder, []byte("c-1"), orderVal, &ev); err != nil {
		t.Fatalf("cached schema while the registry is down: %v", err)
	}
	// An uncached one retries for the budget, then gives up.
	start := time.Now()
	err = d.Decode(ctx, event.KindEmail, []byte("c-1"), emailVal, &ev)
	checkReason(t, err, ReasonRegistryUnavailable)
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Errorf("gave up after %v, before the 300ms budget", el)
	}
	if all, neg := d.cacheCounts(); all != 2 || neg != 1 {
		t.Errorf("cache has %d entries, %d negative; want the schema and the unavailable id", all, neg)
	}
	// The context bounds the wait too.
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	err = d.Decode(cctx, event.KindSupport, []byte("c-1"), framed(3, nil), &ev)
	checkReason(t, err, ReasonRegistryUnavailable)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want it to wrap context.DeadlineExceeded", err)
	}
	d.flight.Forget("3")
	time.Sleep(350 * time.Millisecond) // let the abandoned lookup finish for goleak
}

func TestRegistryRecovers(t *testing.T) {
	reg := newMapRegistry()
	reg.down.Store(true)
	now := testNow
	d := NewDecoder(reg, Options{Now: func() time.Time { return now }, RegistryRetry: 120 * time.Millisecond})
	val := mustAvro(t, orderEvent())
	var ev event.Event
	checkReason(t, d.Decode(context.Background(), event.KindOrder, []byte("c-1"), val, &ev), ReasonRegistryUnavailable)
	if n := reg.calls.Load(); n < 2 {
		t.Errorf("registry asked %d times; want retries", n)
	}
	now = now.Add(3 * time.Second) // past UnavailableTTL
	// The registry comes back during a lookup's retries.
	reg.calls.Store(0)
	go func() {
		time.Sleep(30 * time.Millisecond)
		reg.down.Store(false)
	}()
	if err := d.Decode(context.Background(), event.KindOrder, []byte("c-1"), val, &ev); err != nil {
		t.Fatalf("after the registry came back: %v", err)
	}
	if n := reg.calls.Load(); n < 2 {
		t.Errorf("registry asked %d times; want a retry", n)
	}
}

func TestUnknownSchemaIDCache(t *testing.T) {
	reg := newMapRegistry()
	now := testNow
	d := NewDecoder(reg, Options{Now: func() time.Time { return now }, UnknownSchemaTTL: time.Minute})
	val := framed(50, mustAvro(t, orderEvent())[5:])
	var ev event.Event
	for range 3 {
		checkReason(t, d.Decode(context.Background(), event.KindOrder, []byte("c-1"), val, &ev), ReasonAvroUnknownSchemaID)
	}
	if n := reg.calls.Load(); n != 1 {
		t.Errorf("registry asked %d times for an unknown id, want 1", n)
	}
	reg.add(50, reg.schemas[1]) // the schema is registered late
	now = now.Add(59 * time.Second)
	checkReason(t, d.Decode(context.Background(), event.KindOrder, []byte("c-1"), val, &ev), ReasonAvroUnknownSchemaID)
	now = now.Add(2 * time.Second)
	checkReason(t, d.Decode(context.Background(), event.KindOrder, []byte("c-1"), val, &ev), "")
	if all, neg := d.cacheCounts(); all != 1 || neg != 0 {
		t.Errorf("cache has %d entries, %d negative; want 1, 0", all, neg)
	}

	// The negative cache is bounded.
	for id := 1000; id < 1000+maxNegative+10; id++ {
		checkReason(t, d.Decode(context.Background(), event.KindOrder, []byte("c-1"), framed(id, nil), &ev), ReasonAvroUnknownSchemaID)
	}
	if all, neg := d.cacheCounts(); neg != maxNegative || all != maxNegative+1 {
		t.Errorf("cache has %d entries, %d negative; want %d, %d", all, neg, maxNegative+1, maxNegative)
	}
}

// TestConcurrentDecode runs many goroutines over a cold cache; run it with
// -race. The registry is asked once per id.
func TestConcurrentDecode(t *testing.T) {
	reg := newMapRegistry()
	d := newTestDecoder(reg)
	vals := [][]byte{mustAvro(t, orderEvent()), mustAvro(t, emailEvent()), mustAvro(t, supportEvent())}
	kinds := []event.Kind{event.KindOrder, event.KindEmail, event.KindSupport}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			var ev event.Event
			for i := range 300 {
				j := (g + i) % 3
				if err := d.Decode(context.Background(), kinds[j], []byte("c-1"), vals[j], &ev); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := reg.calls.Load(); n != 3 {
		t.Errorf("registry asked %d times, want 3", n)
	}
}

// TestUnavailableCached: once a lookup gave up on an unavailable registry,
// records with that id fail at once for UnavailableTTL without asking
// again; Unavailable says so until a request reaches the registry.
func TestUnavailableCached(t *testing.T) {
	reg := newMapRegistry()
	reg.down.Store(true)
	now := testNow
	d := NewDecoder(reg, Options{Now: func() time.Time { return now }, RegistryRetry: 100 * time.Millisecond, UnavailableTTL: 2 * time.Second})
	if err := d.Unavailable(); err != nil {
		t.Fatalf("unavailable before any lookup: %v", err)
	}
	val := mustAvro(t, orderEvent())
	var ev event.Event
	checkReason(t, d.Decode(context.Background(), event.KindOrder, []byte("c-1"), val, &ev), ReasonRegistryUnavailable)
	asked := reg.calls.Load()
	if err := d.Unavailable(); err == nil || !strings.Contains(err.Error(), "registry unavailable") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Unavailable() = %v, want the registry's error", err)
	}
	for range 100 {
		err := d.Decode(context.Background(), event.KindOrder, []byte("c-1"), val, &ev)
		checkReason(t, err, ReasonRegistryUnavailable)
		if !ReasonRegistryUnavailable.Transient() {
			t.Fatal("registry.unavailable is not transient")
		}
	}
	if n := reg.calls.Load(); n != asked {
		t.Errorf("registry asked %d more times within UnavailableTTL", n-asked)
	}
	reg.down.Store(false)
	now = now.Add(1999 * time.Millisecond)
	checkReason(t, d.Decode(context.Background(), event.KindOrder, []byte("c-1"), val, &ev), ReasonRegistryUnavailable)
	now = now.Add(time.Millisecond)
	if err := d.Decode(context.Background(), event.KindOrder, []byte("c-1"), val, &ev); err != nil {
		t.Fatalf("after UnavailableTTL with the registry back: %v", err)
	}
	if err := d.Unavailable(); err != nil {
		t.Errorf("Unavailable() = %v after the registry answered", err)
	}
	if all, neg := d.cacheCounts(); all != 1 || neg != 0 {
		t.Errorf("cache has %d entries, %d negative; want 1, 0", all, neg)
	}
}

// TestNegativeEvictedWithoutLookup: expired negative entries go when the
// registry is next asked for any id, not only when their own id is seen.
func TestNegativeEvictedWithoutLookup(t *testing.T) {
	reg := newMapRegistry()
	now := testNow
	d := NewDecoder(reg, Options{Now: func() time.Time { return now }, UnknownSchemaTTL: time.Minute})
	var ev event.Event
	for id := 100; id < 110; id++ {
		checkReason(t, d.Decode(context.Background(), event.KindOrder, []byte("c-1"), framed(id, nil), &ev), ReasonAvroUnknownSchemaID)
	}
	if _, neg := d.cacheCounts(); neg != 10 {
		t.Fatalf("%d negative entries, want 10", neg)
	}
	now = now.Add(time.Minute)
	if err := d.Decode(context.Background(), event.KindOrder, []byte("c-1"), mustAvro(t, orderEvent()), &ev); err != nil {
		t.Fatal(err)
	}
	if all, neg := d.cacheCounts(); all != 1 || neg != 0 {
		t.Errorf("cache has %d entries, %d negative; want only the schema looked up", all, neg)
	}
}

// TestPrefetch: Prefetch looks a schema up and stops waiting when its
// context ends; a Decode with a context already done never waits.
func TestPrefetch(t *testing.T) {
	reg := newMapRegistry()
	d := NewDecoder(reg, Options{Now: func() time.Time { return testNow }, RegistryRetry: 300 * time.Millisecond})
	order, email := mustAvro(t, orderEvent()), mustAvro(t, emailEvent())
	if err := d.Prefetch(context.Background(), order); err != nil {
		t.Fatal(err)
	}
	if err := d.Prefetch(context.Background(), []byte(`{"x":1}`)); err != nil || reg.calls.Load() != 1 {
		t.Fatalf("JSON value: %v, %d registry calls", err, reg.calls.Load())
	}
	done, cancel := context.WithCancel(context.Background())
	cancel()
	var ev event.Event
	if err := d.Decode(done, event.KindOrder, []byte("c-1"), order, &ev); err != nil {
		t.Fatalf("a prefetched schema needs no wait: %v", err)
	}

	reg.down.Store(true)
	err := d.Decode(done, event.KindEmail, []byte("c-1"), email, &ev)
	checkReason(t, err, ReasonRegistryUnavailable)
	if !errors.Is(err, context.Canceled) || reg.calls.Load() != 1 {
		t.Errorf("uncached id with a done context: %v after %d registry calls; want context.Canceled, no call", err, reg.calls.Load())
	}
	ctx, stop := context.WithCancel(context.Background())
	time.AfterFunc(30*time.Millisecond, stop)
	if err := d.Prefetch(ctx, email); !errors.Is(err, context.Canceled) {
		t.Errorf("Prefetch while the registry is down, cancelled: %v, want context.Canceled (not the retry giving up)", err)
	}
	time.Sleep(350 * time.Millisecond) // let the abandoned lookup finish for goleak
}
