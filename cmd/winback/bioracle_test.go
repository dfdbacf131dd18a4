package main

import (
	"context"
	"database/sql"
	"maps"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/winback/winback/config"
	"github.com/winback/winback/gen"
	"github.com/winback/winback/internal/bioracle"
	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/event"
)

// biYear is the generator's year for the BI oracle: a full year of every
// archetype, fewer customers than `winback gen` (to keep the test short),
// ending on a fixed day so that the figures do not move with the date.
var biYear = genOptions{customers: 300, days: 365, seed: 18, encoding: "mixed", end: "2026-11-30"}

// TestBIOracle is the BI acceptance test: the generator's year put through
// kfake, srfake, the pipeline and ClickHouse 18.16, once as a backfill
// (produced before the pipeline starts, read as fast as it goes) and once
// live in 10 slices (each produced after the pipeline caught up with the
// one before). Every monthly and weekly retention and KPI view, and the
// lifetime KPIs, must equal what bioracle computes from the generated
// events alone: counts exactly, rates to 1e-9.
func TestBIOracle(t *testing.T) {
	gcfg, err := biYear.config()
	if err != nil {
		t.Fatal(err)
	}
	g, err := gen.New(gcfg)
	if err != nil {
		t.Fatal(err)
	}
	orc := bioracle.New(config.Default().ClickHouse.ActiveDays)
	var stream []genRecord
	if err := g.Each(func(r *gen.Record) error {
		gr := genRecord{kind: r.Kind, ev: r.Event, dup: r.Duplicate}
		if r.Malformed != nil {
			gr.malformed = append([]byte{}, r.Malformed...)
		} else {
			orc.Add(&r.Event)
		}
		stream = append(stream, gr)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	views := orc.Views()
	if months := len(views[0].Rows); months < 12 {
		t.Fatalf("the oracle sees %d months in the generator's year", months)
	}
	t.Logf("%d records, %d distinct valid events", len(stream), orc.Events())

	t.Run("backfill", func(t *testing.T) {
		s := newStack(t, 3)
		recs := s.encode(t, stream)
		s.produce(t, recs)
		_, reg := s.serveInProcess(t, s.cfg)
		waitCaughtUp(t, s.cfg.Kafka.Brokers, s.cfg.Kafka.Group, 3*time.Minute, inputs(s.cfg)...)
		waitConfirmed(t, reg)
		checkViews(t, openCH(t, s.cfg.ClickHouse.DSN), s.cfg.ClickHouse.Database, views)
		checkFunnel(t, s)
	})
	for _, live := range []struct {
		name string
		txn  bool
	}{{"live", true}, {"live unordered", false}} {
		t.Run(live.name, func(t *testing.T) {
			s := newStack(t, 3)
			recs := s.encode(t, stream)
			_, reg := s.serveInProcess(t, s.cfg)
			const slices = 10
			for i := range slices {
				s.produceSlice(t, recs[i*len(recs)/slices:(i+1)*len(recs)/slices], live.txn)
				waitCaughtUp(t, s.cfg.Kafka.Brokers, s.cfg.Kafka.Group, 2*time.Minute, inputs(s.cfg)...)
			}
			waitConfirmed(t, reg)
			checkViews(t, openCH(t, s.cfg.ClickHouse.DSN), s.cfg.ClickHouse.Database, views)
			checkFunnel(t, s)
		})
	}
}

// TestBIOracleCDNOW puts a real purchase history, the CDNOW panel (18
// months of 2,357 customers' orders with amounts, several on one day now
// and then; see cdnowOrders), through kfake, srfake, the pipeline and
// ClickHouse 18.16 as a backfill: every retention and KPI view must equal
// bioracle's figures from the panel's orders, and winback_funnel the
// funnel of the trigger topic. The panel has orders only, as a shop with
// no e-mail or help-desk feed yet, and is on the topics before the
// pipeline starts: the empty inputs, read to their end, must not hold
// event time back, so that the lapses fire as the orders move event time
// on, RECOVERED ones among them, as backtest finds them.
func TestBIOracleCDNOW(t *testing.T) {
	orc := bioracle.New(config.Default().ClickHouse.ActiveDays)
	var stream []genRecord
	for _, ev := range cdnowOrders(t, cdnowSample) {
		orc.Add(&ev)
		stream = append(stream, genRecord{kind: event.KindOrder, ev: ev})
	}
	views := orc.Views()
	if months := len(views[0].Rows); months < 18 {
		t.Fatalf("the oracle sees %d months in the CDNOW panel", months)
	}
	// The whole history is on the topics before winback starts, as a
	// backfill, and the e-mail and support topics are empty: they must
	// not hold event time back (for lapse.idle_timeout, 2 minutes, longer
	// than the backfill takes), or the lapses that a later order of the
	// backfill closes would never fire.
	s := newStack(t, 3)
	s.produce(t, s.encode(t, stream))
	addr, reg := s.serveInProcess(t, s.cfg)
	waitCaughtUp(t, s.cfg.Kafka.Brokers, s.cfg.Kafka.Group, 3*time.Minute, inputs(s.cfg)...)
	// Wait until the trigger count has been still for a while.
	var fired float64
	for still, deadline := 0, time.Now().Add(2*time.Minute); still < 10; time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("triggers still firing after 2 minutes (%v)", fired)
		}
		n := metricSum(t, addr, "winback_triggers_total")
		if n == fired && n > 0 {
			still++
		} else {
			fired, still = n, 0
		}
	}
	waitConfirmed(t, reg)
	t.Logf("%d orders, %v triggers", len(stream), fired)
	checkViews(t, openCH(t, s.cfg.ClickHouse.DSN), s.cfg.ClickHouse.Database, views)
	trigs := checkFunnel(t, s)

	// The same triggers as backtest finds replaying the topics, where
	// event time moves with the orders alone: every lapse on the way
	// fires, and the RECOVERED that close them.
	bt, _ := backtestJSON(t, "--kafka-brokers", s.cfg.Kafka.Brokers[0], "--registry-url", s.cfg.Registry.URL)
	got := map[string]int{}
	for _, tr := range trigs {
		if tr.Kind == string(event.TriggerRecovered) {
			got[tr.Kind]++
		} else {
			got[tr.Kind+" "+tr.Reason]++
		}
	}
	want := map[string]int{string(event.TriggerRecovered): bt.Recovered}
	for _, r := range bt.Reasons {
		if r.Fired > 0 {
			want["WINBACK "+r.Reason] = r.Fired
		}
	}
	if !maps.Equal(got, want) {
		t.Errorf("triggers by kind and reason: %v; backtest of the same topics: %v", got, want)
	}
}

// checkFunnel compares winback_funnel with the funnel computed from the
// committed trigger topic, and returns the triggers.
func checkFunnel(t *testing.T, s *stack) []bioracle.Trigger {
	t.Helper()
	src, err := sr.NewClient(sr.URLs(s.cfg.Registry.URL))
	if err != nil {
		t.Fatal(err)
	}
	codecs := map[int]*goavro.Codec{}
	var trigs []bioracle.Trigger
	recovered := 0
	for _, r := range consumeAll(t, s.cfg.Kafka.Brokers, s.cfg.Topics.Triggers) {
		var hdr sr.ConfluentHeader
		id, body, err := hdr.DecodeID(r.Value)
		if err != nil {
			t.Fatalf("trigger is not Confluent framed: %v", err)
		}
		if codecs[id] == nil {
			schema, err := src.SchemaByID(t.Context(), id)
			if err != nil {
				t.Fatal(err)
			}
			if codecs[id], err = goavro.NewCodec(schema.Schema); err != nil {
				t.Fatal(err)
			}
		}
		native, _, err := codecs[id].NativeFromBinary(body)
		if err != nil {
			t.Fatal(err)
		}
		m := native.(map[string]any)
		tr := bioracle.Trigger{ID: m["trigger_id"].(string), Kind: m["kind"].(string), Reason: m["primary_reason"].(string),
			Action: m["recommended_action"].(string), AsOf: m["as_of"].(time.Time).UnixMilli()}
		if arm, ok := m["treatment"].(map[string]any); ok {
			tr.Treatment = arm["io.winback.Treatment"].(string)
		}
		if o, ok := m["original_trigger_id"].(map[string]any); ok {
			tr.Original = o["string"].(string)
			recovered++
		}
		if rev, ok := m["evidence"].(map[string]any)["revenue"]; ok {
			tr.Revenue = rev.(float64)
		}
		trigs = append(trigs, tr)
	}
	if recovered == 0 {
		t.Fatalf("%d triggers, none RECOVERED: the funnel is not exercised", len(trigs))
	}
	v, err := bioracle.Funnel(trigs)
	if err != nil {
		t.Fatal(err)
	}
	checkViews(t, openCH(t, s.cfg.ClickHouse.DSN), s.cfg.ClickHouse.Database, []bioracle.View{v})
	return trigs
}

// genRecord is one generated record, kept past gen.Generator.Each.
type genRecord struct {
	kind      event.Kind
	ev        event.Event
	malformed []byte
	dup       bool
}

// encode turns the stream into input records as gen.Produce does:
// alternately Avro (registered in s's registry) and JSON, a duplicate as
// the bytes of the record it repeats, malformed values raw.
func (s *stack) encode(t *testing.T, stream []genRecord) []*kgo.Record {
	t.Helper()
	src, err := registryClient(&s.cfg)
	if err != nil {
		t.Fatal(err)
	}
	tp := gen.Topics{Orders: s.cfg.Topics.Orders, Email: s.cfg.Topics.Email, Support: s.cfg.Topics.Support}
	enc, err := codec.NewEventEncoder(t.Context(), src, map[event.Kind]string{
		event.KindOrder: tp.Orders + "-value", event.KindEmail: tp.Email + "-value", event.KindSupport: tp.Support + "-value",
	})
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*kgo.Record, 0, len(stream))
	var last []byte
	for n, r := range stream {
		rec := &kgo.Record{Topic: tp.For(r.kind), Key: []byte(r.ev.CustomerID)}
		switch {
		case r.malformed != nil:
			rec.Value = r.malformed
		case r.dup:
			rec.Value = last
		case n%2 == 0:
			if rec.Value, err = enc.Avro(nil, &r.ev); err != nil {
				t.Fatal(err)
			}
			last = rec.Value
		default:
			rec.Value = codec.AppendEventJSON(nil, &r.ev)
			last = rec.Value
		}
		out = append(out, rec)
	}
	return out
}

// produce writes recs to s's broker in one transaction, so that a
// read_committed consumer sees all of them, on every topic, at once.
func (s *stack) produce(t *testing.T, recs []*kgo.Record) { s.produceSlice(t, recs, true) }

// produceSlice writes recs to s's broker, in one transaction or (txn
// false) without one. Without one, the slice reaches the three topics one
// partition batch at a time, and the pipeline may fetch and apply a whole
// slice of e-mail events before the slice's orders exist on the broker
// (nothing tells it that earlier orders are coming): the orders then come
// after their customers' later days, and winback writes those days' rows
// again (lapse's lateDay), so the views must still equal the oracle.
func (s *stack) produceSlice(t *testing.T, recs []*kgo.Record, txn bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := []kgo.Opt{kgo.SeedBrokers(s.cfg.Kafka.Brokers...), kgo.ProducerLinger(5 * time.Millisecond)}
	if txn {
		opts = append(opts, kgo.TransactionalID("bioracle-"+strconv.FormatInt(time.Now().UnixNano(), 36)))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if txn {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if txn {
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
}

// checkViews compares every view with the oracle's rows.
func checkViews(t *testing.T, db *sql.DB, database string, views []bioracle.View) {
	t.Helper()
	for _, v := range views {
		if err := bioracle.Compare(stringRows(t, db, v.Query(database)), v.Rows); err != nil {
			t.Errorf("%s: %v", v.Name, err)
		}
	}
}

// stringRows returns the rows of q with every value as ClickHouse's
// TabSeparated output prints it (NULL as \N).
func stringRows(t *testing.T, db *sql.DB, q string) []bioracle.Row {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []bioracle.Row
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make(bioracle.Row, len(vals))
		for i, v := range vals {
			row[i] = cell(v)
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func cell(v any) string {
	rv := reflect.ValueOf(v)
	for rv.IsValid() && rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return `\N`
		}
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		return `\N`
	}
	switch rv.Kind() {
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(rv.Float(), 'g', -1, 64)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(rv.Uint(), 10)
	case reflect.Bool:
		if rv.Bool() {
			return "1"
		}
		return "0"
	case reflect.String:
		return rv.String()
	}
	if tm, ok := rv.Interface().(time.Time); ok {
		return tm.UTC().Format(time.DateOnly)
	}
	return "?"
}
