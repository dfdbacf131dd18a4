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

// optTimeCol builds a Nullable(DateTime) column: 0 ms is NULL.
func optTimeCol(name string, n int, f func(i int) int64) Column {
	backing := make([]time.Time, n)
	return col(name, n, func(i int) *time.Time { return optTime(f(i), &backing[i]) })
}

// optScoreCol builds a Nullable(UInt8) column: event.NoScore is NULL.
func optScoreCol(name string, n int, f func(i int) int8) Column {
	backing := make([]uint8, n)
	return col(name, n, func(i int) *uint8 { return optScore(f(i), &backing[i]) })
}

func timeCol(name string, n int, f func(i int) int64) Column {
	return col(name, n, func(i int) time.Time { return dateTime(f(i)) })
}

func updatedAt(n int, now time.Time) Column {
	now = now.UTC().Truncate(time.Second)
	c := col("updated_at", n, func(int) time.Time { return now })
	c.Volatile = true
	return c
}

func aggregatesTable(rows []*event.Aggregate, now time.Time) *Table {
	n := len(rows)
	r := func(i int) *event.Aggregate { return rows[i] }
	return &Table{Name: TableAggregates, Rows: n, Columns: []Column{
		col("customer_id", n, func(i int) string { return r(i).CustomerID }),
		col("version", n, func(i int) uint64 { return r(i).Version }),
		timeCol("as_of", n, func(i int) int64 { return r(i).AsOf }),
		optTimeCol("first_order_at", n, func(i int) int64 { return r(i).FirstOrderAt }),
		optTimeCol("last_order_at", n, func(i int) int64 { return r(i).LastOrderAt }),
		col("orders_total", n, func(i int) uint32 { return r(i).OrdersTotal }),
		col("spend_total", n, func(i int) float64 { return r(i).SpendTotal }),
		col("day_orders", n, func(i int) int32 { return r(i).DayOrders }),
		col("day_spend", n, func(i int) float64 { return r(i).DaySpend }),
		col("orders_7d", n, func(i int) uint32 { return r(i).Orders7d }),
		col("orders_30d", n, func(i int) uint32 { return r(i).Orders30d }),
		col("orders_90d", n, func(i int) uint32 { return r(i).Orders90d }),
		col("orders_prev_90d", n, func(i int) uint32 { return r(i).OrdersPrev90d }),
		col("spend_7d", n, func(i int) float64 { return r(i).Spend7d }),
		col("spend_30d", n, func(i int) float64 { return r(i).Spend30d }),
		col("spend_90d", n, func(i int) float64 { return r(i).Spend90d }),
		col("spend_prev_90d", n, func(i int) float64 { return r(i).SpendPrev90d }),
		col("usual_interval_days", n, func(i int) float64 { return r(i).UsualIntervalDays }),
		col("interval_spread_days", n, func(i int) float64 { return r(i).IntervalSpreadDays }),
		col("baseline_source", n, func(i int) string { return r(i).BaselineSource }),
		col("emails_delivered_30d", n, func(i int) uint32 { return r(i).EmailsDelivered30d }),
		col("emails_opened_30d", n, func(i int) uint32 { return r(i).EmailsOpened30d }),
		col("emails_clicked_30d", n, func(i int) uint32 { return r(i).EmailsClicked30d }),
		col("emails_bounced_90d", n, func(i int) uint32 { return r(i).EmailsBounced90d }),
		col("open_rate_30d", n, func(i int) float64 { return r(i).OpenRate30d }),
		col("click_rate_30d", n, func(i int) float64 { return r(i).ClickRate30d }),
		col("open_rate_baseline", n, func(i int) float64 { return r(i).OpenRateBaseline }),
		col("click_rate_baseline", n, func(i int) float64 { return r(i).ClickRateBaseline }),
		col("unsubscribed", n, func(i int) uint8 { return b2u(r(i).Unsubscribed) }),
		col("hard_bounced", n, func(i int) uint8 { return b2u(r(i).HardBounced) }),
		col("tickets_opened_30d", n, func(i int) uint32 { return r(i).TicketsOpened30d }),
		col("tickets_opened_90d", n, func(i int) uint32 { return r(i).TicketsOpened90d }),
		col("tickets_reopened_90d", n, func(i int) uint32 { return r(i).TicketsReopened90d }),
		col("tickets_open", n, func(i int) uint32 { return r(i).TicketsOpen }),
		col("complaints_90d", n, func(i int) uint32 { return r(i).Complaints90d }),
		optScoreCol("last_csat", n, func(i int) int8 { return r(i).LastCSAT }),
		optScoreCol("last_nps", n, func(i int) int8 { return r(i).LastNPS }),
		col("value_tier", n, func(i int) string { return string(r(i).ValueTier) }),
		col("clv", n, func(i int) float64 { return r(i).CLV }),
		col("risk_score", n, func(i int) float64 { return r(i).RiskScore }),
		col("p_lapse", n, func(i int) float64 { return r(i).PLapse }),
		reasonsCol("active_reasons", n, func(i int) []event.Reason { return r(i).ActiveReasons }),
		col("last_trigger_id", n, func(i int) string { return r(i).LastTriggerID }),
		col("last_trigger_reason", n, func(i int) string { return string(r(i).LastTriggerReason) }),
		optTimeCol("last_trigger_at", n, func(i int) int64 { return r(i).LastTriggerAt }),
		col("evicted", n, func(i int) uint8 { return b2u(r(i).Evicted) }),
		updatedAt(n, now),
	}}
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
