package gen

import (
	"errors"
	"math"
	"testing"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
)

func campaignConfig(effect, share float64) Config {
	lc := lapse.DefaultConfig()
	lc.Lifecycle.HoldoutShare = share
	return Config{Customers: 300, Days: 240, Seed: 7, Campaign: &Campaign{Effect: effect, Lapse: lc}}
}

func records(t *testing.T, cfg Config) []Record {
	t.Helper()
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out []Record
	if err := g.Each(func(r *Record) error {
		c := *r
		c.Malformed = append([]byte(nil), r.Malformed...)
		out = append(out, c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCampaignNoEffect: with no effect the stream is the natural one,
// record for record, and the truth still lists the engine's triggers.
func TestCampaignNoEffect(t *testing.T) {
	cfg := campaignConfig(0, 0.5)
	plain := cfg
	plain.Campaign = nil
	a, b := records(t, cfg), records(t, plain)
	if len(a) != len(b) {
		t.Fatalf("%d records with a zero campaign, %d without", len(a), len(b))
	}
	for i := range a {
		if a[i].Event != b[i].Event || a[i].Duplicate != b[i].Duplicate || string(a[i].Malformed) != string(b[i].Malformed) {
			t.Fatalf("record %d differs: %+v vs %+v", i, a[i].Event, b[i].Event)
		}
	}
	g, _ := New(cfg)
	truth, err := g.CampaignTruth()
	if err != nil || len(truth) < 50 {
		t.Fatalf("%d triggers (%v)", len(truth), err)
	}
	for _, ct := range truth {
		if ct.Planted {
			t.Fatalf("%s planted with no effect", ct.TriggerID)
		}
	}
}

// TestCampaignPlants: with an effect, only TREATED triggers get a planted
// order, about Effect of them, each after its trigger and within
// ReturnDays; the planted orders are in the stream, in event-time order;
// and a second run gives the same stream and truth.
func TestCampaignPlants(t *testing.T) {
	cfg := campaignConfig(0.6, 0.5)
	g, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	truth, err := g.CampaignTruth()
	if err != nil {
		t.Fatal(err)
	}
	var treated, control, planted, eligible, plantedEligible int
	plantedAt := map[string]int64{}
	_, end := g.Range()
	for _, ct := range truth {
		switch ct.Treatment {
		case event.TreatmentControl:
			control++
			if ct.Planted {
				t.Fatalf("control trigger %s planted", ct.TriggerID)
			}
		case event.TreatmentTreated:
			treated++
			// A trigger 31 days or more before the end has its whole
			// return window in the stream: planted with probability
			// Effect.
			if ct.AsOf+31*msDay < end.UnixMilli() {
				eligible++
				if ct.Planted {
					plantedEligible++
				}
			}
		default:
			t.Fatalf("treatment %q", ct.Treatment)
		}
		if ct.Planted {
			planted++
			if ct.PlantedAt <= ct.AsOf || ct.PlantedAt > ct.AsOf+31*msDay {
				t.Fatalf("%s: planted at %d, trigger at %d", ct.TriggerID, ct.PlantedAt, ct.AsOf)
			}
			plantedAt[plantedPrefix+ct.TriggerID] = ct.PlantedAt
		}
	}
	if treated < 50 || control < 50 {
		t.Fatalf("%d treated, %d control at share 0.5", treated, control)
	}
	// Planted with probability 0.6 where the return window fits in the
	// stream (±3 standard errors), and never more often elsewhere.
	if eligible < 40 {
		t.Fatalf("only %d treated triggers with their return window in the stream", eligible)
	}
	se := math.Sqrt(0.6 * 0.4 / float64(eligible))
	if share := float64(plantedEligible) / float64(eligible); math.Abs(share-0.6) > 3*se {
		t.Fatalf("%d of %d treated triggers with room planted (%.3f), want 0.6 ± %.3f", plantedEligible, eligible, share, 3*se)
	}
	if planted > treated {
		t.Fatalf("%d planted of %d treated", planted, treated)
	}
	recs := records(t, cfg)
	seen, prev := 0, int64(0)
	for _, r := range recs {
		if r.Event.Time < prev && r.Malformed == nil {
			t.Fatalf("stream out of order at %s", r.Event.EventID)
		}
		prev = max(prev, r.Event.Time)
		if isPlanted(&r.Event) {
			seen++
			if at, ok := plantedAt[r.Event.EventID]; !ok || at != r.Event.Time || r.Event.OrderType != event.OrderPlaced {
				t.Fatalf("planted %s at %d, truth %d (%v)", r.Event.EventID, r.Event.Time, at, ok)
			}
		}
	}
	if seen != planted {
		t.Fatalf("%d planted orders in the stream, truth says %d", seen, planted)
	}
	again := records(t, cfg)
	if len(again) != len(recs) {
		t.Fatal("second run differs")
	}
	for i := range recs {
		if recs[i].Event != again[i].Event {
			t.Fatalf("second run differs at %d", i)
		}
	}
}

func TestCampaignConfig(t *testing.T) {
	for _, c := range []Campaign{{Effect: -0.1}, {Effect: 1.5}, {Effect: 0.1, ReturnDays: 200}} {
		if _, err := New(Config{Customers: 10, Campaign: &c}); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}
