package gen

import (
	"container/heap"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
)

// Campaign plants a known campaign effect: customers who get a TREATED
// WINBACK trigger come back (place an order) with a higher probability
// than those in the control group (holdout), so that an analysis of the
// triggers (ClickHouse's winback_incrementality) can be checked against
// an effect known in advance.
//
// The generator produces its stream up front, but the triggers come from
// the lapse engine later. So the generator runs the same engine
// (lapse.NewEngine with the pipeline's Lapse config) in process, over the
// stream as it produces it, in event-time order: when the engine emits a
// TREATED WINBACK trigger, the generator decides (by a hash of the trigger
// id and the seed) whether the campaign wins the customer back, and if so
// plants an order some days after the trigger's as_of; the engine sees
// that order too, so whatever follows (the RECOVERED trigger, the next
// episode) is what the pipeline will see. CONTROL triggers get nothing:
// their customers come back only as the stream had planned. Which trigger
// is CONTROL is the engine's own decision (lapse.HoldoutDraw over the
// customer and the episode), so the pipeline assigns the same.
//
// The engine here is one task holding every customer. The pipeline
// computes the same triggers when it runs one partition; with several,
// each task's cohort and value figures differ a little, and a few triggers
// may differ (fire at another time, or not at all), which dilutes the
// measured effect. The acceptance test runs one partition.
type Campaign struct {
	// Effect is the probability (0 to 1) that a TREATED trigger's customer
	// orders within ReturnDays because of the campaign. The effect on the
	// N-day recovery rate is Effect × the share of triggers whose customer
	// would not have ordered within N days anyway (CampaignTruth reports
	// both).
	Effect float64
	// ReturnDays: the planted order falls uniformly between 1 day and this
	// many days after the trigger (0 means 30; at most 90).
	ReturnDays float64
	// Lapse is the signal engine's configuration, as the pipeline runs it
	// (the holdout share above all). The zero value is lapse.DefaultConfig.
	Lapse lapse.Config
}

func (c *Campaign) withDefaults() error {
	if math.IsNaN(c.Effect) || c.Effect < 0 || c.Effect > 1 {
		return &ConfigError{"Campaign.Effect", fmt.Sprintf("%v is out of range; use a probability from 0 to 1", c.Effect)}
	}
	if c.ReturnDays == 0 {
		c.ReturnDays = 30
	}
	if math.IsNaN(c.ReturnDays) || c.ReturnDays < 1 || c.ReturnDays > 90 {
		return &ConfigError{"Campaign.ReturnDays", fmt.Sprintf("%v is out of range; use 1 to 90 days", c.ReturnDays)}
	}
	if c.Lapse.Actions == nil && c.Lapse.Risk.Weights == nil && c.Lapse.Lapse.Factor == 0 {
		c.Lapse = lapse.DefaultConfig()
	}
	if err := c.Lapse.Validate(); err != nil {
		return &ConfigError{"Campaign.Lapse", err.Error()}
	}
	return nil
}

// CampaignTrigger is one WINBACK trigger of the in-process engine and what
// the campaign did about it.
type CampaignTrigger struct {
	TriggerID  string
	CustomerID string
	Reason     event.Reason // primary reason
	AsOf       int64        // Unix ms
	Treatment  event.Treatment
	// Planted: the campaign won the customer back, with an order at
	// PlantedAt (Unix ms).
	Planted   bool
	PlantedAt int64
	// NaturalWithin90d: the stream, without the planted orders, has an
	// order of the customer within 90 days after AsOf.
	NaturalWithin90d bool
}

// CampaignTruth runs the stream (as Each does) and returns every WINBACK
// trigger of the in-process engine with what the campaign did. It returns
// nil without a Campaign.
func (g *Generator) CampaignTruth() ([]CampaignTrigger, error) {
	if g.cfg.Campaign == nil {
		return nil, nil
	}
	natural := map[string][]int64{}
	var out []CampaignTrigger
	err := g.eachCampaign(func(r *Record) error {
		if r.Malformed == nil && !r.Duplicate && r.Kind == event.KindOrder && r.Event.OrderType == event.OrderPlaced &&
			!isPlanted(&r.Event) {
			natural[r.Event.CustomerID] = append(natural[r.Event.CustomerID], r.Event.Time)
		}
		return nil
	}, &out)
	if err != nil {
		return nil, err
	}
	for i := range out {
		ts := natural[out[i].CustomerID]
		j, _ := slices.BinarySearch(ts, out[i].AsOf+1)
		out[i].NaturalWithin90d = j < len(ts) && ts[j] <= out[i].AsOf+90*msDay
	}
	return out, nil
}

const plantedPrefix = "campaign-"

func isPlanted(ev *event.Event) bool {
	return len(ev.EventID) > len(plantedPrefix) && ev.EventID[:len(plantedPrefix)] == plantedPrefix
}

// campaignDraw returns two uniform draws in [0, 1) for a trigger: whether
// the campaign wins the customer back, and when.
func campaignDraw(seed int64, triggerID string) (win, when float64) {
	h := sha256.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(seed))
	h.Write([]byte("campaign\x00"))
	h.Write(b[:])
	h.Write([]byte(triggerID))
	var sum [sha256.Size]byte
	s := h.Sum(sum[:0])
	return float64(binary.BigEndian.Uint64(s[:8])>>11) / (1 << 53), float64(binary.BigEndian.Uint64(s[8:16])>>11) / (1 << 53)
}

// plantQueue is a min-heap of planted orders by time, then event id.
type plantQueue []event.Event

func (q plantQueue) Len() int { return len(q) }
func (q plantQueue) Less(i, j int) bool {
	if q[i].Time != q[j].Time {
		return q[i].Time < q[j].Time
	}
	return q[i].EventID < q[j].EventID
}
func (q plantQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *plantQueue) Push(x any)   { *q = append(*q, x.(event.Event)) }
func (q *plantQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}

// eachCampaign is Each with the campaign's orders planted; truth, if not
// nil, collects the engine's WINBACK triggers.
func (g *Generator) eachCampaign(fn func(r *Record) error, truth *[]CampaignTrigger) error {
	c := g.cfg.Campaign
	// The wall clock never moves: no input ever counts as idle, so the
	// watermark follows the slowest input, as in a backfill.
	wall := time.UnixMilli(g.start).UTC()
	eng := lapse.NewEngine(c.Lapse, 3, wall)
	var (
		queue plantQueue
		trs   []event.Trigger
		last  int64 // event time of the last record handed out
		rec   Record
	)
	handle := func() {
		for _, t := range trs {
			if t.Kind != event.TriggerWinback {
				continue
			}
			ct := CampaignTrigger{TriggerID: t.TriggerID, CustomerID: t.CustomerID, Reason: t.PrimaryReason, AsOf: t.AsOf, Treatment: t.Arm()}
			if win, when := campaignDraw(g.cfg.Seed, t.TriggerID); t.Arm() == event.TreatmentTreated && win < c.Effect {
				at := t.AsOf + int64((1+when*(c.ReturnDays-1))*float64(msDay))
				// Never behind what was handed out already: the
				// stream stays in event-time order.
				at = max(at, last)
				if at < g.end {
					ct.Planted, ct.PlantedAt = true, at
					heap.Push(&queue, event.Event{
						Kind: event.KindOrder, EventID: plantedPrefix + t.TriggerID, CustomerID: t.CustomerID,
						Time: at, OrderType: event.OrderPlaced, OrderID: "campaign-ord-" + t.TriggerID[:16],
						Amount: 25 + math.Round(when*5000)/100, Currency: "EUR", Items: 1,
					})
				}
			}
			if truth != nil {
				*truth = append(*truth, ct)
			}
		}
		trs = trs[:0]
	}
	flush := func(upTo int64) error {
		for queue.Len() > 0 && queue[0].Time <= upTo {
			ev := heap.Pop(&queue).(event.Event)
			trs, _, _ = eng.Apply(trs, lapse.SourceOrders, &ev, wall)
			handle()
			rec = Record{Kind: event.KindOrder, Event: ev}
			last = ev.Time
			if err := fn(&rec); err != nil {
				return err
			}
		}
		return nil
	}
	err := g.eachNatural(func(r *Record) error {
		if err := flush(r.Event.Time); err != nil {
			return err
		}
		if r.Malformed == nil {
			trs, _, _ = eng.Apply(trs, lapse.SourceOf(r.Kind), &r.Event, wall)
			handle()
		}
		last = max(last, r.Event.Time)
		return fn(r)
	})
	if err != nil {
		return err
	}
	return flush(g.end)
}
