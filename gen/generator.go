package gen

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"time"

	"github.com/winback/winback/pipeline/event"
)

// Record is one record of the generated stream.
type Record struct {
	// Kind says which topic the record goes to.
	Kind event.Kind
	// Event is the event. For a malformed record it is the event the bad
	// bytes stand in for (its CustomerID is the record key); it is never
	// delivered as such.
	Event event.Event
	// Malformed, when non-nil, is the raw value to send instead of an
	// encoding of Event; it may be empty (MalformedEmptyValue). It is the
	// generator's buffer, valid until the callback returns: copy it to
	// keep it (an asynchronous producer does).
	Malformed []byte
	// MalformedKind names the defect; see the Malformed* constants.
	MalformedKind string
	// Duplicate marks a re-send of the previous valid record of the same
	// customer and topic, with the same event_id (a producer retry).
	Duplicate bool
}

// Generator produces a deterministic stream of records and the truth
// planted in it. It is safe for concurrent use; each Each call runs its
// own simulation.
type Generator struct {
	cfg       Config
	start     int64
	end       int64
	plans     []plan
	truth     []Truth
	campaigns []campaign
	// defect rates per valid record
	malformedRate, duplicateRate float64
}

// New plans every customer of cfg. It returns a *ConfigError (matching
// ErrConfig) if cfg is invalid.
func New(cfg Config) (*Generator, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	g := &Generator{
		cfg:   cfg,
		start: cfg.Start.UnixMilli(),
		end:   cfg.Start.Add(time.Duration(cfg.Days) * 24 * time.Hour).UnixMilli(),
	}
	// With V valid records, malformed share m and duplicate share d of
	// all records: M = V·m/(1-m-d), D = V·d/(1-m-d).
	valid := 1 - cfg.MalformedShare - cfg.DuplicateShare
	g.malformedRate = cfg.MalformedShare / valid
	g.duplicateRate = cfg.DuplicateShare / valid

	global := newRand(cfg.Seed, 0, streamGlobal)
	g.planCampaigns(global)
	assign := g.assign(global)
	g.plans = make([]plan, cfg.Customers)
	g.truth = make([]Truth, cfg.Customers)
	for i, a := range assign {
		pl := planner{g: g, r: newRand(cfg.Seed, i, streamPlan), start: g.start, end: g.end, span: float64(cfg.Days)}
		g.plans[i], g.truth[i] = pl.plan(i, a)
	}
	return g, nil
}

// Config returns the configuration in use, defaults applied.
func (g *Generator) Config() Config { return g.cfg }

// Range returns the event-time range of the stream: [Start, Start+Days).
func (g *Generator) Range() (from, to time.Time) {
	return time.UnixMilli(g.start).UTC(), time.UnixMilli(g.end).UTC()
}

// Truth returns the planted truth, one entry per customer in id order.
// The slice is a copy.
func (g *Generator) Truth() []Truth {
	out := make([]Truth, len(g.truth))
	for i, t := range g.truth {
		t.Expect = slices.Clone(t.Expect)
		t.Allow = slices.Clone(t.Allow)
		out[i] = t
	}
	return out
}

// assign gives each customer an archetype: exact counts by largest
// remainder, in a seeded random order.
func (g *Generator) assign(r *rand.Rand) []Archetype {
	n := g.cfg.Customers
	counts := make([]int, len(archetypes))
	rems := make([]float64, len(archetypes))
	total := 0
	for i, a := range archetypes {
		x := g.cfg.Mix[a] * float64(n)
		counts[i] = int(math.Floor(x))
		rems[i] = x - float64(counts[i])
		total += counts[i]
	}
	order := make([]int, len(archetypes))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return rems[order[i]] > rems[order[j]] })
	for k := 0; total < n; k++ {
		counts[order[k%len(order)]]++
		total++
	}
	out := make([]Archetype, 0, n)
	for i, a := range archetypes {
		for range counts[i] {
			out = append(out, a)
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// planCampaigns schedules the marketing e-mails: a newsletter every week
// on the second day at about 09:00, and a promotion every week on the
// fifth day at about 17:00 (8–9 e-mails in 30 days).
func (g *Generator) planCampaigns(r *rand.Rand) {
	for w := 0; ; w++ {
		week := g.start + int64(w)*7*msDay
		if week >= g.end {
			break
		}
		g.campaigns = append(g.campaigns,
			campaign{at: week + msDay + 9*msHour + int64(r.Float64()*float64(2*msHour))},
			campaign{at: week + 4*msDay + 17*msHour + int64(r.Float64()*float64(msHour))})
	}
	for i := range g.campaigns {
		g.campaigns[i].id = fmt.Sprintf("cmp-%04d", i+1)
	}
}

// firstCampaign returns the index of the first campaign sent at or after t.
func (g *Generator) firstCampaign(t int64) int {
	return sort.Search(len(g.campaigns), func(i int) bool { return g.campaigns[i].at >= t })
}

// Each calls fn with every record in non-decreasing event-time order
// across the three topics, and stops at the first error fn returns. Ties
// keep a fixed order, so the stream is the same on every call. fn must
// not keep r (or its Malformed bytes) after it returns: Each reuses them.
//
// Each simulates one day of all customers at a time, so it holds one
// day's events and each customer's small state, not the whole stream.
func (g *Generator) Each(fn func(r *Record) error) error {
	if g.cfg.Campaign != nil {
		return g.eachCampaign(fn, nil)
	}
	return g.eachNatural(fn)
}

// eachNatural is Each without a campaign.
func (g *Generator) eachNatural(fn func(r *Record) error) error {
	cs := make([]*customer, len(g.plans))
	for i := range cs {
		cs[i] = g.newCustomer(i)
	}
	defects := newRand(g.cfg.Seed, 0, streamDefects)
	mal := newMalformer(newRand(g.cfg.Seed, 0, streamMalforms))
	var (
		day   []event.Event
		order []dayKey
		rec   Record
	)
	for t := g.start + msDay; ; t += msDay {
		day = day[:0]
		for _, c := range cs {
			day = c.emitUntil(t, day)
		}
		// Merge the customers' ordered runs: by time, then by position
		// (customer index, then the customer's own order).
		order = order[:0]
		for i := range day {
			order = append(order, dayKey{day[i].Time, int32(i)})
		}
		slices.SortFunc(order, func(a, b dayKey) int {
			if c := cmpInt(a.t, b.t); c != 0 {
				return c
			}
			return int(a.i - b.i)
		})
		for _, k := range order {
			ev := &day[k.i]
			rec = Record{Kind: ev.Kind, Event: *ev}
			if err := fn(&rec); err != nil {
				return err
			}
			if defects.Float64() < g.duplicateRate {
				rec = Record{Kind: ev.Kind, Event: *ev, Duplicate: true}
				if err := fn(&rec); err != nil {
					return err
				}
			}
			if defects.Float64() < g.malformedRate {
				rec = Record{}
				mal.make(ev, &rec)
				if err := fn(&rec); err != nil {
					return err
				}
			}
		}
		if t >= g.end {
			return nil
		}
	}
}

type dayKey struct {
	t int64
	i int32
}

// Stats counts generated records.
type Stats struct {
	Records    int            // all records
	ByKind     map[string]int // valid, duplicate and malformed records per topic kind ("order", "email", "support")
	Malformed  int
	Duplicates int
	// Avro and JSON count the valid records and duplicates Produce
	// encoded each way.
	Avro, JSON int
	// MalformedKinds counts malformed records per MalformedKind.
	MalformedKinds map[string]int
}

func (s *Stats) add(r *Record) {
	if s.ByKind == nil {
		s.ByKind = map[string]int{}
		s.MalformedKinds = map[string]int{}
	}
	s.Records++
	s.ByKind[r.Kind.String()]++
	switch {
	case r.Malformed != nil:
		s.Malformed++
		s.MalformedKinds[r.MalformedKind]++
	case r.Duplicate:
		s.Duplicates++
	}
}

func unixMilli(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func dateMilli(y int, m time.Month, d int) int64 {
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC).UnixMilli()
}
