package chsql

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/winback/winback/pipeline/event"
)

// col builds a column by calling f for every row.
func col[T any](name string, n int, f func(i int) T) Column {
	v := make([]T, n)
	for i := range v {
		v[i] = f(i)
	}
	return Column{Name: name, Values: v}
}

func timeCol(name string, n int, f func(i int) int64) Column {
	return col(name, n, func(i int) time.Time { return dateTime(f(i)) })
}

// aggColumns is the customer_aggregates columns of a batch's last Build,
// kept so that the next Build of the batch (the sink reuses a batch whose
// flush wrote everything) fills them again instead of allocating them:
// they are most of what a flush allocates.
type aggColumns struct {
	customerID, baselineSource, valueTier, lastTriggerID, lastTriggerReason []string
	version                                                                 []uint64
	dayOrders                                                               []int32
	asOf, optTimes, updatedAt                                               []time.Time
	firstOrderAt, lastOrderAt, lastTriggerAt                                []*time.Time
	scores, unsubscribed, hardBounced, evicted                              []uint8
	lastCSAT, lastNPS                                                       []*uint8
	u32                                                                     [14][]uint32
	f64                                                                     [15][]float64
	reasons                                                                 []string
	activeReasons                                                           [][]string
}

// sized returns s[:n], reusing s's array when it is large enough. Every
// element below n is overwritten by the caller.
func sized[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// release lets go of what the columns point to (customer ids, reasons),
// keeping their arrays.
func (s *aggColumns) release() {
	for _, c := range [][]string{s.customerID, s.baselineSource, s.valueTier, s.lastTriggerID, s.lastTriggerReason, s.reasons} {
		clear(c)
	}
	clear(s.activeReasons)
}

// table fills the columns from rows; the Table is valid until the next
// call.
func (s *aggColumns) table(rows []*event.Aggregate, now time.Time) *Table {
	// One pass over the rows fills every column: a row is read once,
	// while it is in cache, instead of once per column.
	n := len(rows)
	s.customerID, s.baselineSource, s.valueTier = sized(s.customerID, n), sized(s.baselineSource, n), sized(s.valueTier, n)
	s.lastTriggerID, s.lastTriggerReason = sized(s.lastTriggerID, n), sized(s.lastTriggerReason, n)
	s.version, s.dayOrders, s.asOf = sized(s.version, n), sized(s.dayOrders, n), sized(s.asOf, n)
	// The Nullable columns point into one backing slice each.
	s.optTimes, s.scores = sized(s.optTimes, 3*n), sized(s.scores, 2*n)
	s.firstOrderAt, s.lastOrderAt, s.lastTriggerAt = sized(s.firstOrderAt, n), sized(s.lastOrderAt, n), sized(s.lastTriggerAt, n)
	s.lastCSAT, s.lastNPS = sized(s.lastCSAT, n), sized(s.lastNPS, n)
	s.unsubscribed, s.hardBounced, s.evicted = sized(s.unsubscribed, n), sized(s.hardBounced, n), sized(s.evicted, n)
	s.activeReasons = sized(s.activeReasons, n)
	// The UInt32 and Float64 columns, in the order they are filled.
	for i := range s.u32 {
		s.u32[i] = sized(s.u32[i], n)
	}
	for i := range s.f64 {
		s.f64[i] = sized(s.f64[i], n)
	}
	var (
		customerID, baselineSource, valueTier = s.customerID, s.baselineSource, s.valueTier
		lastTriggerID, lastTriggerReason      = s.lastTriggerID, s.lastTriggerReason
		version, dayOrders, asOf              = s.version, s.dayOrders, s.asOf
		optTimes, scores                      = s.optTimes, s.scores
		firstOrderAt, lastOrderAt             = s.firstOrderAt, s.lastOrderAt
		lastTriggerAt                         = s.lastTriggerAt
		lastCSAT, lastNPS                     = s.lastCSAT, s.lastNPS
		unsubscribed, hardBounced, evicted    = s.unsubscribed, s.hardBounced, s.evicted
		activeReasons                         = s.activeReasons
		u32, f64                              = &s.u32, &s.f64
		reasonCount                           int
	)
	for _, a := range rows {
		reasonCount += len(a.ActiveReasons)
	}
	s.reasons = sized(s.reasons, reasonCount)
	reasonsBacking := s.reasons
	k := 0
	for i, a := range rows {
		customerID[i] = a.CustomerID
		version[i] = a.Version
		asOf[i] = dateTime(a.AsOf)
		firstOrderAt[i] = optTime(a.FirstOrderAt, &optTimes[3*i])
		lastOrderAt[i] = optTime(a.LastOrderAt, &optTimes[3*i+1])
		u32[0][i] = a.OrdersTotal
		f64[0][i] = a.SpendTotal
		dayOrders[i] = a.DayOrders
		f64[1][i] = a.DaySpend
		u32[1][i], u32[2][i], u32[3][i], u32[4][i] = a.Orders7d, a.Orders30d, a.Orders90d, a.OrdersPrev90d
		f64[2][i], f64[3][i], f64[4][i], f64[5][i] = a.Spend7d, a.Spend30d, a.Spend90d, a.SpendPrev90d
		f64[6][i], f64[7][i] = a.UsualIntervalDays, a.IntervalSpreadDays
		baselineSource[i] = a.BaselineSource
		u32[5][i], u32[6][i], u32[7][i], u32[8][i] = a.EmailsDelivered30d, a.EmailsOpened30d, a.EmailsClicked30d, a.EmailsBounced90d
		f64[8][i], f64[9][i], f64[10][i], f64[11][i] = a.OpenRate30d, a.ClickRate30d, a.OpenRateBaseline, a.ClickRateBaseline
		unsubscribed[i], hardBounced[i] = b2u(a.Unsubscribed), b2u(a.HardBounced)
		u32[9][i], u32[10][i], u32[11][i], u32[12][i], u32[13][i] = a.TicketsOpened30d, a.TicketsOpened90d, a.TicketsReopened90d, a.TicketsOpen, a.Complaints90d
		lastCSAT[i] = optScore(a.LastCSAT, &scores[2*i])
		lastNPS[i] = optScore(a.LastNPS, &scores[2*i+1])
		valueTier[i] = string(a.ValueTier)
		f64[12][i], f64[13][i], f64[14][i] = a.CLV, a.RiskScore, a.PLapse
		rs := reasonsBacking[k : k+len(a.ActiveReasons) : k+len(a.ActiveReasons)]
		for j, r := range a.ActiveReasons {
			rs[j] = string(r)
		}
		activeReasons[i] = rs
		k += len(rs)
		lastTriggerID[i] = a.LastTriggerID
		lastTriggerReason[i] = string(a.LastTriggerReason)
		lastTriggerAt[i] = optTime(a.LastTriggerAt, &optTimes[3*i+2])
		evicted[i] = b2u(a.Evicted)
	}
	c := func(name string, v any) Column { return Column{Name: name, Values: v} }
	return &Table{Name: TableAggregates, Rows: n, Columns: []Column{
		c("customer_id", customerID),
		c("version", version),
		c("as_of", asOf),
		c("first_order_at", firstOrderAt),
		c("last_order_at", lastOrderAt),
		c("orders_total", u32[0]),
		c("spend_total", f64[0]),
		c("day_orders", dayOrders),
		c("day_spend", f64[1]),
		c("orders_7d", u32[1]),
		c("orders_30d", u32[2]),
		c("orders_90d", u32[3]),
		c("orders_prev_90d", u32[4]),
		c("spend_7d", f64[2]),
		c("spend_30d", f64[3]),
		c("spend_90d", f64[4]),
		c("spend_prev_90d", f64[5]),
		c("usual_interval_days", f64[6]),
		c("interval_spread_days", f64[7]),
		c("baseline_source", baselineSource),
		c("emails_delivered_30d", u32[5]),
		c("emails_opened_30d", u32[6]),
		c("emails_clicked_30d", u32[7]),
		c("emails_bounced_90d", u32[8]),
		c("open_rate_30d", f64[8]),
		c("click_rate_30d", f64[9]),
		c("open_rate_baseline", f64[10]),
		c("click_rate_baseline", f64[11]),
		c("unsubscribed", unsubscribed),
		c("hard_bounced", hardBounced),
		c("tickets_opened_30d", u32[9]),
		c("tickets_opened_90d", u32[10]),
		c("tickets_reopened_90d", u32[11]),
		c("tickets_open", u32[12]),
		c("complaints_90d", u32[13]),
		c("last_csat", lastCSAT),
		c("last_nps", lastNPS),
		c("value_tier", valueTier),
		c("clv", f64[12]),
		c("risk_score", f64[13]),
		c("p_lapse", f64[14]),
		c("active_reasons", activeReasons),
		c("last_trigger_id", lastTriggerID),
		c("last_trigger_reason", lastTriggerReason),
		c("last_trigger_at", lastTriggerAt),
		c("evicted", evicted),
		s.updatedAtCol(n, now),
	}}
}

// updatedAtCol is updatedAt in the kept column.
func (s *aggColumns) updatedAtCol(n int, now time.Time) Column {
	s.updatedAt = sized(s.updatedAt, n)
	now = now.UTC().Truncate(time.Second)
	for i := range s.updatedAt {
		s.updatedAt[i] = now
	}
	return Column{Name: "updated_at", Values: s.updatedAt, Volatile: true}
}

func triggersTable(rows []*event.Trigger) *Table {
	n := len(rows)
	r := func(i int) *event.Trigger { return rows[i] }
	names := make([][]string, n)
	values := make([][]float64, n)
	for i, t := range rows {
		names[i] = slices.Sorted(maps.Keys(t.Evidence))
		values[i] = make([]float64, len(names[i]))
		for j, k := range names[i] {
			values[i][j] = t.Evidence[k]
		}
	}
	return &Table{Name: TableTriggers, Rows: n, Columns: []Column{
		col("trigger_id", n, func(i int) string { return r(i).TriggerID }),
		col("customer_id", n, func(i int) string { return r(i).CustomerID }),
		col("kind", n, func(i int) string { return string(r(i).Kind) }),
		reasonsCol("reasons", n, func(i int) []event.Reason { return r(i).Reasons }),
		col("primary_reason", n, func(i int) string { return string(r(i).PrimaryReason) }),
		col("risk_score", n, func(i int) float64 { return r(i).RiskScore }),
		col("value_tier", n, func(i int) string { return string(r(i).ValueTier) }),
		col("priority", n, func(i int) int32 { return r(i).Priority }),
		col("recommended_action", n, func(i int) string { return string(r(i).RecommendedAction) }),
		{Name: "evidence.name", Values: names},
		{Name: "evidence.value", Values: values},
		col("original_trigger_id", n, func(i int) string { return r(i).OriginalTriggerID }),
		timeCol("as_of", n, func(i int) int64 { return r(i).AsOf }),
		timeCol("emitted_at", n, func(i int) int64 { return r(i).EmittedAt }),
		col("treatment", n, func(i int) string { return string(r(i).Arm()) }),
	}}
}

func deadLettersTable(rows []*event.DeadLetter) *Table {
	n := len(rows)
	r := func(i int) *event.DeadLetter { return rows[i] }
	return &Table{Name: TableDeadLetters, Rows: n, Columns: []Column{
		col("topic", n, func(i int) string { return r(i).Topic }),
		col("partition", n, func(i int) int32 { return r(i).Partition }),
		col("offset", n, func(i int) int64 { return r(i).Offset }),
		col("key", n, func(i int) string { return string(r(i).Key) }),
		col("reason", n, func(i int) string { return r(i).Reason }),
		col("detail", n, func(i int) string { return r(i).Detail }),
		col("size", n, func(i int) uint64 { return uint64(max(r(i).Size, 0)) }),
		col("sample", n, func(i int) string { return string(r(i).Sample) }),
		timeCol("at", n, func(i int) int64 { return r(i).At }),
	}}
}

// Slice returns the values of rows lo to hi (exclusive), of the same
// slice type as Values.
func (c Column) Slice(lo, hi int) any {
	return reflect.ValueOf(c.Values).Slice(lo, hi).Interface()
}

// ColumnNames lists the table's columns in insert order.
func (t *Table) ColumnNames() []string {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	return names
}

// InsertQuery is "INSERT INTO db.table (col, ...)": the explicit column
// list clickhouse-go's PrepareBatch needs.
func (t *Table) InsertQuery(db string) string {
	return fmt.Sprintf("INSERT INTO %s.%s (%s)", db, t.Name, strings.Join(t.ColumnNames(), ", "))
}

// Settings are the query settings of the table's insert: none without a
// Token; with one, insert_deduplication_token, and
// deduplicate_blocks_in_dependent_materialized_views so that a retried
// insert still reaches customer_daily_feed when the first attempt stored
// the source block but failed in the view (ClickHouse would otherwise
// drop the retry at the source and never run the view), the view's target
// deduplicating the block itself.
func (t *Table) Settings() map[string]any {
	if t.Token == "" {
		return nil
	}
	return map[string]any{
		"insert_deduplication_token":                         t.Token,
		"deduplicate_blocks_in_dependent_materialized_views": 1,
	}
}

// FloatLiteral renders f as a ClickHouse Float64 literal (nan and inf
// included).
func FloatLiteral(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// contentHash hashes the table name and every non-volatile column.
func (t *Table) contentHash() string {
	h := sha256.New()
	var buf []byte
	str := func(s string) {
		buf = binary.AppendUvarint(buf, uint64(len(s)))
		buf = append(buf, s...)
	}
	u64 := func(x uint64) { buf = binary.LittleEndian.AppendUint64(buf, x) }
	str(t.Name)
	u64(uint64(t.Rows))
	for _, c := range t.Columns {
		if c.Volatile {
			continue
		}
		str(c.Name)
		switch v := c.Values.(type) {
		case []string:
			for _, s := range v {
				str(s)
			}
		case []uint8:
			buf = append(buf, v...)
		case []uint32:
			for _, x := range v {
				u64(uint64(x))
			}
		case []uint64:
			for _, x := range v {
				u64(x)
			}
		case []int32:
			for _, x := range v {
				u64(uint64(x))
			}
		case []int64:
			for _, x := range v {
				u64(uint64(x))
			}
		case []float64:
			for _, x := range v {
				u64(math.Float64bits(x))
			}
		case []time.Time:
			for _, x := range v {
				u64(uint64(x.Unix()))
			}
		case []*time.Time:
			for _, x := range v {
				if x == nil {
					buf = append(buf, 0)
				} else {
					buf = append(buf, 1)
					u64(uint64(x.Unix()))
				}
			}
		case []*uint8:
			for _, x := range v {
				if x == nil {
					buf = append(buf, 0)
				} else {
					buf = append(buf, 1, *x)
				}
			}
		case [][]string:
			for _, xs := range v {
				u64(uint64(len(xs)))
				for _, s := range xs {
					str(s)
				}
			}
		case [][]float64:
			for _, xs := range v {
				u64(uint64(len(xs)))
				for _, x := range xs {
					u64(math.Float64bits(x))
				}
			}
		default:
			panic(fmt.Sprintf("chsql: column %s: unsupported type %T", c.Name, c.Values))
		}
		if len(buf) > 1<<16 {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
	return hex.EncodeToString(h.Sum(nil))
}
