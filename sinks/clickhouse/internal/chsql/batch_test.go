package chsql

import (
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/winback/winback/pipeline/event"
)

var t0 = time.Date(2024, 1, 5, 10, 0, 0, 0, time.UTC)

func agg(id string, version uint64, at time.Time) *event.Aggregate {
	return &event.Aggregate{CustomerID: id, Version: version, AsOf: at.UnixMilli(), LastCSAT: event.NoScore, LastNPS: event.NoScore,
		ActiveReasons: []event.Reason{event.ReasonPurchaseLapse}}
}

// versions lists the batch's customer_aggregates rows as id@version/day.
func versions(b *Batch) (aggs []string) {
	for _, t := range b.Build(t0, false) {
		if t.Name != TableAggregates {
			continue
		}
		col := func(name string) any {
			return t.Columns[slices.IndexFunc(t.Columns, func(c Column) bool { return c.Name == name })].Values
		}
		for i := 0; i < t.Rows; i++ {
			v := col("version").([]uint64)[i]
			day := col("as_of").([]time.Time)[i].Format("02")
			aggs = append(aggs, col("customer_id").([]string)[i]+"@"+string(rune('0'+v))+"/"+day)
		}
	}
	return aggs
}

// Within a batch the latest version of each customer-day is kept: the
// customer_daily_feed view makes a day's snapshot of each row.
func TestBatchLatestVersionWins(t *testing.T) {
	b := NewBatch(0)
	b.AddAggregate(agg("b", 1, t0))
	b.AddAggregate(agg("a", 3, t0.Add(24*time.Hour)))
	b.AddAggregate(agg("a", 1, t0))
	b.AddAggregate(agg("a", 2, t0.Add(time.Hour)))
	b.AddAggregate(agg("a", 1, t0))
	if want, got := []string{"a@2/05", "a@3/06", "b@1/05"}, versions(b); !slices.Equal(got, want) {
		t.Errorf("aggregates %v, want %v", got, want)
	}
	if b.Len() != 3 || b.TableLen(TableAggregates) != 3 {
		t.Errorf("Len %d, aggregates %d", b.Len(), b.TableLen(TableAggregates))
	}
}

func TestBatchCopies(t *testing.T) {
	b := NewBatch(0)
	a := agg("a", 1, t0)
	b.AddAggregate(a)
	a.ActiveReasons[0] = event.ReasonEmailBounced
	a.Version = 9
	tr := &event.Trigger{TriggerID: "t", Evidence: map[string]float64{"x": 1}, Reasons: []event.Reason{event.ReasonPurchaseLapse}}
	b.AddTrigger(tr)
	tr.Evidence["x"] = 2
	tables := b.Build(t0, false)
	if got := tables[0].Columns[1].Values.([]uint64)[0]; got != 1 {
		t.Errorf("version %d: the batch kept the caller's struct", got)
	}
	if got := tables[0].Columns[slices.IndexFunc(tables[0].Columns, func(c Column) bool { return c.Name == "active_reasons" })].Values.([][]string)[0][0]; got != "PURCHASE_LAPSE" {
		t.Errorf("active_reasons %s: the batch kept the caller's slice", got)
	}
	if got := tables[1].Columns[10].Values.([][]float64)[0][0]; got != 1 {
		t.Errorf("evidence %v: the batch kept the caller's map", got)
	}
}

func TestBatchMerge(t *testing.T) {
	older := NewBatch(0)
	older.AddAggregate(agg("a", 2, t0))
	older.AddAggregate(agg("b", 5, t0))
	older.AddTrigger(&event.Trigger{TriggerID: "t1", EmittedAt: 10, CustomerID: "old"})
	older.AddTrigger(&event.Trigger{TriggerID: "t2", EmittedAt: 10, CustomerID: "old"})
	newer := NewBatch(0)
	newer.AddAggregate(agg("a", 3, t0))
	newer.AddAggregate(agg("b", 4, t0)) // older than what failed: the failed row wins
	newer.AddTrigger(&event.Trigger{TriggerID: "t1", EmittedAt: 10, CustomerID: "new"})
	newer.Merge(older)
	aggs := versions(newer)
	if want := []string{"a@3/05", "b@5/05"}; !slices.Equal(aggs, want) {
		t.Errorf("merged %v, want %v", aggs, want)
	}
	tables := newer.Build(t0, false)
	if got := tables[len(tables)-1].Columns[1].Values.([]string); !slices.Equal(got, []string{"new", "old"}) {
		t.Errorf("triggers' customers %v: on a tie the newer batch wins", got)
	}
	newer.Drop(TableAggregates)
	if newer.TableLen(TableAggregates) != 0 || newer.TableLen(TableTriggers) == 0 {
		t.Error("Drop dropped the wrong table")
	}
}

// TestBatchMergeEvictions: merged into a newer batch, an older batch's
// rows of a customer it evicted itself stay, whatever the map order; a
// customer the newer batch evicted loses the older rows.
func TestBatchMergeEvictions(t *testing.T) {
	for range 20 { // map order varies between runs of the loop
		older := NewBatch(0)
		for d := range 6 {
			older.AddAggregate(agg("x", uint64(d+1), t0.AddDate(0, 0, d)))
		}
		gone := agg("x", 9, t0.AddDate(0, 0, 6))
		gone.Evicted = true
		older.AddAggregate(gone)
		older.AddAggregate(agg("y", 1, t0))
		newer := NewBatch(0)
		y := agg("y", 2, t0.AddDate(0, 0, 1))
		y.Evicted = true
		newer.AddAggregate(y)
		newer.Merge(older)
		want := []string{"x@1/05", "x@2/06", "x@3/07", "x@4/08", "x@5/09", "x@6/10", "x@9/11", "y@2/06"}
		if got := versions(newer); !slices.Equal(got, want) {
			t.Fatalf("merged %v, want %v", got, want)
		}
	}
}

func TestDeadLetterCaps(t *testing.T) {
	b := NewBatch(8)
	d := &event.DeadLetter{Topic: "o", Sample: []byte("0123456789"), Detail: strings.Repeat("é", MaxDetailBytes), Size: 10}
	b.AddDeadLetter(d)
	d.Sample[0] = 'X'
	tb := b.Build(t0, false)[0]
	col := func(name string) any {
		return tb.Columns[slices.IndexFunc(tb.Columns, func(c Column) bool { return c.Name == name })].Values
	}
	if got := col("sample").([]string)[0]; got != "01234567" {
		t.Errorf("sample %q", got)
	}
	detail := col("detail").([]string)[0]
	if len(detail) > MaxDetailBytes || len(detail) < MaxDetailBytes-1 || !strings.HasSuffix(detail, "é") {
		t.Errorf("detail cut to %d bytes, or inside a rune", len(detail))
	}
}

func TestTokens(t *testing.T) {
	build := func(now time.Time, mutate func(*event.Aggregate)) []*Table {
		b := NewBatch(0)
		for i, id := range []string{"c", "a", "b"} {
			a := agg(id, uint64(i+1), t0.Add(time.Duration(i)*time.Hour))
			if mutate != nil && id == "b" {
				mutate(a)
			}
			b.AddAggregate(a)
		}
		b.AddTrigger(&event.Trigger{TriggerID: "t", CustomerID: "a", EmittedAt: t0.UnixMilli()})
		return b.Build(now, true)
	}
	base := build(t0, nil)
	if base[0].Token == "" || base[0].Token == base[1].Token {
		t.Fatalf("tokens %q %q: want one per table", base[0].Token, base[1].Token)
	}
	if later := build(t0.Add(time.Hour), nil); later[0].Token != base[0].Token || later[1].Token != base[1].Token {
		t.Error("the token depends on updated_at")
	}
	for name, mutate := range map[string]func(*event.Aggregate){
		"spend":   func(a *event.Aggregate) { a.SpendTotal = 0.5 },
		"csat":    func(a *event.Aggregate) { a.LastCSAT = 0 },
		"reasons": func(a *event.Aggregate) { a.ActiveReasons = nil },
		"tier":    func(a *event.Aggregate) { a.ValueTier = event.TierHigh },
	} {
		if got := build(t0, mutate); got[0].Token == base[0].Token {
			t.Errorf("%s changed, token did not", name)
		}
	}
	if NewBatch(0).Build(t0, true) != nil {
		t.Error("an empty batch built tables")
	}
	b := NewBatch(0)
	b.AddAggregate(agg("a", 1, t0))
	if b.Build(t0, false)[0].Token != "" {
		t.Error("token without asking")
	}
}

func TestDayOf(t *testing.T) {
	for ms, want := range map[int64]int64{0: 0, 1: 0, msPerDay - 1: 0, msPerDay: 1, -1: -1, -msPerDay: -1, -msPerDay - 1: -2} {
		if got := dayOf(ms); got != want {
			t.Errorf("dayOf(%d) = %d, want %d", ms, got, want)
		}
	}
}

// An evicted row (version 0) marks its customer for the delete before the
// insert, also when a customer seen again later in the batch replaced it;
// a failed batch merged behind one that evicts loses its rows of the
// customer; Forget drops an erased customer's rows of every table.
func TestBatchEvictedAndForget(t *testing.T) {
	evicted := func(id string, at time.Time) *event.Aggregate {
		a := agg(id, 0, at)
		a.Evicted = true
		return a
	}
	b := NewBatch(0)
	b.AddAggregate(evicted("a", t0))
	b.AddAggregate(agg("a", 1, t0.Add(time.Hour))) // seen again, same day
	b.AddAggregate(evicted("c", t0))
	b.AddAggregate(agg("b", 4, t0))
	if got, want := b.Evicted(), []string{"a", "c"}; !slices.Equal(got, want) {
		t.Errorf("Evicted %v, want %v", got, want)
	}
	if got, want := versions(b), []string{"a@1/05", "b@4/05", "c@0/05"}; !slices.Equal(got, want) {
		t.Errorf("aggregates %v, want %v", got, want)
	}

	older := NewBatch(0)
	older.AddAggregate(agg("c", 7, t0.Add(-24*time.Hour)))
	older.AddAggregate(agg("d", 2, t0))
	older.AddAggregate(evicted("e", t0))
	b.Merge(older)
	if got, want := versions(b), []string{"a@1/05", "b@4/05", "c@0/05", "d@2/05", "e@0/05"}; !slices.Equal(got, want) {
		t.Errorf("after Merge %v, want %v (c's older row dropped)", got, want)
	}
	if got, want := b.Evicted(), []string{"a", "c", "e"}; !slices.Equal(got, want) {
		t.Errorf("Evicted after Merge %v, want %v", got, want)
	}

	b.AddTrigger(&event.Trigger{TriggerID: "t1", CustomerID: "b"})
	b.AddTrigger(&event.Trigger{TriggerID: "t2", CustomerID: "d"})
	b.AddDeadLetter(&event.DeadLetter{Topic: "orders", Offset: 1, Key: []byte("b")})
	b.AddDeadLetter(&event.DeadLetter{Topic: "orders", Offset: 2, Key: []byte("x")})
	b.Forget(map[string]bool{"b": true, "c": true})
	if got, want := versions(b), []string{"a@1/05", "d@2/05", "e@0/05"}; !slices.Equal(got, want) {
		t.Errorf("after Forget %v, want %v", got, want)
	}
	if b.TableLen(TableTriggers) != 1 || b.TableLen(TableDeadLetters) != 1 {
		t.Errorf("after Forget: %d triggers, %d dead letters; want 1 and 1", b.TableLen(TableTriggers), b.TableLen(TableDeadLetters))
	}
	b.Drop(TableAggregates)
	if len(b.Evicted()) != 0 {
		t.Errorf("Evicted after Drop: %v", b.Evicted())
	}
}

// dateTime is time.UnixMilli(ms).UTC().Truncate(time.Second), computed
// without Truncate: the same time value, to the bit, on either side of
// 1970 and of a second.
func TestDateTimeIsTruncate(t *testing.T) {
	ms := []int64{0, 1, -1, 999, -999, 1000, -1000, 1001, -1001, 1704067299999, -1704067299999, 253402300799999, -62135596800000, -62135596800001}
	r := rand.New(rand.NewPCG(3, 4))
	for range 10000 {
		ms = append(ms, r.Int64N(1<<46)-1<<45)
	}
	for _, m := range ms {
		if got, want := dateTime(m), time.UnixMilli(m).UTC().Truncate(time.Second); got != want {
			t.Fatalf("dateTime(%d) = %#v, want %#v", m, got, want)
		}
	}
}

// Build sorts the aggregate rows by customer id (bytewise) and day,
// whatever the ids: a shared prefix, ids that are prefixes of others, NUL
// and high bytes at and after the 8 bytes Build compares first.
func TestBuildOrder(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	alphabet := []string{"\x00", "a", "b", "\xff", "é"}
	for _, shared := range []string{"", "customer-", "c\x00\x00\x00\x00\x00\x00\x00\x00"} {
		b := NewBatch(0)
		for range 2000 {
			id := shared
			if r.IntN(2) == 0 {
				id = shared[:r.IntN(len(shared)+1)]
			}
			for range r.IntN(14) {
				id += alphabet[r.IntN(len(alphabet))]
			}
			b.AddAggregate(agg(id, 1, t0.Add(time.Duration(r.IntN(5)-2)*24*time.Hour)))
		}
		var ids []string
		var days []time.Time
		for _, tb := range b.Build(t0, false) {
			if tb.Name == TableAggregates {
				ids, days = tb.Columns[0].Values.([]string), tb.Columns[2].Values.([]time.Time)
			}
		}
		if len(ids) != b.TableLen(TableAggregates) || len(ids) < 100 {
			t.Fatalf("shared %q: %d rows, batch holds %d", shared, len(ids), b.TableLen(TableAggregates))
		}
		for i := 1; i < len(ids); i++ {
			if c := strings.Compare(ids[i-1], ids[i]); c > 0 || (c == 0 && !days[i-1].Before(days[i])) {
				t.Fatalf("shared %q: row %d (%q, %v) after row %d (%q, %v)", shared, i, ids[i], days[i], i-1, ids[i-1], days[i-1])
			}
		}
	}
}

// A batch reused after a flush (Drop, then new rows) builds the same
// customer_aggregates columns as a new batch, though Build fills the
// previous Build's columns again: nothing of the earlier, larger batch
// (rows, reasons, Nullable values) shows through.
func TestBuildReusesColumns(t *testing.T) {
	first := func(id string, v uint64) *event.Aggregate {
		a := agg(id, v, t0)
		a.FirstOrderAt, a.LastOrderAt, a.LastTriggerAt = t0.UnixMilli(), t0.UnixMilli(), t0.UnixMilli()
		a.LastCSAT, a.LastNPS = 3, 9
		a.LastTriggerID, a.ValueTier = "trig-"+id, event.TierHigh
		a.ActiveReasons = []event.Reason{event.ReasonPurchaseLapse, event.ReasonEmailBounced, event.ReasonLowSatisfaction}
		a.OrdersTotal, a.SpendTotal, a.Evicted = 7, 70, true
		return a
	}
	second := []*event.Aggregate{agg("b", 1, t0.Add(time.Hour)), agg("a", 2, t0)}
	second[1].ActiveReasons = nil

	reused := NewBatch(0)
	for i, id := range []string{"c", "a", "b", "d"} {
		reused.AddAggregate(first(id, uint64(i+1)))
	}
	before := reused.Build(t0, true)[0]
	if before.Rows != 4 {
		t.Fatalf("first build: %d rows", before.Rows)
	}
	reused.Drop(TableAggregates)
	fresh := NewBatch(0)
	for _, a := range second {
		reused.AddAggregate(a)
		fresh.AddAggregate(a)
	}
	got, want := reused.Build(t0.Add(time.Minute), true)[0], fresh.Build(t0.Add(time.Minute), true)[0]
	if !reflect.DeepEqual(got, want) {
		t.Errorf("reused batch's table:\n%+v\nwant a new batch's:\n%+v", got, want)
	}
}
