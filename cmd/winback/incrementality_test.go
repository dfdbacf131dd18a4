package main

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/testenv"
)

// TestIncrementalityRecoversPlantedEffect is the holdout's acceptance
// test. The generator plants a known campaign effect (gen.Campaign: a
// customer with a TREATED trigger orders within 30 days with probability
// 0.35 on top of what it would do anyway; CONTROL triggers get nothing);
// the pipeline (one partition, half the triggers held out) writes the
// triggers and the daily snapshots to ClickHouse; and for every reason with
// at least 200 triggers, winback_incrementality_by_reason's 95 % interval
// of the 90-day incremental recovery rate must cover the effect planted on
// that rate: 0.35 × the share of those triggers whose customer was
// neither back within 90 days on its own nor past the end of the data
// (gen.CampaignTruth knows both). With no effect, the interval must cover
// 0.
func TestIncrementalityRecoversPlantedEffect(t *testing.T) {
	for _, tc := range []struct {
		name   string
		effect float64
	}{{"planted", 0.35}, {"none", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			incrementalityRun(t, tc.effect)
		})
	}
}

func incrementalityRun(t *testing.T, effect float64) {
	s := newStack(t, 1)
	cfg := s.cfg
	cfg.Lapse.Lifecycle.HoldoutShare = 0.5
	o := genOptions{customers: 2500, days: 365, seed: 5, encoding: "json", end: "2026-09-30",
		campaignEffect: effect, campaignDays: 30}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// What was planted, and on which triggers (planted, or none, but the
	// truth lists the engine's triggers either way).
	gcfg, err := o.genConfig(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	if effect == 0 {
		gcfg.Campaign = &gen.Campaign{Lapse: cfg.Lapse}
	}
	g, err := gen.New(gcfg)
	if err != nil {
		t.Fatal(err)
	}
	truth, err := g.CampaignTruth()
	if err != nil {
		t.Fatal(err)
	}
	_, end := g.Range()
	type want struct {
		n      int
		effect float64 // sum of each trigger's expected lift
		// per arm (0 treated, 1 control): triggers, natural returns
		// within 90 days, planted returns where there was none
		arm, natural, lift [2]int
	}
	planted := map[event.Reason]*want{}
	byID := map[string]gen.CampaignTrigger{}
	for _, ct := range truth {
		byID[ct.TriggerID] = ct
		w := planted[ct.Reason]
		if w == nil {
			w = &want{}
			planted[ct.Reason] = w
		}
		w.n++
		// The planted order falls 1 to 30 days after the trigger, and
		// counts only if the data has not ended by then and the customer
		// was not back within 90 days anyway.
		inData := math.Min(math.Max((float64(end.UnixMilli()-ct.AsOf)/864e5-1)/29, 0), 1)
		if !ct.NaturalWithin90d {
			w.effect += effect * inData
		}
		a := 0
		if ct.Treatment == event.TreatmentControl {
			a = 1
		}
		w.arm[a]++
		if ct.NaturalWithin90d {
			w.natural[a]++
		} else if ct.Planted {
			w.lift[a]++
		}
	}

	st, err := produceTraffic(ctx, &cfg, &o, testenv.TestLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("produced %d records; the generator's engine saw %d WINBACK triggers", st.Records, len(truth))
	s.serveInProcess(t, cfg)
	waitCaughtUp(t, cfg.Kafka.Brokers, cfg.Kafka.Group, 3*time.Minute, inputs(cfg)...)

	db := openCH(t, cfg.ClickHouse.DSN)
	// The pipeline's triggers are the generator's: same ids, same arms.
	rows, err := db.Query(fmt.Sprintf("SELECT trigger_id, treatment FROM %s.winback_trigger_outcomes", cfg.ClickHouse.Database))
	if err != nil {
		t.Fatal(err)
	}
	var total, foreseen int
	for rows.Next() {
		var id, arm string
		if err := rows.Scan(&id, &arm); err != nil {
			t.Fatal(err)
		}
		total++
		if ct, ok := byID[id]; ok {
			foreseen++
			if string(ct.Treatment) != arm {
				t.Errorf("trigger %s: %s in ClickHouse, %s in the generator's engine", id, arm, ct.Treatment)
			}
		}
	}
	rows.Close()
	if total == 0 || float64(foreseen) < 0.95*float64(total) {
		t.Fatalf("the generator foresaw %d of the pipeline's %d triggers", foreseen, total)
	}
	t.Logf("the generator foresaw %d of the pipeline's %d triggers (it saw %d)", foreseen, total, len(truth))

	rows, err = db.Query(fmt.Sprintf(`SELECT reason, treated, control, incremental_rate_90d, incremental_rate_90d_low, incremental_rate_90d_high
		FROM %s.winback_incrementality_by_reason`, cfg.ClickHouse.Database))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	judged := 0
	for rows.Next() {
		var reason string
		var treated, control uint64
		var rate, lo, hi *float64
		if err := rows.Scan(&reason, &treated, &control, &rate, &lo, &hi); err != nil {
			t.Fatal(err)
		}
		w := planted[event.Reason(reason)]
		if treated+control < 200 || w == nil || rate == nil {
			t.Logf("%-20s %4d treated %4d control: too few to judge", reason, treated, control)
			continue
		}
		judged++
		target := w.effect / float64(w.n)
		t.Logf("%-20s %4d treated %4d control: incremental 90-day recovery %+.3f [%+.3f, %+.3f], planted %.3f "+
			"(in this sample: natural returns %.3f treated, %.3f control; planted returns %.3f of treated)",
			reason, treated, control, *rate, *lo, *hi, target,
			float64(w.natural[0])/float64(max(w.arm[0], 1)), float64(w.natural[1])/float64(max(w.arm[1], 1)),
			float64(w.lift[0])/float64(max(w.arm[0], 1)))
		if target < *lo || target > *hi {
			t.Errorf("%s: the 95%% interval [%.3f, %.3f] misses the planted effect %.3f", reason, *lo, *hi, target)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if judged < 2 {
		t.Fatalf("only %d reasons with 200 triggers; the test proves little", judged)
	}
}
