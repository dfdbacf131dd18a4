// Package bioracle computes winback's BI figures (the retention and KPI
// views of docs/clickhouse.md) directly from input events, with plain Go
// and none of the pipeline's or the views' code: an independent oracle
// for the acceptance tests, which compare every view's rows with it.
//
// The definitions it follows (docs/clickhouse.md, "Definitions"):
//
//   - an order day is the UTC day of a PLACED order;
//   - a customer is active at T if they have an order day d with
//     T − activeDays ≤ d < T;
//   - a period runs from its first day to the first day of the next, and
//     ends at the day after the latest event while it is not over;
//   - S, E: active at the start and at the end; N: first order day in the
//     period; CRR = (E − N) / S × 100 with N counted among E (the new
//     customers still active at the end); churn = lost / S × 100;
//   - orders are placed minus cancelled orders and revenue is net of
//     refunds and cancellations (amounts in cents, as the pipeline keeps
//     them), both on the day of the event that changes them;
//   - AOV = revenue / orders (none unless orders > 0), purchase frequency
//     = orders / buyers, CLV estimate = AOV × frequency × S / lost (none
//     without orders > 0, buyers or lost).
package bioracle

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/winback/winback/pipeline/event"
)

// Oracle accumulates events and answers with the views' rows. The zero
// value is not usable; call New.
type Oracle struct {
	activeDays int
	seen       map[string]bool // kind, customer and event id of every event applied
	customers  map[string]*customer
	minDay     int64 // UTC days since the epoch of the earliest and latest event
	maxDay     int64
	events     int
}

type customer struct {
	orderDays []int64         // sorted, unique
	orders    map[int64]int64 // day → change of the order count
	cents     map[int64]int64 // day → change of net spend, cents
	total     int64           // orders (placed − cancelled, never below 0)
	spend     int64           // net spend, cents
}

// New returns an empty Oracle for activeDays (clickhouse.active_days).
func New(activeDays int) *Oracle {
	return &Oracle{activeDays: activeDays, seen: map[string]bool{}, customers: map[string]*customer{}}
}

const msDay = 24 * 60 * 60 * 1000

func dayOf(ms int64) int64 { return floorDiv(ms, msDay) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// Add applies one valid event, in event-time order per customer. A repeat
// of an event (same kind, customer and event id) is ignored, as the
// pipeline drops it.
func (o *Oracle) Add(ev *event.Event) {
	key := strconv.Itoa(int(ev.Kind)) + "\x00" + ev.CustomerID + "\x00" + ev.EventID
	if o.seen[key] {
		return
	}
	o.seen[key] = true
	d := dayOf(ev.Time)
	if o.events == 0 || d < o.minDay {
		o.minDay = d
	}
	if o.events == 0 || d > o.maxDay {
		o.maxDay = d
	}
	o.events++
	c := o.customers[ev.CustomerID]
	if c == nil {
		c = &customer{orders: map[int64]int64{}, cents: map[int64]int64{}}
		o.customers[ev.CustomerID] = c
	}
	if ev.Kind != event.KindOrder {
		return
	}
	amount := ev.Amount
	if math.IsNaN(amount) || math.IsInf(amount, 0) {
		amount = 0
	}
	cents := int64(math.Round(math.Abs(amount) * 100))
	switch ev.OrderType {
	case event.OrderPlaced:
		c.orders[d]++
		c.total++
		c.cents[d] += cents
		c.spend += cents
		if i, found := slices.BinarySearch(c.orderDays, d); !found {
			c.orderDays = slices.Insert(c.orderDays, i, d)
		}
	case event.OrderCancelled:
		if c.total > 0 {
			c.orders[d]--
			c.total--
		}
		c.cents[d] -= cents
		c.spend -= cents
	case event.OrderRefunded:
		c.cents[d] -= cents
		c.spend -= cents
	}
}

// Events is the number of distinct events applied.
func (o *Oracle) Events() int { return o.events }

// Period is a calendar month or an ISO week.
type Period int

const (
	Monthly Period = iota
	Weekly
)

func epochDay(t time.Time) int64 { return dayOf(t.UnixMilli()) }
func dateOf(d int64) time.Time   { return time.UnixMilli(d * msDay).UTC() }

// periods returns the start days of the periods from the first with data
// to the one holding the latest event, and each one's end (exclusive).
func (o *Oracle) periods(p Period) (starts, ends []int64) {
	first := o.minDay
	for _, c := range o.customers {
		if len(c.orderDays) > 0 {
			first = min(first, c.orderDays[0])
		}
	}
	startOf := func(d int64) int64 {
		t := dateOf(d)
		if p == Monthly {
			return epochDay(time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC))
		}
		return d - int64((int(t.Weekday())+6)%7)
	}
	next := func(d int64) int64 {
		if p == Monthly {
			return epochDay(dateOf(d).AddDate(0, 1, 0))
		}
		return d + 7
	}
	for s := startOf(first); s <= o.maxDay; s = next(s) {
		starts = append(starts, s)
		ends = append(ends, next(s))
	}
	return starts, ends
}

func (c *customer) active(t int64, activeDays int) bool {
	// the first order day >= t - activeDays must be < t
	i, _ := slices.BinarySearch(c.orderDays, t-int64(activeDays))
	return i < len(c.orderDays) && c.orderDays[i] < t
}

func (c *customer) orderedIn(from, to int64) bool {
	i, _ := slices.BinarySearch(c.orderDays, from)
	return i < len(c.orderDays) && c.orderDays[i] < to
}

// Row is one row of a view: the values of the columns Query selects, as
// ClickHouse prints them (dates YYYY-MM-DD, NULL as \N).
type Row []string

// View is the oracle's answer for one view: the query to run against
// database db (Query(db)) and the rows it must return, in order.
type View struct {
	Name  string
	Query func(db string) string
	Rows  []Row
}

func null() string { return `\N` }

func ratio(a, b float64) string {
	if b == 0 {
		return null()
	}
	return num(a / b)
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
func itoa(n int64) string  { return strconv.FormatInt(n, 10) }

func (o *Oracle) names(p Period) (retention, kpi string) {
	if p == Monthly {
		return "retention_monthly", "kpi_monthly"
	}
	return "retention_weekly", "kpi_weekly"
}

// Retention is retention_monthly or retention_weekly.
func (o *Oracle) Retention(p Period) View {
	name, _ := o.names(p)
	v := View{Name: name, Query: func(db string) string {
		return `SELECT toString(period_start), toString(period_end), is_complete, active_days, customers_start, customers_end,
       customers_new, retained, lost, reactivated, crr_pct, churn_pct
FROM ` + db + `.` + name + ` ORDER BY period_start`
	}}
	starts, ends := o.periods(p)
	for i, ps := range starts {
		pe := ends[i]
		end := min(pe, o.maxDay+1)
		var s, e, n, newEnd, retained, lost, react int64
		for _, c := range o.customers {
			if len(c.orderDays) == 0 {
				continue
			}
			as, ae := c.active(ps, o.activeDays), c.active(end, o.activeDays)
			isNew := c.orderDays[0] >= ps && c.orderDays[0] < pe
			s += b2i(as)
			e += b2i(ae)
			n += b2i(isNew)
			newEnd += b2i(isNew && ae)
			retained += b2i(as && ae)
			lost += b2i(as && !ae)
			react += b2i(ae && !as && !isNew)
		}
		v.Rows = append(v.Rows, Row{
			date(ps), date(pe), itoa(b2i(end == pe)), strconv.Itoa(o.activeDays), itoa(s), itoa(e), itoa(n),
			itoa(retained), itoa(lost), itoa(react), ratio(float64(e-newEnd)*100, float64(s)), ratio(float64(lost)*100, float64(s)),
		})
	}
	return v
}

// KPI is kpi_monthly or kpi_weekly.
func (o *Oracle) KPI(p Period) View {
	_, name := o.names(p)
	v := View{Name: name, Query: func(db string) string {
		return `SELECT toString(period_start), toString(period_end), is_complete, buyers, new_customers, orders, revenue,
       aov, purchase_frequency, customers_start, lost, churn_pct, clv_estimate
FROM ` + db + `.` + name + ` ORDER BY period_start`
	}}
	starts, ends := o.periods(p)
	for i, ps := range starts {
		pe := ends[i]
		end := min(pe, o.maxDay+1)
		var buyers, newc, orders, cents, s, lost int64
		for _, c := range o.customers {
			if len(c.orderDays) == 0 {
				continue
			}
			buyers += b2i(c.orderedIn(ps, pe))
			newc += b2i(c.orderDays[0] >= ps && c.orderDays[0] < pe)
			as, ae := c.active(ps, o.activeDays), c.active(end, o.activeDays)
			s += b2i(as)
			lost += b2i(as && !ae)
			for d, n := range c.orders {
				if d >= ps && d < pe {
					orders += n
				}
			}
			for d, n := range c.cents {
				if d >= ps && d < pe {
					cents += n
				}
			}
		}
		revenue := float64(cents) / 100
		aov, clv := null(), null()
		if orders > 0 {
			aov = num(revenue / float64(orders))
			if lost != 0 && buyers != 0 {
				clv = num(revenue / float64(buyers) * float64(s) / float64(lost))
			}
		}
		v.Rows = append(v.Rows, Row{
			date(ps), date(pe), itoa(b2i(end == pe)), itoa(buyers), itoa(newc), itoa(orders), num(revenue),
			aov, ratio(float64(orders), float64(buyers)), itoa(s), itoa(lost),
			ratio(float64(lost)*100, float64(s)), clv,
		})
	}
	return v
}

// CustomerKPIs is customer_kpis without avg_clv (winback's own model,
// which the events do not define).
func (o *Oracle) CustomerKPIs() View {
	v := View{Name: "customer_kpis", Query: func(db string) string {
		return `SELECT customers, buyers, repeat_buyers, repeat_rate_pct, orders, revenue, aov, purchase_frequency, revenue_per_buyer
FROM ` + db + `.customer_kpis`
	}}
	var buyers, repeat, orders, cents int64
	for _, c := range o.customers {
		buyers += b2i(c.total >= 1)
		repeat += b2i(c.total >= 2)
		orders += c.total
		cents += c.spend
	}
	revenue := float64(cents) / 100
	v.Rows = []Row{{
		itoa(int64(len(o.customers))), itoa(buyers), itoa(repeat), ratio(float64(repeat)*100, float64(buyers)),
		itoa(orders), num(revenue), ratio(revenue, float64(orders)), ratio(float64(orders), float64(buyers)),
		ratio(revenue, float64(buyers)),
	}}
	return v
}

// Views is every view the oracle answers for.
func (o *Oracle) Views() []View {
	return []View{o.Retention(Monthly), o.Retention(Weekly), o.KPI(Monthly), o.KPI(Weekly), o.CustomerKPIs()}
}

func date(d int64) string { return dateOf(d).Format(time.DateOnly) }

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// Compare requires got to equal want cell by cell: counts and dates
// exactly, numbers to a relative 1e-9 (ClickHouse and Go add floats in
// another order).
func Compare(got, want []Row) error {
	for i := range min(len(got), len(want)) {
		if len(got[i]) != len(want[i]) {
			return fmt.Errorf("row %d: %d columns, want %d", i+1, len(got[i]), len(want[i]))
		}
		for j := range want[i] {
			if !cellEqual(got[i][j], want[i][j]) {
				return fmt.Errorf("row %d column %d: got %s, want %s\n got %v\nwant %v", i+1, j+1, got[i][j], want[i][j], got[i], want[i])
			}
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("%d rows, want %d", len(got), len(want))
	}
	return nil
}

func cellEqual(got, want string) bool {
	if got == want {
		return true
	}
	w, err1 := strconv.ParseFloat(want, 64)
	g, err2 := strconv.ParseFloat(got, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	return math.Abs(g-w) <= 1e-9*math.Max(1, math.Abs(w))
}

// Trigger is what Funnel needs of a committed trigger.
type Trigger struct {
	ID, Kind, Reason, Action string
	Treatment                string // TREATED, CONTROL, or "" (TREATED)
	Original                 string // RECOVERED: the WINBACK trigger's id
	AsOf                     int64  // Unix ms
	Revenue                  float64
}

// Funnel is winback_funnel computed from the committed triggers (the last
// record of each trigger id counts): per primary reason and action of the
// TREATED WINBACK triggers, how many, how many a RECOVERED trigger names, the
// median of the days between the two (as_of at ClickHouse's whole
// seconds; the median interpolates between the middle two), and the
// RECOVERED triggers' evidence revenue. Rows by triggers descending, then
// reason and action. It fails if a WINBACK trigger has more than one
// RECOVERED trigger, which the view's join does not define.
func Funnel(trigs []Trigger) (View, error) {
	v := View{Name: "winback_funnel", Query: func(db string) string {
		return `SELECT reason, action, triggers, recoveries, recovery_rate_pct, median_days_to_return, revenue_after_return
FROM ` + db + `.winback_funnel ORDER BY triggers DESC, reason, action`
	}}
	last := map[string]Trigger{}
	for _, t := range trigs {
		last[t.ID] = t
	}
	rec := map[string]Trigger{}
	for _, t := range last {
		if t.Kind == "RECOVERED" {
			if _, dup := rec[t.Original]; dup {
				return v, fmt.Errorf("trigger %s has two RECOVERED triggers", t.Original)
			}
			rec[t.Original] = t
		}
	}
	type cell struct {
		reason, action string
		n, recovered   int64
		days           []float64
		revenue        float64
	}
	cells := map[[2]string]*cell{}
	for _, t := range last {
		if t.Kind != "WINBACK" || t.Treatment == "CONTROL" {
			continue // the funnel is the acted-on triggers'
		}
		k := [2]string{t.Reason, t.Action}
		c := cells[k]
		if c == nil {
			c = &cell{reason: t.Reason, action: t.Action}
			cells[k] = c
		}
		c.n++
		if r, ok := rec[t.ID]; ok {
			c.recovered++
			c.days = append(c.days, float64(floorDiv(r.AsOf, 1000)-floorDiv(t.AsOf, 1000))/86400)
			c.revenue += r.Revenue
		}
	}
	list := make([]*cell, 0, len(cells))
	for _, c := range cells {
		list = append(list, c)
	}
	slices.SortFunc(list, func(a, b *cell) int {
		if a.n != b.n {
			return int(b.n - a.n)
		}
		if a.reason != b.reason {
			return strings.Compare(a.reason, b.reason)
		}
		return strings.Compare(a.action, b.action)
	})
	for _, c := range list {
		median := null()
		if len(c.days) > 0 {
			slices.Sort(c.days)
			pos := 0.5 * float64(len(c.days)-1)
			lo := int(pos)
			hi := min(lo+1, len(c.days)-1)
			median = num(c.days[lo] + (pos-float64(lo))*(c.days[hi]-c.days[lo]))
		}
		v.Rows = append(v.Rows, Row{c.reason, c.action, itoa(c.n), itoa(c.recovered),
			num(float64(c.recovered) / float64(c.n) * 100), median, num(c.revenue)})
	}
	return v, nil
}
