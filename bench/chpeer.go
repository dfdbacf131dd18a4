package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/twmb/franz-go/pkg/kgo"
)

// queryResult is one run of the ClickHouse-only query over a prefix of the
// history.
type queryResult struct {
	Fraction  float64 `json:"fraction"`   // share of the stream's event-time history queried; 2, 4, 8: that many copies of it
	Rows      int64   `json:"rows"`       // raw events in that prefix
	Customers int64   `json:"customers"`  // customers with an event in it
	Lapsed    int64   `json:"lapsed"`     // PURCHASE_LAPSE rows returned
	Seconds   float64 `json:"seconds"`    // median wall time of queryRuns runs, client side
	ServerCPU float64 `json:"server_cpu"` // clickhouse-server CPU per run
	ClientCPU float64 `json:"client_cpu"` // client CPU per run
	// CountSeconds is the same computation reduced on the server to two
	// numbers (customers, lapsed): the scan and aggregation without
	// shipping the per-customer rows to the client. Median of queryRuns runs.
	CountSeconds float64 `json:"count_seconds"`
}

// scheduledQuery is one run of the lapse query during the ClickHouse-only
// peer's ingest, as a BI job on a schedule runs it: over everything
// stored so far, as of the latest event time stored.
type scheduledQuery struct {
	AtS       float64 `json:"at_s"`       // since the ingest began
	Rows      int64   `json:"rows"`       // raw events stored by then
	Cutoff    int64   `json:"cutoff"`     // event time (Unix ms) the query runs as of
	Customers int64   `json:"customers"`  // rows returned
	Lapsed    int64   `json:"lapsed"`     // PURCHASE_LAPSE customers found
	Seconds   float64 `json:"seconds"`    // wall time, rows to the client
	ClientCPU float64 `json:"client_cpu"` // the peer's CPU for it
	ServerCPU float64 `json:"server_cpu"` // clickhouse-server's CPU for it
}

// queryRuns is how many times each query runs; the median is reported.
const queryRuns = 5

// chKinds maps a topic kind to the kind column's value.
const (
	chOrder   = 1
	chEmail   = 2
	chSupport = 3
)

// runClickHouseOnly is "the ClickHouse-only way": read the raw events,
// insert them into a MergeTree table in batches (native protocol, explicit
// column list), then answer the question with one SQL query per schedule:
// per-customer order count, net spend, last order, average interval between
// orders, and the PURCHASE_LAPSE list (silence > 3 × the average interval,
// for customers with at least 4 orders). The query runs over 25, 50, 75
// and 100% of the history, to show how its cost grows with what is stored.
func runClickHouseOnly(ctx context.Context, spec contenderSpec, log *slog.Logger) (contenderResult, error) {
	began := time.Now()
	var res contenderResult
	opts, err := clickhouse.ParseDSN(spec.ClickHouseDSN)
	if err != nil {
		return res, err
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return res, err
	}
	defer conn.Close()
	db := spec.Database
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS " + db,
		"DROP TABLE IF EXISTS " + db + ".events",
		`CREATE TABLE ` + db + `.events (
			event_id String, customer_id String, kind UInt8, type String,
			ts Int64, amount Float64, order_id String
		) ENGINE = MergeTree() ORDER BY (customer_id, ts)`,
	} {
		if err := conn.Exec(ctx, q); err != nil {
			return res, fmt.Errorf("clickhouse: %s: %w", q, err)
		}
	}

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(spec.Brokers),
		kgo.ConsumeTopics(spec.Topics.Orders, spec.Topics.Email, spec.Topics.Support),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return res, err
	}
	defer cl.Close()
	kinds := map[string]uint8{spec.Topics.Orders: chOrder, spec.Topics.Email: chEmail, spec.Topics.Support: chSupport}

	cpu0, srv0 := selfCPU(), procCPU(spec.ClickHousePID)
	insert := "INSERT INTO " + db + ".events (event_id, customer_id, kind, type, ts, amount, order_id)"
	var batch driver.Batch
	pending := 0
	send := func() error {
		if pending == 0 {
			return nil
		}
		t0 := time.Now()
		if err := batch.Send(); err != nil {
			return fmt.Errorf("clickhouse: insert: %w", err)
		}
		log.Debug("clickhouse batch sent", "rows", pending, "took", time.Since(t0))
		res.Rows += int64(pending)
		batch, pending = nil, 0
		return nil
	}
	times := make([]int64, 0, spec.Expect)
	var ev gokaEvent
	// The BI job: the lapse query every spec.Schedule of wall time during
	// the ingest, and once at the end, over what is stored by then.
	var maxTS int64
	schedule := func() error {
		c0, s0, t0 := selfCPU(), procCPU(spec.ClickHousePID), time.Now()
		q := scheduledQuery{AtS: time.Since(began).Seconds(), Rows: res.Rows, Cutoff: maxTS + 1}
		customers, lapsed, err := lapseQuery(ctx, conn, db, q.Cutoff)
		if err != nil {
			return err
		}
		q.Customers, q.Lapsed, q.Seconds = customers, lapsed, time.Since(t0).Seconds()
		q.ClientCPU, q.ServerCPU = (selfCPU() - c0).Seconds(), (procCPU(spec.ClickHousePID) - s0).Seconds()
		res.Scheduled = append(res.Scheduled, q)
		log.Info("clickhouse scheduled lapse query", "at", time.Duration(q.AtS*float64(time.Second)).Round(time.Millisecond), "rows", q.Rows, "lapsed", q.Lapsed, "ms", q.Seconds*1000)
		return nil
	}
	every := cmp.Or(spec.Schedule, time.Minute)
	next := began.Add(every)
	for res.Records < spec.Expect {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return res, err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) { ferr = errors.Join(ferr, fmt.Errorf("fetch %s/%d: %w", t, p, err)) })
		if ferr != nil {
			return res, ferr
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			res.Records++
			ev = gokaEvent{}
			if err := json.Unmarshal(r.Value, &ev); err != nil || ev.CustomerID == "" {
				res.Bad++
				continue
			}
			if batch == nil {
				if batch, err = conn.PrepareBatch(ctx, insert); err != nil {
					return res, fmt.Errorf("clickhouse: prepare: %w", err)
				}
			}
			if err := batch.Append(ev.EventID, ev.CustomerID, kinds[r.Topic], ev.Type, ev.EventTime, ev.Amount, ev.OrderID); err != nil {
				return res, fmt.Errorf("clickhouse: append: %w", err)
			}
			times = append(times, ev.EventTime)
			if ev.EventTime < spec.HistoryTo {
				// The BI job's "now" is the latest event stored, not the
				// mis-dated ones (event_time in 9999) the peer stores too.
				maxTS = max(maxTS, ev.EventTime)
			}
			if pending++; pending >= spec.BatchRows {
				if err := send(); err != nil {
					return res, err
				}
			}
		}
		if time.Now().After(next) && res.Rows > 0 {
			if err := schedule(); err != nil {
				return res, err
			}
			for !next.After(time.Now()) { // a run that overran skips its missed ticks, as cron would
				next = next.Add(every)
			}
		}
	}
	if err := send(); err != nil {
		return res, err
	}
	if err := schedule(); err != nil {
		return res, err
	}
	res.IngestWall = time.Since(began).Seconds()
	res.IngestCPU = (selfCPU() - cpu0).Seconds()
	res.IngestServerCPU = (procCPU(spec.ClickHousePID) - srv0).Seconds()
	res.Wall = res.IngestWall
	log.Info("clickhouse ingest done", "records", res.Records, "rows", res.Rows, "wall", time.Since(began).Round(time.Millisecond))

	slices.Sort(times)
	span := spec.HistoryTo - spec.HistoryFrom
	for _, f := range spec.Fractions {
		cutoff := spec.HistoryFrom + int64(f*float64(span))
		rows := int64(sort.Search(len(times), func(i int) bool { return times[i] >= cutoff }))
		q, err := timeQueries(ctx, conn, spec, log, f, rows, cutoff)
		if err != nil {
			return res, err
		}
		res.Queries = append(res.Queries, q)
	}
	// History keeps growing while the stream engine's state does not: copy
	// the stored history forward in time on the server (INSERT … SELECT,
	// event times shifted by the history so far) to 2, 4 and 8 times the
	// stream, and time the same query over all of it.
	for mult := int64(1); mult < spec.HistoryGrowth; mult *= 2 {
		q := fmt.Sprintf(`INSERT INTO %[1]s.events (event_id, customer_id, kind, type, ts, amount, order_id)
SELECT event_id, customer_id, kind, type, ts + %[2]d, amount, order_id FROM %[1]s.events`, db, mult*span)
		if err := conn.Exec(ctx, q); err != nil {
			return res, fmt.Errorf("clickhouse: growing the history: %w", err)
		}
		qr, err := timeQueries(ctx, conn, spec, log, float64(2*mult), int64(len(times))*2*mult, spec.HistoryFrom+2*mult*span)
		if err != nil {
			return res, err
		}
		res.Queries = append(res.Queries, qr)
	}
	// Drop the data, so that its background merges do not land on the
	// next contender's ClickHouse CPU.
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+db); err != nil {
		return res, fmt.Errorf("clickhouse: drop %s: %w", db, err)
	}
	return res, nil
}

// lapseSQL is the per-customer aggregate as of cutoff with the lapse flag.
func lapseSQL(db string, cutoff int64) string {
	return fmt.Sprintf(`
SELECT customer_id, orders, spend, last_order, avg_interval,
	orders >= 4 AND (%[3]d - last_order) > 3 * avg_interval AS lapsed
FROM (
	SELECT customer_id,
		countIf(kind = %[2]d AND type = 'PLACED') AS orders,
		sumIf(amount, kind = %[2]d AND type = 'PLACED') - sumIf(amount, kind = %[2]d AND type IN ('CANCELLED', 'REFUNDED')) AS spend,
		maxIf(ts, kind = %[2]d AND type = 'PLACED') AS last_order,
		if(orders >= 2, (last_order - minIf(ts, kind = %[2]d AND type = 'PLACED')) / (orders - 1), 0) AS avg_interval
	FROM %[1]s.events
	WHERE ts < %[3]d
	GROUP BY customer_id
)`, db, chOrder, cutoff)
}

// lapseCountQuery runs lapseSQL and reduces it on the server to the number
// of customers and of lapsed customers.
func lapseCountQuery(ctx context.Context, conn driver.Conn, db string, cutoff int64) (customers, lapsed int64, err error) {
	var c, l uint64
	if err := conn.QueryRow(ctx, "SELECT count(), sum(lapsed) FROM ("+lapseSQL(db, cutoff)+")").Scan(&c, &l); err != nil {
		return 0, 0, fmt.Errorf("clickhouse: lapse count query: %w", err)
	}
	return int64(c), int64(l), nil
}

// lapseQuery computes every customer's figures as of cutoff, flags the
// PURCHASE_LAPSE customers, and reads the result into the client, as a
// scheduled job that refreshes the aggregates and the lapse list would. It
// returns the number of customers and of lapsed customers.
func lapseQuery(ctx context.Context, conn driver.Conn, db string, cutoff int64) (customers, lapsed int64, err error) {
	q := lapseSQL(db, cutoff)
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return 0, 0, fmt.Errorf("clickhouse: lapse query: %w", err)
	}
	defer rows.Close()
	var (
		id         string
		orders     uint64
		spend, avg float64
		last       int64
		flag       uint8
	)
	for rows.Next() {
		if err := rows.Scan(&id, &orders, &spend, &last, &avg, &flag); err != nil {
			return 0, 0, fmt.Errorf("clickhouse: lapse query scan: %w", err)
		}
		customers++
		if flag != 0 {
			lapsed++
		}
	}
	return customers, lapsed, rows.Err()
}

// timeQueries times the lapse query (rows to the client) and its counting
// variant over the events before cutoff, queryRuns times each. f is the
// share of the stream's history that holds (above 1: copies of it).
func timeQueries(ctx context.Context, conn driver.Conn, spec contenderSpec, log *slog.Logger, f float64, rows, cutoff int64) (queryResult, error) {
	db := spec.Database
	q := queryResult{Fraction: f, Rows: rows}
	var runs []float64
	c0, s0 := selfCPU(), procCPU(spec.ClickHousePID)
	for range queryRuns {
		t0 := time.Now()
		customers, lapsed, err := lapseQuery(ctx, conn, db, cutoff)
		if err != nil {
			return q, err
		}
		runs = append(runs, time.Since(t0).Seconds())
		q.Customers, q.Lapsed = customers, lapsed
	}
	slices.Sort(runs)
	q.Seconds = runs[len(runs)/2]
	q.ClientCPU = (selfCPU() - c0).Seconds() / queryRuns
	q.ServerCPU = (procCPU(spec.ClickHousePID) - s0).Seconds() / queryRuns
	runs = runs[:0]
	for range queryRuns {
		t0 := time.Now()
		customers, lapsed, err := lapseCountQuery(ctx, conn, db, cutoff)
		if err != nil {
			return q, err
		}
		runs = append(runs, time.Since(t0).Seconds())
		if customers != q.Customers || lapsed != q.Lapsed {
			return q, fmt.Errorf("clickhouse: the counting query says %d customers and %d lapsed, the full one %d and %d", customers, lapsed, q.Customers, q.Lapsed)
		}
	}
	slices.Sort(runs)
	q.CountSeconds = runs[len(runs)/2]
	log.Info("clickhouse query", "history", f, "rows", q.Rows, "lapsed", q.Lapsed, "ms", q.Seconds*1000, "counted_ms", q.CountSeconds*1000)
	return q, nil
}
