package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/winback/winback/config"
	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
	"github.com/winback/winback/testenv"
)

// btGenConfig is the history every backtest test replays.
func btGenConfig() gen.Config {
	return gen.Config{Customers: 300, Days: 200, Start: time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC), Seed: 3}
}

// writeTraffic writes cfg's stream as JSON lines to a temp file.
func writeTraffic(t *testing.T, cfg gen.Config) (*gen.Generator, string) {
	t.Helper()
	g, err := gen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "traffic.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.WriteJSONL(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return g, path
}

// backtest runs the command and returns its exit code, stdout and stderr.
func backtest(t *testing.T, args ...string) (int, []byte, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), append([]string{"backtest", "--log-level", "warn"}, args...), &out, &errb)
	return code, out.Bytes(), errb.String()
}

// backtestJSON runs the command with --format json and decodes the report.
func backtestJSON(t *testing.T, args ...string) (backtestOutput, []byte) {
	t.Helper()
	code, out, errs := backtest(t, append(args, "--format", "json")...)
	if code != 0 {
		t.Fatalf("backtest %v: exit %d\n%s", args, code, errs)
	}
	var rep backtestOutput
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("backtest output is not the report: %v\n%s", err, out)
	}
	return rep, out
}

func reasonRow(t *testing.T, rep backtestOutput, r event.Reason) btReason {
	t.Helper()
	for _, x := range rep.Reasons {
		if x.Reason == string(r) {
			return x
		}
	}
	t.Fatalf("report has no %s row: %+v", r, rep.Reasons)
	return btReason{}
}

// directReplay is the independent pass: g's records (no file, no decoder)
// applied to one lapse.Engine in the generator's order, which is
// event-time order, with the wall clock at the event time; then advanced a
// day past the last event.
func directReplay(t *testing.T, g *gen.Generator) ([]event.Trigger, *lapse.Backtest) {
	t.Helper()
	cfg := config.Default().Lapse
	from, _ := g.Range()
	eng := lapse.NewEngine(cfg, 3, from)
	bt := &lapse.Backtest{}
	src := map[event.Kind]int{event.KindOrder: lapse.SourceOrders, event.KindEmail: lapse.SourceEmail, event.KindSupport: lapse.SourceSupport}
	var trigs []event.Trigger
	var last int64
	err := g.Each(func(r *gen.Record) error {
		if r.Malformed != nil {
			return nil
		}
		ev := r.Event
		if ev.Time < last {
			t.Fatalf("generator stream is not in event-time order at %s", ev.EventID)
		}
		last = ev.Time
		var dup bool
		trigs, dup, _ = eng.Apply(trigs, src[r.Kind], &ev, time.UnixMilli(ev.Time))
		if !dup {
			bt.ObserveOrder(&ev)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	trigs = eng.Advance(trigs, time.UnixMilli(last).Add(24*time.Hour))
	for i := range trigs {
		bt.ObserveTrigger(&trigs[i])
	}
	return trigs, bt
}

func TestBacktestFile(t *testing.T) {
	g, path := writeTraffic(t, btGenConfig())
	rep, first := backtestJSON(t, "--file", path)
	_, second := backtestJSON(t, "--file", path)
	if !bytes.Equal(first, second) {
		t.Fatalf("two runs over the same file differ:\n%s\n---\n%s", first, second)
	}

	trigs, direct := directReplay(t, g)
	want := direct.Report(30)
	lapseRow := reasonRow(t, rep, event.ReasonPurchaseLapse)
	if lapseRow.Fired == 0 {
		t.Fatalf("no PURCHASE_LAPSE triggers: %+v", rep.Reasons)
	}
	// The command must agree with the direct pass on every reason and
	// every figure: same triggers, same orders, same horizon.
	if len(rep.Reasons) != len(want.Reasons) {
		t.Fatalf("reasons: got %+v, want %+v", rep.Reasons, want.Reasons)
	}
	for i, w := range want.Reasons {
		if got := rep.Reasons[i]; got != newBTReason(w) {
			t.Errorf("reason %s: got %+v, want %+v", w.Reason, got, newBTReason(w))
		}
	}
	if rep.All != newBTReason(want.All) || rep.Recovered != want.Recovered {
		t.Errorf("all: got %+v (recovered %d), want %+v (recovered %d)", rep.All, rep.Recovered, newBTReason(want.All), want.Recovered)
	}
	for i, p := range rep.Priority {
		if p.Triggers != want.Priority[i] {
			t.Errorf("priority %d–%d: %d triggers, want %d", p.From, p.To, p.Triggers, want.Priority[i])
		}
	}

	// Against the planted truth: a returner's lapse trigger, raised in its
	// silence, is followed by the planted return; a lapser's, raised after
	// its last order, by nothing. The report must count them so.
	truth := map[string]gen.Truth{}
	for _, tr := range g.Truth() {
		truth[tr.CustomerID] = tr
	}
	horizon := int64(30 * 24 * time.Hour / time.Millisecond)
	returners, lapsers := 0, 0
	for _, tr := range trigs {
		if tr.Kind != event.TriggerWinback || tr.PrimaryReason != event.ReasonPurchaseLapse {
			continue
		}
		c := truth[tr.CustomerID]
		switch {
		case c.Archetype == gen.Returner && tr.AsOf > c.LapseStart && tr.AsOf < c.ReturnAt && c.ReturnAt-tr.AsOf <= horizon:
			returners++
		case c.Archetype == gen.Lapser && c.LapseStart > 0 && tr.AsOf > c.LapseStart:
			lapsers++
		}
	}
	if returners == 0 || lapsers == 0 {
		t.Fatalf("the data plants %d returner and %d lapser lapse triggers; the test needs both", returners, lapsers)
	}
	if lapseRow.Returned < returners {
		t.Errorf("PURCHASE_LAPSE returned = %d, but %d returners came back within 30 days of their trigger", lapseRow.Returned, returners)
	}
	if lapseRow.NeverReturned < lapsers {
		t.Errorf("PURCHASE_LAPSE never_returned = %d, but %d lapsers never ordered after their trigger", lapseRow.NeverReturned, lapsers)
	}
	t.Logf("PURCHASE_LAPSE fired %d, returned %d (returners %d), never returned %d (lapsers %d)",
		lapseRow.Fired, lapseRow.Returned, returners, lapseRow.NeverReturned, lapsers)

	// Totals.
	lines := bytes.Count(mustRead(t, path), []byte("\n"))
	if int(rep.Events) != lines || rep.Customers != 300 || rep.BadTotal != 0 || rep.Partitions != 1 {
		t.Errorf("totals: events %d (file has %d lines), customers %d, bad %d, partitions %d", rep.Events, lines, rep.Customers, rep.BadTotal, rep.Partitions)
	}

	// The text report carries the same figures.
	code, text, errs := backtest(t, "--file", path)
	if code != 0 {
		t.Fatalf("text: exit %d: %s", code, errs)
	}
	for _, w := range []string{"PURCHASE_LAPSE", "Priority of WINBACK triggers", "customers: 300"} {
		if !bytes.Contains(text, []byte(w)) {
			t.Errorf("text report lacks %q:\n%s", w, text)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestBacktestBadFlags(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope.jsonl")
	f := func(want string, args ...string) {
		t.Helper()
		code, _, errs := backtest(t, args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errs)
		}
		if !strings.Contains(errs, want) {
			t.Errorf("%v: message %q does not name %s", args, errs, want)
		}
	}
	f("--format", "--file", missing, "--format", "xml")
	f("--horizon-days", "--file", missing, "--horizon-days", "0")
	f("horizon-days", "--file", missing, "--horizon-days", "soon")
	f("--partitions", "--file", missing, "--partitions", "-3")
	f("--now", "--file", missing, "--now", "yesterday")
	f("--file", "--file", missing)
	f("frobnicate", "--frobnicate")
	f("unexpected argument", "--file", missing, "extra.jsonl")
}

func TestBacktestMalformedLines(t *testing.T) {
	_, path := writeTraffic(t, btGenConfig())
	clean, _ := backtestJSON(t, "--file", path)

	// Bad lines in the middle of the file: one that names no topic, a cut
	// off object, one without customer_id and one from the year 9999.
	data := mustRead(t, path)
	mid := bytes.IndexByte(data[len(data)/2:], '\n') + len(data)/2 + 1
	bad := strings.Join([]string{
		`this is not JSON`,
		`{"topic":"orders","event_id":"o-x","customer_id":"c000001","event_ti`,
		`{"topic":"email-events","event_id":"m-x","event_time":1740000000000,"type":"OPENED","campaign_id":"k"}`,
		`{"topic":"support-events","event_id":"s-x","customer_id":"c000002","event_time":253402300799000,"type":"OPENED","ticket_id":"t","category":"billing","priority":"LOW"}`,
		`{"topic":"nowhere","event_id":"o-y"}`,
	}, "\n") + "\n"
	dirty := append(append(append([]byte{}, data[:mid]...), bad...), data[mid:]...)
	dirty = append(dirty, "\nnot json at the end either"...) // no final newline
	if err := os.WriteFile(path, dirty, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, _ := backtestJSON(t, "--file", path)
	// Lines that are not JSON (the cut-off object too) cannot be routed.
	want := map[string]int{
		reasonUnroutable:                  4,
		string(decode.ReasonFieldMissing): 1,
		string(decode.ReasonTimeInFuture): 1,
	}
	if len(rep.BadRecords) != len(want) || rep.BadTotal != 6 {
		t.Errorf("bad records %v (total %d), want %v", rep.BadRecords, rep.BadTotal, want)
	}
	for k, n := range want {
		if rep.BadRecords[k] != n {
			t.Errorf("bad records %s = %d, want %d (all: %v)", k, rep.BadRecords[k], n, rep.BadRecords)
		}
	}
	// The good records around them are all applied, with the same outcome.
	if rep.Events != clean.Events || rep.Triggers != clean.Triggers ||
		reasonRow(t, rep, event.ReasonPurchaseLapse) != reasonRow(t, clean, event.ReasonPurchaseLapse) {
		t.Errorf("bad lines changed the replay: events %d vs %d, triggers %d vs %d", rep.Events, clean.Events, rep.Triggers, clean.Triggers)
	}
}

func TestBacktestTopics(t *testing.T) {
	ctx := context.Background()
	gcfg := btGenConfig()
	_, path := writeTraffic(t, gcfg)

	k := testenv.NewKafka(t, "orders", "email-events", "support-events")
	reg := testenv.NewRegistry(t)
	g, err := gen.New(gcfg)
	if err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	src, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := codec.NewEventEncoder(ctx, src, gen.DefaultTopics().Kinds())
	if err != nil {
		t.Fatal(err)
	}
	// Half Avro (through the registry), half JSON, plus malformed records.
	st, err := gen.Produce(ctx, g, cl, gen.DefaultTopics(), enc, gen.EncodingMixed, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Malformed == 0 {
		t.Fatal("the generator produced no malformed records; the test needs some")
	}

	fromTopics, _ := backtestJSON(t, "--kafka-brokers", k.Addr(), "--registry-url", reg.URL())
	// The topics have 6 partitions: the file run spreads customers the same way.
	fromFile, _ := backtestJSON(t, "--file", path, "--partitions", "6")
	if fromTopics.Partitions != 6 {
		t.Errorf("partitions %d, want the orders topic's 6", fromTopics.Partitions)
	}
	lt, lf := reasonRow(t, fromTopics, event.ReasonPurchaseLapse), reasonRow(t, fromFile, event.ReasonPurchaseLapse)
	if lt.Fired == 0 || lt != lf {
		t.Errorf("PURCHASE_LAPSE from topics %+v, from the file %+v", lt, lf)
	}
	if len(fromTopics.Reasons) != len(fromFile.Reasons) {
		t.Fatalf("reasons from topics %+v, from the file %+v", fromTopics.Reasons, fromFile.Reasons)
	}
	for i := range fromFile.Reasons {
		if fromTopics.Reasons[i] != fromFile.Reasons[i] {
			t.Errorf("reason %s from topics %+v, from the file %+v", fromFile.Reasons[i].Reason, fromTopics.Reasons[i], fromFile.Reasons[i])
		}
	}
	if fromTopics.Events != fromFile.Events || fromTopics.Customers != fromFile.Customers || fromTopics.Recovered != fromFile.Recovered {
		t.Errorf("totals from topics: events %d customers %d recovered %d; from the file: %d %d %d",
			fromTopics.Events, fromTopics.Customers, fromTopics.Recovered, fromFile.Events, fromFile.Customers, fromFile.Recovered)
	}
	// Every malformed record is counted under the reason the decoder gives it.
	want := map[string]int{}
	for kind, n := range st.MalformedKinds {
		want[string(gen.MalformedReason(kind))] += n
	}
	if fromTopics.BadTotal != st.Malformed || len(fromTopics.BadRecords) != len(want) {
		t.Errorf("bad records %v (total %d), want %v (total %d)", fromTopics.BadRecords, fromTopics.BadTotal, want, st.Malformed)
	}
	for r, n := range want {
		if fromTopics.BadRecords[r] != n {
			t.Errorf("bad records %s = %d, want %d", r, fromTopics.BadRecords[r], n)
		}
	}
	if total := fromTopics.Records["orders"] + fromTopics.Records["email-events"] + fromTopics.Records["support-events"]; total != st.Records {
		t.Errorf("read %d records, produced %d", total, st.Records)
	}

	// evaluate reads the topics as backtest does: the same report as from
	// the file spread over the same 6 tasks.
	cutoff := gcfg.Start.AddDate(0, 0, 120).Format(time.DateOnly)
	evalJSON := func(args ...string) evaluateOutput {
		t.Helper()
		return evaluateJSON(t, append(args, "--cutoff", cutoff, "--horizon-days", "60")...)
	}
	et := evalJSON("--kafka-brokers", k.Addr(), "--registry-url", reg.URL())
	ef := evalJSON("--file", path, "--partitions", "6")
	gt, _ := json.Marshal(et.Groups)
	gf, _ := json.Marshal(ef.Groups)
	if et.CustomersSeen == 0 || et.CustomersSeen != ef.CustomersSeen || string(gt) != string(gf) || et.Models != ef.Models {
		t.Errorf("evaluate from topics (%d customers, %v):\n%s\nfrom the file (%d customers, %v):\n%s", et.CustomersSeen, et.Models, gt, ef.CustomersSeen, ef.Models, gf)
	}
}

// TestBacktestTopicsTransactional reads topics written in transactions: it
// must stop at the end offsets although the last offset of each partition
// is a transaction marker, and skip the aborted records.
func TestBacktestTopicsTransactional(t *testing.T) {
	ctx := context.Background()
	gcfg := gen.Config{Customers: 60, Days: 90, Start: time.Date(2025, 2, 3, 0, 0, 0, 0, time.UTC), Seed: 8}
	_, path := writeTraffic(t, gcfg)
	g, err := gen.New(gcfg)
	if err != nil {
		t.Fatal(err)
	}
	k := testenv.NewKafka(t, "orders", "email-events", "support-events")
	reg := testenv.NewRegistry(t) // for the malformed records' unknown schema ids
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addr()), kgo.TransactionalID("backtest-test"))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	st, err := gen.Produce(ctx, g, cl, gen.DefaultTopics(), nil, gen.EncodingJSON, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	// An aborted transaction: lapse-worthy silence broken by orders that
	// never happened, on every partition.
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	_, to := g.Range()
	for i := range 60 {
		ev := event.Event{Kind: event.KindOrder, EventID: fmt.Sprintf("aborted-%d", i), CustomerID: fmt.Sprintf("c%06d", i+1),
			Time: to.Add(-time.Hour).UnixMilli(), OrderType: event.OrderPlaced, OrderID: fmt.Sprintf("x-%d", i), Amount: 1, Currency: "EUR", Items: 1,
			CSAT: event.NoScore, NPS: event.NoScore}
		cl.Produce(ctx, &kgo.Record{Topic: "orders", Key: []byte(ev.CustomerID), Value: codec.AppendEventJSON(nil, &ev)}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}

	began := time.Now()
	fromTopics, _ := backtestJSON(t, "--kafka-brokers", k.Addr(), "--registry-url", reg.URL())
	if d := time.Since(began); d >= stallTimeout {
		t.Errorf("the backtest waited %s: it did not see the end of the partitions", d)
	}
	fromFile, _ := backtestJSON(t, "--file", path, "--partitions", "6")
	read := fromTopics.Records["orders"] + fromTopics.Records["email-events"] + fromTopics.Records["support-events"]
	if read != st.Records || fromTopics.BadTotal != st.Malformed {
		t.Errorf("read %d records (%d bad), committed %d (%d malformed)", read, fromTopics.BadTotal, st.Records, st.Malformed)
	}
	if fromTopics.Events != fromFile.Events || fromTopics.All != fromFile.All {
		t.Errorf("from topics: %d events, %+v; from the file: %d events, %+v", fromTopics.Events, fromTopics.All, fromFile.Events, fromFile.All)
	}
}
