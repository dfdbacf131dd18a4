package main

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
)

// engineHeap is the lapse engine measured in process: the heap it keeps
// per tracked customer, and its own speed on the same events.
type engineHeap struct {
	Customers    int     `json:"customers"`  // tracked at the end
	Days         int     `json:"days"`       // of generated history fed to it
	Events       int64   `json:"events"`     // applied (malformed records skipped)
	HeapBytes    int64   `json:"heap_bytes"` // live heap after GC, engine only
	BytesPerCust float64 `json:"bytes_per_customer"`
	ApplySeconds float64 `json:"apply_s"` // wall time of Apply over every event (single goroutine)
	EventsPerS   float64 `json:"events_per_s"`
	Profile      string  `json:"cpu_profile,omitempty"`
}

func (e engineHeap) summary() string {
	return fmt.Sprintf("%d customers (%d days of history, %d events): %.0f bytes of heap per tracked customer (%s in all); Apply alone runs at %s events/s on one goroutine",
		e.Customers, e.Days, e.Events, e.BytesPerCust, mib(e.HeapBytes), human(e.EventsPerS))
}

// runEngine is "bench contender" for the engine measurement: a process of
// its own, so that nothing else lives on its heap.
// With spec.StateTopic set, it then writes every customer's snapshot to
// that changelog topic (partitioned as winback partitions its tasks), for
// the restore measurement at this many customers.
func runEngine(ctx context.Context, spec contenderSpec, log *slog.Logger) (contenderResult, error) {
	e, eng, g, err := measureEngine(ctx, spec.Customers, spec.Days, spec.Seed, spec.Profile)
	res := contenderResult{Records: e.Events, Customers: e.Customers, Engine: &e}
	if err != nil || spec.StateTopic == "" {
		return res, err
	}
	began := time.Now()
	n, err := writeChangelog(ctx, spec, eng, g)
	log.Info("changelog written", "topic", spec.StateTopic, "snapshots", n, "took", time.Since(began).Round(time.Millisecond))
	return res, err
}

// writeChangelog produces a snapshot of every customer of eng, keyed by
// customer id, to the partition of spec.StateTopic that is the customer's
// task (murmur2 of the key, as the inputs are partitioned), plus each
// partition's meta record.
func writeChangelog(ctx context.Context, spec contenderSpec, eng *lapse.Engine, g *gen.Generator) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(spec.Brokers), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	var (
		mu       sync.Mutex
		firstErr error
	)
	promise := func(_ *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			firstErr = cmp.Or(firstErr, err)
			mu.Unlock()
		}
	}
	n := 0
	for _, t := range g.Truth() {
		c := eng.Customer(t.CustomerID)
		if c == nil {
			continue
		}
		p := int32(murmur2([]byte(t.CustomerID))&0x7fffffff) % int32(spec.Partitions)
		cl.Produce(ctx, &kgo.Record{Topic: spec.StateTopic, Partition: p, Key: []byte(t.CustomerID), Value: eng.AppendSnapshot(nil, c)}, promise)
		n++
	}
	meta := eng.AppendMeta(nil)
	for p := range int32(spec.Partitions) {
		cl.Produce(ctx, &kgo.Record{Topic: spec.StateTopic, Partition: p, Key: []byte("\x00meta"), Value: meta}, promise)
	}
	if err := cl.Flush(ctx); err != nil {
		return n, err
	}
	mu.Lock()
	defer mu.Unlock()
	return n, firstErr
}

var sourceOf = [...]int{event.KindOrder: lapse.SourceOrders, event.KindEmail: lapse.SourceEmail, event.KindSupport: lapse.SourceSupport}

// measureEngine feeds days of generated history for customers customers to
// one lapse.Engine (as one task holding them all) and measures the live
// heap the engine keeps: runtime.GC and HeapAlloc before and after, with
// the generator's own plan already allocated in the "before". If
// profilePath is set, Apply runs under the CPU profiler.
func measureEngine(ctx context.Context, customers, days int, seed int64, profilePath string) (engineHeap, *lapse.Engine, *gen.Generator, error) {
	res := engineHeap{Days: days}
	g, err := gen.New(gen.Config{Customers: customers, Days: days, Seed: seed})
	if err != nil {
		return res, nil, nil, err
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc

	if profilePath != "" {
		if err := os.MkdirAll(filepath.Dir(profilePath), 0o755); err != nil {
			return res, nil, nil, err
		}
		f, err := os.Create(profilePath)
		if err != nil {
			return res, nil, nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return res, nil, nil, err
		}
		res.Profile = profilePath
	}
	start := time.Now()
	eng := lapse.NewEngine(lapse.DefaultConfig(), 3, start)
	var (
		trig     []event.Trigger
		applying time.Duration
		buf      = make([]gen.Record, 0, 4096)
	)
	// Apply runs over batches of buffered events, so that the timing
	// leaves out the generator's own work.
	flush := func() {
		t0 := time.Now()
		for i := range buf {
			trig, _, _ = eng.Apply(trig[:0], sourceOf[buf[i].Kind], &buf[i].Event, t0)
		}
		// As the runner does after each batch: take the changed
		// customers (it writes their snapshots), so the dirty list does
		// not grow with the whole population.
		eng.TakeDirty(func(*lapse.Customer) {})
		applying += time.Since(t0)
		res.Events += int64(len(buf))
		buf = buf[:0]
	}
	err = g.Each(func(r *gen.Record) error {
		if r.Malformed != nil {
			return nil
		}
		buf = append(buf, gen.Record{Kind: r.Kind, Event: r.Event})
		if len(buf) == cap(buf) {
			flush()
			return ctx.Err()
		}
		return nil
	})
	flush()
	if profilePath != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return res, nil, nil, err
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	res.HeapBytes = int64(ms.HeapAlloc) - int64(before)
	res.Customers = eng.Len()
	runtime.KeepAlive(eng)
	runtime.KeepAlive(g)
	if res.Customers > 0 {
		res.BytesPerCust = float64(res.HeapBytes) / float64(res.Customers)
	}
	res.ApplySeconds = applying.Seconds()
	if applying > 0 {
		res.EventsPerS = float64(res.Events) / applying.Seconds()
	}
	return res, eng, g, nil
}
