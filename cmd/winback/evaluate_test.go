package main

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/evaluate"
	"github.com/winback/winback/pipeline/event"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden.json")

// evaluateCmd runs the command and returns its exit code, stdout and
// stderr.
func evaluateCmd(t *testing.T, args ...string) (int, []byte, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"evaluate", "--log-level", "warn"}, args...), &out, &errb)
	return code, out.Bytes(), errb.String()
}

// evaluateJSON runs evaluate with --format json, fails the test unless it
// exits 0, and returns the report.
func evaluateJSON(t *testing.T, args ...string) evaluateOutput {
	t.Helper()
	code, js, stderr := evaluateCmd(t, append(args, "--format", "json")...)
	if code != 0 {
		t.Fatalf("evaluate %v: exit %d: %s", args, code, stderr)
	}
	var out evaluateOutput
	if err := json.Unmarshal(js, &out); err != nil {
		t.Fatalf("json: %v\n%s", err, js)
	}
	return out
}

func auc(t *testing.T, g *evaluate.Group, score string) float64 {
	t.Helper()
	s := g.Score(score)
	if s == nil || s.AUC == nil {
		t.Fatalf("group %s: no AUC for %s", g.Name, score)
	}
	return *s.AUC
}

// TestEvaluateGrocery runs evaluate on the grocery panel (testdata/
// grocery.jsonl, see its README): calibration the first year, holdout the
// second. Over all customers and over those with at least two orders
// winback's p_lapse must rank at least as well as recency and BG/NBD, and
// over the latter forecast better than the base rate.
func TestEvaluateGrocery(t *testing.T) {
	scores := filepath.Join(t.TempDir(), "scores.csv")
	args := []string{"--file", "testdata/grocery.jsonl", "--cutoff", "2024-12-31", "--horizon-days", "364", "--now", "2026-12-06"}
	code, text, stderr := evaluateCmd(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	t.Logf("evaluate on the grocery panel:\n%s", text)

	code, js, stderr := evaluateCmd(t, append(args, "--format", "json", "--scores", scores)...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	out := checkGolden(t, js, "testdata/evaluate_grocery.golden.json")
	if out.Version != 1 || out.CustomersSeen != 1525 || out.BadTotal != 0 || out.Cutoff != "2025-01-01T00:00:00Z" {
		t.Fatalf("header: version %d, %d customers, %d bad, cutoff %s", out.Version, out.CustomersSeen, out.BadTotal, out.Cutoff)
	}
	var rep evaluate.Report
	rep.Groups = out.Groups
	all, repeat := rep.Group("all"), rep.Group("repeat")
	if all == nil || repeat == nil || all.Customers != 1525 || repeat.Customers == 0 || repeat.Customers >= all.Customers {
		t.Fatalf("groups: %+v", out.Groups)
	}
	for _, g := range []*evaluate.Group{all, repeat} {
		w, r, b := auc(t, g, evaluate.ScoreWinback), auc(t, g, evaluate.ScoreRecency), auc(t, g, evaluate.ScoreBGNBD)
		t.Logf("%s: AUC winback %.4f, recency %.4f (winback %+.4f), BG/NBD %.4f (winback %+.4f)", g.Name, w, r, w-r, b, w-b)
		if w < r || w < b {
			t.Errorf("%s: winback AUC %.4f below recency %.4f or BG/NBD %.4f", g.Name, w, r, b)
		}
	}
	brier := repeat.Score(evaluate.ScoreWinback).Brier
	if brier == nil || *brier >= repeat.BaseRateBrier {
		t.Errorf("repeat buyers: winback Brier %v not below the base rate's %.4f", brier, repeat.BaseRateBrier)
	}
	if len(repeat.Score(evaluate.ScoreWinback).Calibration) != 10 || repeat.Score(evaluate.ScoreRecency).Brier != nil {
		t.Errorf("calibration deciles or recency Brier wrong: %+v", repeat.Scores)
	}
	if !out.Models.Winback.Valid() || !out.Models.BGNBD.Valid() {
		t.Errorf("models: %+v", out.Models)
	}

	// --scores: the header, one row per customer seen, p_lapse in [0, 1],
	// ranks 1..n, returned agreeing with the report's lapsed count.
	f, err := os.Open(scores)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != "customer_id,p_lapse,score_rank,days_since_last_order,orders,active_reasons,returned" {
		t.Fatalf("header %v", rows[0])
	}
	rows = rows[1:]
	if len(rows) != out.CustomersSeen {
		t.Fatalf("%d rows for %d customers", len(rows), out.CustomersSeen)
	}
	ranks := map[int]bool{}
	lapsed := 0
	for _, row := range rows {
		p, err := strconv.ParseFloat(row[1], 64)
		if err != nil || p < 0 || p > 1 {
			t.Fatalf("row %v: p_lapse %q", row, row[1])
		}
		k, _ := strconv.Atoi(row[2])
		ranks[k] = true
		if row[6] == "0" {
			lapsed++
		} else if row[6] != "1" {
			t.Fatalf("row %v: returned %q", row, row[6])
		}
	}
	if len(ranks) != len(rows) || !ranks[1] || !ranks[len(rows)] {
		t.Fatalf("ranks are not 1..%d", len(rows))
	}
	if lapsed != all.Lapsed {
		t.Fatalf("scores: %d not returned, report: %d lapsed", lapsed, all.Lapsed)
	}
}

// checkGolden compares evaluate's JSON report with the golden file (the
// report is documented and stable: any change shows here; go test -run
// TestEvaluate -update rewrites the file) and returns it decoded.
func checkGolden(t *testing.T, js []byte, golden string) evaluateOutput {
	t.Helper()
	if *updateGolden {
		if err := os.WriteFile(golden, js, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want, err := os.ReadFile(golden); err != nil {
		t.Error(err)
	} else if msg := jsonDiff(t, js, want); msg != "" {
		t.Errorf("the JSON report differs from %s: %s; run with -update if intended", golden, msg)
	}
	var out evaluateOutput
	if err := json.Unmarshal(js, &out); err != nil {
		t.Fatalf("json: %v\n%s", err, js)
	}
	return out
}

// TestEvaluateCDNOW runs evaluate on the CDNOW panel of the BG/NBD paper
// (pipeline/btyd/testdata/cdnow_sample.txt, see its README), a second real
// purchase history, with amounts: calibration 39 weeks, holdout 39 weeks,
// dates shifted by +28 years. Both models fitted on the calibration period
// match those published for the data; winback's p_lapse forecasts better
// than the base rate and ranks better than recency and BG/NBD, over all
// customers and over repeat buyers. With dropping out final
// (purchase_lapse.dormant_rate 0, MBG/NBD as published) it ranks all
// customers below recency.
func TestEvaluateCDNOW(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cdnow.jsonl")
	n := cdnowJSONL(t, cdnowSample, path)
	args := []string{"--file", path, "--cutoff", "2025-09-30", "--horizon-days", "273", "--now", "2026-12-06"}
	code, text, stderr := evaluateCmd(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	t.Logf("evaluate on the CDNOW panel (%d orders):\n%s", n, text)
	code, js, stderr := evaluateCmd(t, append(args, "--format", "json")...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// The report names the file; the golden one names it without the
	// temporary directory.
	js = bytes.ReplaceAll(js, []byte(path), []byte("cdnow.jsonl"))
	out := checkGolden(t, js, "testdata/evaluate_cdnow.golden.json")
	if out.CustomersSeen != 2357 || out.BadTotal != 0 {
		t.Fatalf("%d customers, %d bad records; want 2357 and 0", out.CustomersSeen, out.BadTotal)
	}
	// The published estimates (pipeline/btyd's TestFitCDNOWSample), α in
	// days; the engine sees noon purchases and a cutoff at the end of
	// 1997-09-30 (shifted), so they agree to a few percent, not digits.
	near := func(what string, got, want float64) {
		if math.Abs(got-want) > 0.03*want {
			t.Errorf("%s = %.4g, published %.4g", what, got, want)
		}
	}
	w, b := out.Models.Winback, out.Models.BGNBD
	near("winback r", w.R, 0.525)
	near("winback alpha", w.Alpha, 6.183*7)
	near("winback a", w.A, 0.891)
	near("winback b", w.B, 1.614)
	near("BG/NBD r", b.R, 0.243)
	near("BG/NBD alpha", b.Alpha, 4.414*7)
	near("BG/NBD a", b.A, 0.793)
	near("BG/NBD b", b.B, 2.426)
	var rep evaluate.Report
	rep.Groups = out.Groups
	for _, name := range []string{"all", "repeat"} {
		g := rep.Group(name)
		if g == nil {
			t.Fatalf("no group %s: %+v", name, out.Groups)
		}
		wa, ra, ba := auc(t, g, evaluate.ScoreWinback), auc(t, g, evaluate.ScoreRecency), auc(t, g, evaluate.ScoreBGNBD)
		t.Logf("%s: AUC winback %.4f, recency %.4f, BG/NBD %.4f", name, wa, ra, ba)
		if wa < ra || wa < ba {
			t.Errorf("%s: winback AUC %.4f below recency %.4f or BG/NBD %.4f", name, wa, ra, ba)
		}
		if brier := g.Score(evaluate.ScoreWinback).Brier; brier == nil || *brier >= g.BaseRateBrier {
			t.Errorf("%s: winback Brier %v not below the base rate's %.4f", name, brier, g.BaseRateBrier)
		}
	}

	// Dropping out final: a frequent buyer's long silence reads as
	// certain death, ranked above one-time buyers silent for longer, who
	// come back less often.
	final := evaluateJSON(t, append(args, "--lapse-purchase-lapse-dormant-rate", "0")...)
	rep.Groups = final.Groups
	g := rep.Group("all")
	if wa, ra := auc(t, g, evaluate.ScoreWinback), auc(t, g, evaluate.ScoreRecency); wa >= ra || final.Models.DormantRate != 0 {
		t.Errorf("dormant_rate %v: AUC %.4f, recency %.4f; want it below", final.Models.DormantRate, wa, ra)
	}

	// The report's sweep of dormant rates scores as runs at those rates
	// do: the row at 0 as the run at 0, the row at 0.01 as the default run.
	for _, c := range []struct {
		run  evaluateOutput
		rate float64
	}{{final, 0}, {out, 0.01}} {
		var row *evaluate.DormantRow
		for i := range c.run.DormantRates {
			if c.run.DormantRates[i].Rate == c.rate {
				row = &c.run.DormantRates[i]
			}
		}
		rep.Groups = c.run.Groups
		all, repeat := rep.Group("all"), rep.Group("repeat")
		if row == nil || len(c.run.DormantRates) != 5 || row.AUC == nil || row.RepeatAUC == nil ||
			math.Abs(*row.AUC-auc(t, all, evaluate.ScoreWinback)) > 1e-12 || math.Abs(row.Brier-*all.Score(evaluate.ScoreWinback).Brier) > 1e-12 ||
			math.Abs(*row.RepeatAUC-auc(t, repeat, evaluate.ScoreWinback)) > 1e-12 || math.Abs(row.RepeatBrier-*repeat.Score(evaluate.ScoreWinback).Brier) > 1e-12 {
			t.Errorf("dormant rate %v: sweep row %+v, %d rows; the run's AUC %.6f / %.6f", c.rate, row, len(c.run.DormantRates),
				auc(t, all, evaluate.ScoreWinback), auc(t, repeat, evaluate.ScoreWinback))
		}
	}
}

// TestEvaluateCDNOWFull runs evaluate on the full CDNOW panel (23,570
// customers, ten times the sample, of which the sample is a part), with
// the sample's split: the check of purchase_lapse.dormant_rate on
// customers it was not chosen on. winback's p_lapse must rank better than
// recency and BG/NBD, over all customers and over repeat buyers, and
// forecast better than BG/NBD; with dropping out final it must rank all
// customers below recency, as on the sample.
func TestEvaluateCDNOWFull(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cdnow_full.jsonl")
	n := cdnowJSONL(t, cdnowFull, path)
	args := []string{"--file", path, "--cutoff", "2025-09-30", "--horizon-days", "273", "--now", "2026-12-06"}
	run := func(extra ...string) (evaluateOutput, evaluate.Report) {
		out := evaluateJSON(t, append(args, extra...)...)
		return out, evaluate.Report{Groups: out.Groups}
	}
	out, rep := run()
	if n != 69659 || out.CustomersSeen != 23570 || out.BadTotal != 0 {
		t.Fatalf("%d orders, %d customers, %d bad; want 69659, 23570, 0", n, out.CustomersSeen, out.BadTotal)
	}
	for _, name := range []string{"all", "repeat"} {
		g := rep.Group(name)
		wa, ra, ba := auc(t, g, evaluate.ScoreWinback), auc(t, g, evaluate.ScoreRecency), auc(t, g, evaluate.ScoreBGNBD)
		wb, bb := g.Score(evaluate.ScoreWinback).Brier, g.Score(evaluate.ScoreBGNBD).Brier
		t.Logf("%s (%d customers): AUC winback %.4f, recency %.4f, BG/NBD %.4f; Brier winback %.4f, BG/NBD %.4f, base rate %.4f",
			name, g.Customers, wa, ra, ba, *wb, *bb, g.BaseRateBrier)
		if wa <= ra || wa <= ba {
			t.Errorf("%s: winback AUC %.4f not above recency %.4f and BG/NBD %.4f", name, wa, ra, ba)
		}
		if *wb >= *bb {
			t.Errorf("%s: winback Brier %.4f not below BG/NBD's %.4f", name, *wb, *bb)
		}
	}
	final, rep := run("--lapse-purchase-lapse-dormant-rate", "0")
	g := rep.Group("all")
	wa, ra := auc(t, g, evaluate.ScoreWinback), auc(t, g, evaluate.ScoreRecency)
	t.Logf("dormant_rate 0: all: AUC %.4f, recency %.4f", wa, ra)
	if wa >= ra || final.Models.DormantRate != 0 {
		t.Errorf("dormant_rate %v: AUC %.4f, recency %.4f; want it below", final.Models.DormantRate, wa, ra)
	}
}

// cdnowSample and cdnowFull are the CDNOW panel's 1/10 sample and the full
// panel (their README tells the source).
const (
	cdnowSample = "../../pipeline/btyd/testdata/cdnow_sample.txt"
	cdnowFull   = "../../pipeline/btyd/testdata/cdnow_master.txt.gz"
)

// cdnowOrders reads a CDNOW file (the sample, or the full panel gzipped)
// as PLACED orders at 12:00 UTC of their date + 28 years (which keeps
// weekdays), amount the dollar value, items the CDs, numbered per customer
// in file order, in time order (the file lists each customer's purchases
// together): by time, then customer, then number. The customer is the
// sample's id in the sample and the panel's in the full panel.
func cdnowOrders(t *testing.T, path string) []event.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		if r, err = gzip.NewReader(f); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	var orders []event.Event
	seq := map[string]int{}
	for _, line := range strings.Split(string(raw), "\n") {
		cols := strings.Fields(line)
		if len(cols) == 0 || cols[0] == "customer_id" {
			continue
		}
		// The sample: panel id, sample id, date, CDs, dollars; the
		// full panel: id, date, CDs, dollars.
		if len(cols) != 4 && len(cols) != 5 {
			t.Fatalf("line %q: %d columns", line, len(cols))
		}
		cols = cols[len(cols)-4:]
		day, err := time.Parse("20060102", cols[1])
		if err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		amount, err := strconv.ParseFloat(cols[3], 64)
		if err != nil {
			t.Fatal(err)
		}
		items, err := strconv.Atoi(cols[2])
		if err != nil {
			t.Fatal(err)
		}
		id := "cdnow-" + cols[0]
		seq[id]++
		n := fmt.Sprintf("%s-%d", id, seq[id])
		orders = append(orders, event.Event{Kind: event.KindOrder, EventID: n, CustomerID: id,
			Time: day.AddDate(28, 0, 0).Add(12 * time.Hour).UnixMilli(), OrderType: event.OrderPlaced,
			OrderID: n, Amount: amount, Currency: "USD", Items: int32(items)})
	}
	slices.SortStableFunc(orders, func(a, b event.Event) int {
		return cmp.Or(cmp.Compare(a.Time, b.Time), strings.Compare(a.CustomerID, b.CustomerID))
	})
	return orders
}

// cdnowJSONL writes the orders of the CDNOW file src as evaluate's JSON
// lines at dst and returns how many.
func cdnowJSONL(t *testing.T, src, dst string) int {
	t.Helper()
	orders := cdnowOrders(t, src)
	var out, line []byte
	for _, ev := range orders {
		line = codec.AppendEventJSON(line[:0], &ev)
		out = append(append(append(out, `{"topic":"orders",`...), line[1:]...), '\n')
	}
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return len(orders)
}

// TestEvaluateGenerator runs evaluate on generated traffic and checks the
// report is whole; it prints it for docs/signals.md.
func TestEvaluateGenerator(t *testing.T) {
	cfg := btGenConfig()
	_, path := writeTraffic(t, cfg)
	cutoff := cfg.Start.AddDate(0, 0, 120).Format(time.DateOnly)
	code, text, stderr := evaluateCmd(t, "--file", path, "--cutoff", cutoff, "--horizon-days", "79", "--now", cfg.Start.AddDate(0, 0, cfg.Days).Format(time.DateOnly))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	t.Logf("evaluate on generated traffic:\n%s", text)
	for _, want := range []string{"winback p_lapse", "days since last order", "BG/NBD", "PURCHASE_LAPSE"} {
		if !bytes.Contains(text, []byte(want)) {
			t.Errorf("report lacks %q", want)
		}
	}
}

func TestEvaluateUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--file", "testdata/grocery.jsonl"},
		{"--file", "testdata/grocery.jsonl", "--cutoff", "31.12.2024"},
		{"--file", "testdata/grocery.jsonl", "--cutoff", "2024-12-31", "--horizon-days", "0"},
		{"--file", "testdata/grocery.jsonl", "--cutoff", "2024-12-31", "--format", "xml"},
		{"--file", "testdata/grocery.jsonl", "--cutoff", "2024-12-31", "--dormant-rates", "0,0.7"},
		{"--file", "testdata/grocery.jsonl", "--cutoff", "2024-12-31", "--dormant-rates", "0.01,x"},
	} {
		if code, _, stderr := evaluateCmd(t, args...); code != 2 || !strings.Contains(stderr, "--") {
			t.Errorf("%v: exit %d, %q; want 2 naming the flag", args, code, stderr)
		}
	}
}

// TestEvaluateLapseOnEvidence: with purchase_lapse.max_p_alive set (and
// the model fitted on the calibration period) PURCHASE_LAPSE fires on the
// grocery panel fewer times, and a smaller share of those customers comes
// back on their own within 90 days, while it still reaches most of those
// who never come back.
func TestEvaluateLapseOnEvidence(t *testing.T) {
	lapseRow := func(maxPAlive string) btReason {
		t.Helper()
		out := evaluateJSON(t, "--file", "testdata/grocery.jsonl", "--cutoff", "2024-12-31", "--horizon-days", "90",
			"--now", "2026-12-06", "--lapse-purchase-lapse-max-p-alive", maxPAlive)
		for _, r := range out.Reasons {
			if r.Reason == "PURCHASE_LAPSE" {
				return r
			}
		}
		t.Fatalf("no PURCHASE_LAPSE row: %+v", out.Reasons)
		return btReason{}
	}
	off, on := lapseRow("0"), lapseRow("0.5")
	t.Logf("PURCHASE_LAPSE on the grocery panel: rule alone %d fired, %.1f%% back within 90 days, %d never back; with max_p_alive 0.5: %d, %.1f%%, %d",
		off.Fired, 100*off.ReturnedShare, off.NeverReturned, on.Fired, 100*on.ReturnedShare, on.NeverReturned)
	if on.Fired >= off.Fired || on.ReturnedShare >= off.ReturnedShare {
		t.Errorf("the evidence check did not cut false alarms: %+v vs %+v", on, off)
	}
	if float64(on.NeverReturned) < 0.9*float64(off.NeverReturned) {
		t.Errorf("the evidence check lost those who never came back: %d of %d", on.NeverReturned, off.NeverReturned)
	}
}

// jsonDiff compares two JSON documents, numbers to 1e-9 relative (fitted
// parameters may differ in the last bits across CPUs), and describes the
// first difference ("" if none).
func jsonDiff(t *testing.T, got, want []byte) string {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		return err.Error()
	}
	if err := json.Unmarshal(want, &w); err != nil {
		return err.Error()
	}
	var walk func(path string, a, b any) string
	walk = func(path string, a, b any) string {
		switch av := a.(type) {
		case map[string]any:
			bv, ok := b.(map[string]any)
			if !ok || len(av) != len(bv) {
				return path + ": keys differ"
			}
			for k := range av {
				if d := walk(path+"."+k, av[k], bv[k]); d != "" {
					return d
				}
			}
		case []any:
			bv, ok := b.([]any)
			if !ok || len(av) != len(bv) {
				return path + ": lengths differ"
			}
			for i := range av {
				if d := walk(path+"["+strconv.Itoa(i)+"]", av[i], bv[i]); d != "" {
					return d
				}
			}
		case float64:
			bv, ok := b.(float64)
			if !ok || math.Abs(av-bv) > 1e-9*max(math.Abs(av), math.Abs(bv), 1e-300) {
				return fmt.Sprintf("%s: %v, want %v", path, a, b)
			}
		default:
			if a != b {
				return fmt.Sprintf("%s: %v, want %v", path, a, b)
			}
		}
		return ""
	}
	return walk("", g, w)
}

// TestEvaluateBudget: evaluate reports what the contact budget did, and
// the arms. Customer a hits three reasons in five days (a complaint on
// Mar 1, a CSAT of 1 on Mar 3, an unsubscribe on Mar 5): the complaint goes
// out at once, the other two wait for the budget and go out on Mar 15 as
// one trigger (delayed), the unsubscribe's channel switch merged into the
// service recovery. Customer b's complaint is followed by a CSAT of 1 that
// waits, then an order: dropped. z moves event time on every input.
func TestEvaluateBudget(t *testing.T) {
	var lines []string
	at := func(day, hour int) int64 { return time.Date(2026, 3, day, hour, 0, 0, 0, time.UTC).UnixMilli() }
	n := 0
	add := func(topic, cust string, t int64, body string) {
		n++
		lines = append(lines, fmt.Sprintf(`{"topic":%q,"event_id":"e%d","customer_id":%q,"event_time":%d,%s}`, topic, n, cust, t, body))
	}
	ticket := func(typ, id, cat string, csat string) string {
		return fmt.Sprintf(`"type":%q,"ticket_id":%q,"category":%q,"priority":"NORMAL","csat":%s,"nps":null`, typ, id, cat, csat)
	}
	add("orders", "a", at(1, 8), `"type":"PLACED","order_id":"a1","amount":40,"currency":"EUR","items":1`)
	add("orders", "b", at(1, 8), `"type":"PLACED","order_id":"b1","amount":40,"currency":"EUR","items":1`)
	add("support-events", "a", at(1, 10), ticket("OPENED", "ta", "complaint", "null"))
	add("support-events", "b", at(1, 10), ticket("OPENED", "tb", "complaint", "null"))
	add("support-events", "a", at(3, 10), ticket("RESOLVED", "ta", "complaint", "1"))
	add("support-events", "b", at(3, 10), ticket("RESOLVED", "tb", "complaint", "1"))
	add("email-events", "a", at(5, 10), `"type":"UNSUBSCRIBED","campaign_id":"c1"`)
	add("orders", "b", at(6, 10), `"type":"PLACED","order_id":"b2","amount":40,"currency":"EUR","items":1`)
	for d := 1; d <= 30; d++ {
		add("orders", "z", at(d, 12), fmt.Sprintf(`"type":"PLACED","order_id":"z%d","amount":10,"currency":"EUR","items":1`, d))
		add("email-events", "z", at(d, 12), `"type":"DELIVERED","campaign_id":"cz"`)
		add("support-events", "z", at(d, 12), ticket("UPDATED", "tz", "other", "null"))
	}
	path := filepath.Join(t.TempDir(), "budget.jsonl")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(extra ...string) evaluateOutput {
		t.Helper()
		return evaluateJSON(t, append([]string{"--file", path, "--cutoff", "2026-03-28", "--horizon-days", "1", "--now", "2026-04-01"}, extra...)...)
	}
	if got, want := run("--lapse-lifecycle-holdout=false").Budget, (evaluateBudget{Held: 3, Delayed: 1, Merged: 1, Dropped: 1}); got != want {
		t.Errorf("budget %+v, want %+v", got, want)
	}
	off := run("--lapse-lifecycle-budget-days", "0", "--lapse-lifecycle-holdout=false")
	if off.Budget != (evaluateBudget{}) || off.Holdout != (evaluateHoldout{Treated: 5}) {
		t.Errorf("budget off: %+v, holdout %+v; want nothing held and 5 triggers, all treated", off.Budget, off.Holdout)
	}
	all := run("--lapse-lifecycle-holdout-share", "0.5")
	if all.Holdout.Treated+all.Holdout.Control != 3 {
		t.Errorf("holdout %+v: want 3 triggers (a twice, b once)", all.Holdout)
	}
}

// TestFileOutOfTimeOrder: a history file whose lines are not in time order
// replays (in line order, as the pipeline reads a topic), with a warning
// that says so and how to fix it; a sorted one gives none.
func TestFileOutOfTimeOrder(t *testing.T) {
	line := func(id string, day int) string {
		at := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC).AddDate(0, 0, day).UnixMilli()
		return fmt.Sprintf(`{"topic":"orders","event_id":"%s-%d","customer_id":"%s","event_time":%d,"type":"PLACED","order_id":"%s-%d","amount":10,"currency":"EUR","items":1}`, id, day, id, at, id, day)
	}
	for _, tc := range []struct {
		name  string
		lines []string
		warn  bool
	}{
		{"sorted", []string{line("a", 0), line("b", 0), line("a", 30), line("b", 40)}, false},
		{"by customer", []string{line("a", 0), line("a", 30), line("b", 0), line("b", 40)}, true},
	} {
		path := filepath.Join(t.TempDir(), "history.jsonl")
		if err := os.WriteFile(path, []byte(strings.Join(tc.lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, stderr := evaluateCmd(t, "--file", path, "--cutoff", "2025-01-20", "--horizon-days", "30", "--now", "2026-12-06")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", tc.name, code, stderr)
		}
		warned := strings.Contains(stderr, "not in time order")
		if warned != tc.warn || (warned && !strings.Contains(stderr, `"lines_out_of_order":1,`)) {
			t.Errorf("%s: warned %v, want %v (with one event behind):\n%s", tc.name, warned, tc.warn, stderr)
		}
	}
}
