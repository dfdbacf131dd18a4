package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/winback/winback/config"
	"github.com/winback/winback/pipeline/evaluate"
	"github.com/winback/winback/pipeline/lapse"
	"github.com/winback/winback/pipeline/replay"
	"github.com/winback/winback/pipeline/window"
)

// winback evaluate measures how well winback ranks and forecasts who comes
// back. It reads history like backtest (a JSON-lines file or the input
// topics, with backtest's reader, replayed by pipeline/replay), applies it up to the cutoff,
// fits winback's purchase model and the BG/NBD baseline on every customer
// as of the cutoff, scores every customer, and then reads what the history
// shows after the cutoff: who placed an order within the horizon. The
// report (pipeline/evaluate) sets winback's p_lapse beside "days since the
// last order" and BG/NBD, for every customer with an order and for those
// with at least two; it also reports, per reason, the WINBACK triggers
// fired before the cutoff and the share whose customer ordered within the
// horizon after the trigger on their own.

// evaluateOptions are evaluate's own flags.
type evaluateOptions struct {
	file        string
	partitions  int
	cutoff      string
	horizonDays int
	format      string
	scores      string
	now         string
	rates       string
	dormant     []float64 // rates, parsed by check
}

func (o *evaluateOptions) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.file, "file", "", "replay the JSON-lines file `PATH` (as backtest --file) instead of the input topics")
	fs.IntVar(&o.partitions, "partitions", 0, "number of tasks customers are spread over (default: the orders topic's partition count, or 1 for a file)")
	fs.StringVar(&o.cutoff, "cutoff", "", "score every customer as of this time: YYYY-MM-DD (the end of that day, UTC) or RFC 3339; required")
	fs.IntVar(&o.horizonDays, "horizon-days", 90, "a customer who orders within this many days after the cutoff has returned; p_lapse is the probability of no order within it")
	fs.StringVar(&o.format, "format", "text", "report format: text or json")
	fs.StringVar(&o.scores, "scores", "", "also write one CSV row per customer to `PATH`: customer_id,p_lapse,score_rank,days_since_last_order,orders,active_reasons,returned")
	fs.StringVar(&o.now, "now", "", "clock the decoder checks event_time against, as for backtest (default: the current time)")
	fs.StringVar(&o.rates, "dormant-rates", "0,0.005,0.01,0.02,0.05", "also score p_lapse at each of these comma-separated purchase_lapse.dormant_rate values (0 to 0.5), with the model fitted on the calibration period, to tell which suits this history; empty: none")
}

// check validates the flags and returns the cutoff (Unix ms).
func (o *evaluateOptions) check() (int64, *backtestOptions, time.Time, error) {
	bo := &backtestOptions{file: o.file, partitions: o.partitions, horizonDays: o.horizonDays, format: o.format, now: o.now}
	now, err := bo.check()
	if err != nil {
		return 0, nil, now, err
	}
	if o.cutoff == "" {
		return 0, nil, now, fmt.Errorf("--cutoff: required, e.g. --cutoff 2025-09-30")
	}
	o.dormant = nil
	for f := range strings.SplitSeq(o.rates, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		k, err := strconv.ParseFloat(f, 64)
		if err != nil || !(k >= 0 && k <= 0.5) {
			return 0, nil, now, fmt.Errorf("--dormant-rates: %q is not a rate from 0 to 0.5, e.g. --dormant-rates 0,0.01,0.02", f)
		}
		o.dormant = append(o.dormant, k)
	}
	if t, err := time.Parse(time.DateOnly, o.cutoff); err == nil {
		return t.AddDate(0, 0, 1).UnixMilli(), bo, now, nil
	}
	t, err := time.Parse(time.RFC3339Nano, o.cutoff)
	if err != nil {
		return 0, nil, now, fmt.Errorf("--cutoff: %q is neither YYYY-MM-DD nor RFC 3339", o.cutoff)
	}
	return t.UnixMilli(), bo, now, nil
}

func cmdEvaluate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := config.Default()
	fs := newFlagSet("evaluate", "Replay history up to --cutoff through the signal engine, score every customer as of\nthe cutoff, then read who ordered within --horizon-days after it: AUC, precision\nand lift at the top 10 and 20 %, Brier score and calibration of winback's p_lapse,\nbeside recency (days since the last order) and a BG/NBD model fitted on the same\nperiod; and per reason, the triggers fired before the cutoff and the share of\ncustomers who came back on their own.", stderr)
	var o evaluateOptions
	o.bind(fs)
	if err := loadConfig(fs, args, &cfg); err != nil {
		return err
	}
	if err := noArgs(fs, "give the file with --file"); err != nil {
		return err
	}
	cutoff, bo, now, err := o.check()
	if err != nil {
		return usageError{err}
	}
	log := newLogger(&cfg, stderr)
	tuneRuntime(cfg.Runtime, log, memlimit.FromCgroup)
	began := time.Now()
	in, err := readInput(ctx, &cfg, bo, now, log)
	if err != nil {
		return err
	}
	out, scored, err := evaluateInput(ctx, in, cfg.Lapse, cutoff, o.horizonDays)
	if err != nil {
		return err
	}
	out.DormantRates = evaluate.DormantRates(scored, out.Models, float64(o.horizonDays), o.dormant)
	log.Info("evaluate: done", "customers", out.CustomersSeen, "took", time.Since(began).Round(time.Millisecond))
	if o.scores != "" {
		f, err := os.Create(o.scores)
		if err != nil {
			return usageError{fmt.Errorf("--scores: %w", err)}
		}
		if err := evaluate.WriteScores(f, scored); err != nil {
			f.Close()
			return fmt.Errorf("--scores: %w", err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("--scores: %w", err)
		}
	}
	if o.format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	_, err = io.WriteString(stdout, out.text())
	return err
}

// evaluateOutput is the report, as --format json prints it (see
// docs/signals.md, "Measuring the signals"). Fields are only ever added.
type evaluateOutput struct {
	Version     int    `json:"version"` // 1
	Source      string `json:"source"`
	Partitions  int    `json:"partitions"`
	Cutoff      string `json:"cutoff"`
	HorizonDays int    `json:"horizon_days"`
	// From and To bound the event times of the valid events (both sides of
	// the cutoff).
	From       string         `json:"from"`
	To         string         `json:"to"`
	Records    map[string]int `json:"records"`
	BadRecords map[string]int `json:"bad_records"`
	BadTotal   int            `json:"bad_records_total"`
	// Events counts the events applied before the cutoff.
	Events uint64 `json:"events_before_cutoff"`
	// CustomersSeen counts customers with any event before the cutoff
	// (one --scores row each).
	CustomersSeen int              `json:"customers_seen"`
	Models        evaluate.Models  `json:"models"`
	Groups        []evaluate.Group `json:"groups"`
	// Reasons: WINBACK triggers fired before the cutoff, by primary
	// reason; "returned" counts those whose customer ordered within the
	// horizon after the trigger's as_of.
	Reasons []btReason `json:"reasons"`
	All     btReason   `json:"all"`
	// Budget is what the contact budget (lapse.lifecycle.
	// max_triggers_per_customer per budget_days) did before the cutoff,
	// Holdout the triggers' arms (lapse.Stats).
	Budget  evaluateBudget  `json:"contact_budget"`
	Holdout evaluateHoldout `json:"holdout"`
	// DormantRates: p_lapse's AUC and Brier score at other
	// purchase_lapse.dormant_rate values (--dormant-rates).
	DormantRates []evaluate.DormantRow `json:"dormant_rates"`

	report evaluate.Report
	bt     lapse.BacktestReport
}

// evaluateInput replays in up to cutoff, scores every customer and builds
// the report.
func evaluateInput(ctx context.Context, in *replay.Input, cfg lapse.Config, cutoff int64, horizonDays int) (*evaluateOutput, []evaluate.Customer, error) {
	results, err := in.Replay(ctx, cfg, cutoff, nil)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Lapse.MaxPAlive > 0 && cfg.Model.RefitDays == 0 {
		// PURCHASE_LAPSE reads the purchase model and the engines do not
		// refit it (model.refit_days 0): replay again with the parameters
		// fitted on the calibration period, as a pipeline that refits
		// would have them, so that its triggers are judged as such. With
		// refits on, the replay has the engines' own refits, as the
		// pipeline does.
		var engs []*lapse.Engine
		for i := range results {
			if results[i].Engine != nil {
				engs = append(engs, results[i].Engine)
			}
		}
		_, m, err := evaluate.ScoreEngines(engs, cutoff, float64(horizonDays), func(string) bool { return false })
		if err != nil {
			return nil, nil, err
		}
		if results, err = in.Replay(ctx, cfg, cutoff, &m.Winback); err != nil {
			return nil, nil, err
		}
	}
	horizon := int64(horizonDays) * window.MsPerDay
	returned := map[string]bool{}
	var engs []*lapse.Engine
	var back lapse.Backtest
	out := &evaluateOutput{
		Version: 1, Source: in.Source, Partitions: in.Parts, Cutoff: isoMs(cutoff), HorizonDays: horizonDays,
		Records: in.Records, BadRecords: in.Bad, BadTotal: in.BadTotal(),
	}
	if in.Events > 0 {
		out.From, out.To = isoMs(in.First), isoMs(in.Last)
	}
	for i := range results {
		r := &results[i]
		if r.Engine == nil {
			continue
		}
		engs = append(engs, r.Engine)
		out.Events += r.Stats.Events
		out.CustomersSeen += r.Stats.Customers
		out.Budget.Held += r.Stats.BudgetHeld
		out.Budget.Delayed += r.Stats.BudgetDelayed
		out.Budget.Merged += r.Stats.BudgetMerged
		out.Budget.Dropped += r.Stats.BudgetDropped
		out.Holdout.Control += r.Stats.Control
		for _, n := range r.Stats.Triggers {
			out.Holdout.Treated += n
		}
		for _, ev := range r.After {
			if ev.Time < cutoff+horizon {
				returned[ev.CustomerID] = true
			}
			back.ObserveOrder(ev)
		}
		for _, ev := range r.Orders {
			back.ObserveOrder(ev)
		}
		for j := range r.Triggers {
			if t := &r.Triggers[j]; t.AsOf < cutoff {
				back.ObserveTrigger(t)
			}
		}
	}
	scored, models, err := evaluate.ScoreEngines(engs, cutoff, float64(horizonDays), func(id string) bool { return returned[id] })
	if err != nil {
		return nil, nil, err
	}
	out.Models = models
	out.report = evaluate.Build(scored)
	out.Groups = out.report.Groups
	out.bt = back.Report(horizonDays)
	out.Reasons = []btReason{}
	for _, r := range out.bt.Reasons {
		out.Reasons = append(out.Reasons, newBTReason(r))
	}
	out.All = newBTReason(out.bt.All)
	out.Holdout.Treated -= out.Holdout.Control
	return out, scored, nil
}

// evaluateBudget counts the contact budget's work: reasons it held back,
// triggers sent late because of it (delayed), triggers it folded into a
// stronger one sent at the same time (merged: their reason went out in
// that trigger), and held reasons dropped because the customer ordered or
// the reason stopped holding.
type evaluateBudget struct {
	Held    uint64 `json:"held_reasons"`
	Delayed uint64 `json:"delayed_triggers"`
	Merged  uint64 `json:"merged_triggers"`
	Dropped uint64 `json:"dropped_reasons"`
}

// evaluateHoldout counts WINBACK triggers by arm.
type evaluateHoldout struct {
	Treated uint64 `json:"treated"`
	Control uint64 `json:"control"`
}

func (o *evaluateOutput) text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Input: %s, %d partitions, events %s to %s\n", o.Source, o.Partitions, o.From, o.To)
	fmt.Fprintf(&b, "Cutoff %s, horizon %d days; %d events applied before the cutoff, %d customers seen; bad records: %d\n",
		o.Cutoff, o.HorizonDays, o.Events, o.CustomersSeen, o.BadTotal)
	fmt.Fprintf(&b, "Models fitted on the calibration period: winback %v (dormant rate %g); baseline %v\n\n", o.Models.Winback, o.Models.DormantRate, o.Models.BGNBD)
	b.WriteString(o.report.String())
	fmt.Fprintf(&b, "WINBACK triggers fired before the cutoff, and customers who ordered within %d days after the trigger on their own:\n", o.HorizonDays)
	rep := o.bt
	s := rep.String()
	if i := strings.Index(s, "\n\n"); i >= 0 {
		s = s[i+2:] // the table, without backtest's title line
	}
	if i := strings.Index(s, "\nRECOVERED"); i >= 0 {
		s = s[:i+1]
	}
	b.WriteString(s)
	fmt.Fprintf(&b, "Contact budget before the cutoff: %d triggers delayed, %d merged into a stronger one; %d reasons held back, %d dropped (the customer ordered, or the reason stopped holding)\n",
		o.Budget.Delayed, o.Budget.Merged, o.Budget.Held, o.Budget.Dropped)
	fmt.Fprintf(&b, "Holdout: %d WINBACK triggers treated, %d control\n", o.Holdout.Treated, o.Holdout.Control)
	if len(o.DormantRates) > 0 {
		fmt.Fprintf(&b, "\np_lapse at other purchase_lapse.dormant_rate values (the model fitted above; this run's rate is %g):\n", o.Models.DormantRate)
		b.WriteString(evaluate.DormantTable(o.DormantRates))
	}
	return b.String()
}
