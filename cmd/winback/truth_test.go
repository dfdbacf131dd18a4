package main

import (
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/winback/winback/config"
	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
	"github.com/winback/winback/sinks/kafka"
	"github.com/winback/winback/testenv"
)

// The changelog keys of a task's own records (pipeline/consume): every
// other key that starts with \x00 is internal too, the rest are customers.
const (
	changelogMeta  = "\x00meta"
	changelogEpoch = "\x00epoch"
)

// committedTriggers returns one line per trigger record of the committed
// trigger topic (read_committed), sorted.
func committedTriggers(t *testing.T, cfg config.Config) []string {
	t.Helper()
	var out []string
	for _, r := range consumeAll(t, cfg.Kafka.Brokers, cfg.Topics.Triggers) {
		tr, err := codec.DecodeTrigger(context.Background(), nil, r.Value)
		if err != nil {
			t.Fatalf("trigger at %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
		}
		out = append(out, triggerLine(tr.TriggerID, tr.CustomerID, string(tr.Kind), tr.AsOf/1000, tr.EmittedAt/1000))
	}
	slices.Sort(out)
	return out
}

func triggerLine(id, customer, kind string, asOf, emitted int64) string {
	return fmt.Sprintf("%s %s %s as_of=%d emitted=%d", id, customer, kind, asOf, emitted)
}

// clickhouseTriggers returns one line per row of winback_triggers FINAL.
func clickhouseTriggers(t *testing.T, db *sql.DB, database string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT trigger_id, customer_id, kind, toUnixTimestamp(as_of), toUnixTimestamp(emitted_at) FROM ` + database + `.winback_triggers FINAL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, customer, kind string
		var asOf, emitted uint32
		if err := rows.Scan(&id, &customer, &kind, &asOf, &emitted); err != nil {
			t.Fatal(err)
		}
		out = append(out, triggerLine(id, customer, kind, int64(asOf), int64(emitted)))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// aggregateLine renders the columns of one customer_aggregates row that
// the comparison covers.
func aggregateLine(id string, version uint64, asOf, lastOrder int64, orders uint32, spend float64, orders30 uint32, spend90 float64, emails30, ticketsOpen uint32, lastTrigger string) string {
	return fmt.Sprintf("%s v=%d as_of=%d last_order=%d orders=%d spend=%.2f orders30=%d spend90=%.2f emails30=%d tickets_open=%d last_trigger=%s",
		id, version, asOf, lastOrder, orders, spend, orders30, spend90, emails30, ticketsOpen, lastTrigger)
}

// restoredState reads the whole committed changelog, restores every
// partition into a lapse engine as a new owner would, and returns one line
// per customer (versions carry the partition's state epoch), sorted; and
// the epoch of each partition.
func restoredState(t *testing.T, cfg config.Config) ([]string, map[int32]uint32) {
	t.Helper()
	engines := map[int32]*lapse.Engine{}
	epochs := map[int32]uint32{}
	for _, r := range consumeAll(t, cfg.Kafka.Brokers, cfg.Topics.State) {
		e := engines[r.Partition]
		if e == nil {
			e = lapse.NewEngine(cfg.Lapse, 3, time.Now())
			engines[r.Partition] = e
		}
		key := string(r.Key)
		var err error
		switch {
		case r.Value == nil:
		case key == changelogMeta:
			err = e.RestoreMeta(r.Value)
		case key == changelogEpoch:
			if len(r.Value) != 5 || r.Value[0] != 1 {
				t.Fatalf("partition %d offset %d: epoch record %x", r.Partition, r.Offset, r.Value)
			}
			epochs[r.Partition] = binary.BigEndian.Uint32(r.Value[1:])
		case strings.HasPrefix(key, "\x00"):
		default:
			err = e.RestoreCustomer(key, r.Value)
		}
		if err != nil {
			t.Fatalf("partition %d offset %d: %v", r.Partition, r.Offset, err)
		}
	}
	var out []string
	for p, e := range engines {
		e.Each(func(c *lapse.Customer) {
			a := c.Aggregate(e)
			out = append(out, aggregateLine(a.CustomerID, uint64(epochs[p])<<32|a.Version, a.AsOf/1000, a.LastOrderAt/1000,
				a.OrdersTotal, a.SpendTotal, a.Orders30d, a.Spend90d, a.EmailsDelivered30d, a.TicketsOpen, a.LastTriggerID))
		})
	}
	slices.Sort(out)
	return out, epochs
}

// clickhouseAggregates returns one line per row of customer_aggregates
// FINAL, sorted.
func clickhouseAggregates(t *testing.T, db *sql.DB, database string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT customer_id, version, toUnixTimestamp(as_of), ifNull(toUnixTimestamp(last_order_at), 0), orders_total, spend_total,
		orders_30d, spend_90d, emails_delivered_30d, tickets_open, last_trigger_id FROM ` + database + `.customer_aggregates FINAL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, lastTrigger string
		var version uint64
		var asOf, lastOrder uint32
		var orders, orders30, emails30, ticketsOpen uint32
		var spend, spend90 float64
		if err := rows.Scan(&id, &version, &asOf, &lastOrder, &orders, &spend, &orders30, &spend90, &emails30, &ticketsOpen, &lastTrigger); err != nil {
			t.Fatal(err)
		}
		out = append(out, aggregateLine(id, version, int64(asOf), int64(lastOrder), orders, spend, orders30, spend90, emails30, ticketsOpen, lastTrigger))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// sameRows requires two sorted row sets to be equal, row by row.
func sameRows(t *testing.T, what string, want, got []string) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: nothing to compare; the test proves nothing", what)
	}
	missing, extra := diff(want, got)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("%s: %d rows missing from ClickHouse, e.g.\n  %s\n%d rows ClickHouse has and Kafka does not, e.g.\n  %s",
			what, len(missing), strings.Join(missing[:min(4, len(missing))], "\n  "), len(extra), strings.Join(extra[:min(4, len(extra))], "\n  "))
		return
	}
	t.Logf("%s: %d rows equal", what, len(want))
}

// truthConfig is a run whose trigger topic is JSON (decoded here without
// the registry).
func truthConfig(s *stack, run string) config.Config {
	cfg := runConfig(s.cfg, run)
	cfg.TriggerFormat = "json"
	return cfg
}

// produceOrders produces one placed order at `at` for each of the first n
// generated customers, keyed by customer id (murmur2).
func produceOrders(t *testing.T, cfg config.Config, n int, at time.Time) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Kafka.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for i := range n {
		id := fmt.Sprintf("c%06d", i+1)
		ev := event.Event{Kind: event.KindOrder, EventID: "last-" + id, CustomerID: id, Time: at.UnixMilli(),
			OrderType: event.OrderPlaced, OrderID: "o-last-" + id, Amount: 42, Currency: "EUR", Items: 1}
		recs = append(recs, &kgo.Record{Topic: cfg.Topics.Orders, Key: []byte(id), Value: codec.AppendEventJSON(nil, &ev)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// committedInput is the sum of the group's committed input offsets.
func committedInput(t *testing.T, cfg config.Config) int64 {
	t.Helper()
	n, err := inputCommitted(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// failCommits makes the broker fail the next n transactional offset
// commits with UNKNOWN_SERVER_ERROR, which makes the client abort the
// transaction; it returns how many it failed so far.
func failCommits(s *stack, n int32) *atomic.Int32 {
	var failed atomic.Int32
	c := s.k.Cluster()
	c.ControlKey(int16(kmsg.TxnOffsetCommit), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if failed.Load() >= n {
			return nil, nil, false
		}
		req := kreq.(*kmsg.TxnOffsetCommitRequest)
		resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewTxnOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.UnknownServerError.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		failed.Add(1)
		return resp, nil, true
	})
	return &failed
}

// faultsEvents is the size of TestClickHouseEqualsKafkaUnderFaults's
// stream: WINBACK_FAULTS_EVENTS, or defaultFaultsEvents.
func faultsEvents(t *testing.T) int {
	t.Helper()
	return envInt(t, "WINBACK_FAULTS_EVENTS", defaultFaultsEvents, 1000)
}

// defaultFaultsEvents is the stream of make test's fault loop.
const defaultFaultsEvents = 300_000

// recordsPerCustomer is about how many input records the generator makes
// for one customer over 300 days (seed 42: 68,468 for 300 customers,
// 301,676 for 1,322).
const recordsPerCustomer = 227

// TestClickHouseEqualsKafkaUnderFaults runs one instance through a fault
// loop: ClickHouse frozen (SIGSTOP) for 20 s, a SIGKILL between a commit
// and ClickHouse's confirmation of its rows, transactions aborted by the
// broker, schema registry 503 bursts that each fresh instance meets at
// its first schema lookup (its cache is empty), and SIGKILLs at random
// points; then the ClickHouse FINAL tables must equal, row by row, the
// committed trigger topic and the state a new owner restores from the
// changelog. The 20 s freeze, five times the flush deadline (half of the
// 8 s transaction timeout), must cost at most one aborted transaction and
// no rebalance. The stream is the generator's 300 days of mixed Avro and
// JSON records, faultsEvents of them (the 300k by default).
func TestClickHouseEqualsKafkaUnderFaults(t *testing.T) {
	s := newStack(t, 3)
	events := faultsEvents(t)
	customers := (events + recordsPerCustomer - 1) / recordsPerCustomer
	o := genOptions{customers: customers, days: 300, seed: 42, encoding: "mixed"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	st, err := produceTraffic(ctx, &s.cfg, &o, testenv.TestLogger(t), nil) // registers the schemas past the proxy
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: produced %d records for %d customers", time.Now().Format(time.TimeOnly), st.Records, customers)
	proxy := newBurstyRegistry(t, s.reg.URL())
	cfg := truthConfig(s, "truth")
	cfg.Registry.URL = proxy.url
	cfg.ClickHouse.AttemptTimeout = time.Second
	cfg.MaxPollRecords = 40 // many small transactions, so that the faults land mid-stream
	t.Cleanup(func() { _ = s.ch.Resume() })
	rng := rand.New(rand.NewPCG(18, 1))
	var instances []*instance
	start := func(cfg config.Config) *instance {
		in := startInstance(t, cfg, "truth")
		instances = append(instances, in)
		return in
	}

	// 1. A ClickHouse stall in the middle of the stream.
	in := start(cfg)
	in.waitReady(time.Minute)
	// Once input is committed (rows flow to ClickHouse).
	for deadline := time.Now().Add(30 * time.Second); committedInput(t, cfg) == 0; {
		if time.Now().After(deadline) {
			t.Fatalf("no input committed within 30 s of the start:\n%s", in.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if behind(t, cfg) == 0 {
		t.Fatal("the stream was processed before the first fault; it is too small to prove anything")
	}
	aborts0 := metricSum(t, in.http, "winback_transactions_aborted_total")
	commits0 := metricSum(t, in.http, "winback_transactions_committed_total")
	if err := s.ch.Pause(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second) // a flush under way when it froze gives up
	offsets0 := committedInput(t, cfg)
	time.Sleep(18 * time.Second)
	stalled := metricSum(t, in.http, "winback_transactions_committed_total")
	if moved := committedInput(t, cfg) - offsets0; moved > int64(cfg.MaxPollRecords) {
		t.Errorf("the group committed %d input records while ClickHouse was frozen; want at most one transaction's (%d)", moved, cfg.MaxPollRecords)
	}
	if err := s.ch.Resume(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for metricSum(t, in.http, "winback_transactions_committed_total") <= stalled+2 && time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
	}
	aborts := metricSum(t, in.http, "winback_transactions_aborted_total") - aborts0
	// Transactions that apply nothing (the merge waits for every input
	// of a task) have no ClickHouse rows and still commit during the
	// stall; they commit no input offset either.
	t.Logf("ClickHouse stall: %v transactions committed before it, %v during it, %v aborted",
		commits0, stalled-commits0, aborts)
	if aborts > 1 {
		t.Errorf("a 20 s ClickHouse stall cost %v aborted transactions, want at most 1", aborts)
	}
	if n := strings.Count(in.out.String(), "partitions revoked"); n > 0 {
		t.Errorf("a 20 s ClickHouse stall caused %d rebalances", n)
	}
	if metricSum(t, in.http, "winback_transactions_committed_total") <= stalled {
		t.Fatal("nothing committed after ClickHouse came back")
	}

	t.Logf("%s: stall done", time.Now().Format(time.TimeOnly))

	// 2. A kill between a commit and ClickHouse's confirmation of its
	// rows: the next owner must write them from the changelog.
	if err := s.ch.Pause(); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for metricSum(t, in.http, "winback_clickhouse_unconfirmed") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("no transaction committed rows while ClickHouse was frozen")
		}
		time.Sleep(20 * time.Millisecond)
	}
	in.kill()
	if err := s.ch.Resume(); err != nil {
		t.Fatal(err)
	}
	if behind(t, cfg) == 0 {
		t.Fatal("the stream was processed before the kill after a commit")
	}

	// 3. Transactions aborted by the broker, registry 503 bursts at
	// restarts, then kills.
	failed := failCommits(s, 4)
	midway, bursts := 0, 0
	for round := range 6 {
		// Not in round 0, whose instance meets the failed commits:
		// their aborts would replay a burst's failed records after
		// the burst, and so hide it.
		burst := round%2 == 1
		if burst {
			proxy.arm(registryBurst)
			bursts++
		}
		in = start(cfg)
		in.waitReady(time.Minute)
		if round == 0 {
			// The failed commits all land here, so that their aborts
			// do not replay (and so hide) a burst's failed records.
			for deadline := time.Now().Add(30 * time.Second); failed.Load() < 4; {
				if time.Now().After(deadline) {
					t.Fatalf("only %d of the 4 injected commit failures happened", failed.Load())
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		if burst {
			// Kill it only once it has aborted for the burst and
			// looked its schemas up again after it, so that the
			// stream moves on.
			proxy.waitBurstOver(t, in)
		}
		time.Sleep(time.Duration(100+rng.IntN(500)) * time.Millisecond)
		in.kill()
		if behind(t, cfg) > 0 {
			midway++
		}
	}
	if midway < 3 {
		t.Fatalf("only %d of 6 kills landed before the input was processed", midway)
	}
	if failed.Load() == 0 {
		t.Fatal("no transaction was aborted by the injected commit failures")
	}
	t.Logf("%s: faults done", time.Now().Format(time.TimeOnly))
	t.Logf("%d kills mid-stream, %d commits failed by the broker", midway, failed.Load())

	last := cfg
	last.MaxPollRecords = 2000 // no faults while it drains: larger transactions
	// No follow of quiet tasks (timers fired by the wall clock) in step 4:
	// the transaction that commits while ClickHouse is frozen is the
	// orders'.
	last.Lapse.IdleTimeout = time.Hour
	proxy.arm(registryBurst) // one more burst at the drain's start
	bursts++
	in = start(last)
	waitCaughtUp(t, cfg.Kafka.Brokers, cfg.Kafka.Group, 5*time.Minute, inputs(cfg)...)
	proxy.waitBurstOver(t, in)

	// 4. One more order from every customer while ClickHouse is frozen,
	// and a kill once a transaction with some of them has committed: only
	// the next owner's restore can write its rows.
	deadline = time.Now().Add(30 * time.Second)
	for metricSum(t, in.http, "winback_clickhouse_unconfirmed") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("ClickHouse did not confirm the drained stream")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.ch.Pause(); err != nil {
		t.Fatal(err)
	}
	before := committedInput(t, cfg)
	produceOrders(t, cfg, customers, time.Now().Add(-time.Hour))
	// The first transaction with some of them commits; the next waits
	// for ClickHouse.
	deadline = time.Now().Add(30 * time.Second)
	for committedInput(t, cfg) == before || metricSum(t, in.http, "winback_clickhouse_unconfirmed") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("no order was committed while ClickHouse was frozen")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("%d of the %d orders committed while ClickHouse was frozen", committedInput(t, cfg)-before, customers)
	in.kill()
	if err := s.ch.Resume(); err != nil {
		t.Fatal(err)
	}
	in = start(last)
	waitCaughtUp(t, cfg.Kafka.Brokers, cfg.Kafka.Group, time.Minute, inputs(cfg)...)
	in.stop(cfg.ShutdownTimeout)

	// The registry bursts must have bitten: 503s served to schema
	// lookups, and transactions aborted for records whose schema could
	// not be looked up (not dead-lettered: the DLQ holds none of them).
	regAborts := 0
	for _, in := range instances {
		regAborts += registryAborts(in)
	}
	served := proxy.served.Load()
	t.Logf("registry: %d bursts, %d answers 503 (%d to schema lookups), %d transactions aborted for %s",
		bursts, served, proxy.servedLookups.Load(), regAborts, decode.ReasonRegistryUnavailable)
	if proxy.servedLookups.Load() < int64(bursts) {
		t.Errorf("%d schema lookups answered 503 in %d bursts; want at least one each", proxy.servedLookups.Load(), bursts)
	}
	for _, r := range consumeAll(t, cfg.Kafka.Brokers, cfg.Topics.DLQ) {
		if reason := headerValue(r, kafka.HeaderReason); reason == string(decode.ReasonRegistryUnavailable) {
			t.Fatalf("a record was dead-lettered as %s (source %s@%s)", reason,
				headerValue(r, kafka.HeaderSourceTopic), headerValue(r, kafka.HeaderSourceOffset))
		}
	}

	t.Logf("%s: caught up", time.Now().Format(time.TimeOnly))
	db := openCH(t, cfg.ClickHouse.DSN)
	trigs := committedTriggers(t, cfg)
	if d := duplicates(slices.Compact(slices.Clone(trigs))); len(d) > 0 {
		t.Errorf("%d trigger records duplicated on the topic", len(d))
	}
	sameRows(t, "winback_triggers FINAL vs the committed trigger topic", trigs, clickhouseTriggers(t, db, cfg.ClickHouse.Database))
	t.Logf("%s: triggers compared", time.Now().Format(time.TimeOnly))
	state, _ := restoredState(t, cfg)
	sameRows(t, "customer_aggregates FINAL vs the state restored from the changelog", state, clickhouseAggregates(t, db, cfg.ClickHouse.Database))
	t.Logf("fault loop over %d records: %d instances (%d killed mid-stream in the loop), %d commits failed by the broker, %d registry bursts (%d answers 503)",
		st.Records, len(instances), midway, failed.Load(), bursts, served)
}

// registryAborts counts the transactions in's log says it aborted for a
// record whose schema could not be looked up.
func registryAborts(in *instance) int {
	n := 0
	for _, line := range strings.Split(in.out.String(), "\n") {
		if strings.Contains(line, "aborting transaction") && strings.Contains(line, string(decode.ReasonRegistryUnavailable)) {
			n++
		}
	}
	return n
}

// diagnose is what a failure needs of in: its warnings and errors (the
// rest of its log is mostly the Kafka client's), and its metrics of where
// each input stands.
func (in *instance) diagnose() string {
	var b strings.Builder
	for _, line := range strings.Split(in.out.String(), "\n") {
		if strings.Contains(line, `"level":"WARN"`) || strings.Contains(line, `"level":"ERROR"`) {
			b.WriteString(line + "\n")
		}
	}
	if resp, err := http.Get("http://" + in.http + "/metrics"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(body), "\n") {
			for _, m := range []string{"winback_consumer_lag_records", "winback_dlq_records_total", "winback_watermark_seconds",
				"winback_repartitioned_records_total", "winback_transactions_", "winback_transaction_ends_total"} {
				if strings.HasPrefix(line, m) {
					b.WriteString(line + "\n")
				}
			}
		}
	}
	return b.String()
}

// registryBurst is how long the schema registry answers 503 once a burst
// begins: longer than runConfig's registry.retry (3 s), so that the
// lookup that began it gives up.
const registryBurst = 4 * time.Second

// burstyRegistry is a reverse proxy in front of a schema registry that,
// once armed, answers 503 to every request for a while from the next
// schema lookup by id on: a burst that a fresh instance (empty schema
// cache) meets at its first fetch.
type burstyRegistry struct {
	url           string
	armed         atomic.Int64 // the next burst's length (ns), 0 when not armed
	until         atomic.Int64 // the current burst's end (unix ns)
	served        atomic.Int64 // requests answered 503
	servedLookups atomic.Int64 // schema lookups by id answered 503
	passedLookups atomic.Int64 // schema lookups by id passed on
	passedAtBurst atomic.Int64 // passedLookups when the current burst began
}

func newBurstyRegistry(t *testing.T, target string) *burstyRegistry {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	b := &burstyRegistry{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lookup := strings.HasPrefix(r.URL.Path, "/schemas/ids/")
		if d := b.armed.Load(); lookup && d > 0 && b.armed.CompareAndSwap(d, 0) {
			b.passedAtBurst.Store(b.passedLookups.Load())
			b.until.Store(time.Now().Add(time.Duration(d)).UnixNano())
		}
		if time.Now().UnixNano() < b.until.Load() {
			b.served.Add(1)
			if lookup {
				b.servedLookups.Add(1)
			}
			http.Error(w, `{"error_code":50301,"message":"registry unavailable (test burst)"}`, http.StatusServiceUnavailable)
			return
		}
		if lookup {
			b.passedLookups.Add(1)
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	b.url = srv.URL
	return b
}

// arm makes the next schema lookup by id begin a burst of d.
func (b *burstyRegistry) arm(d time.Duration) { b.armed.Store(int64(d)) }

// fired reports whether the armed burst began.
func (b *burstyRegistry) fired() bool { return b.armed.Load() == 0 }

// waitBurstOver waits until the armed burst began, in's schema lookups
// failed for it and in aborted a transaction since, and a schema lookup
// passed after the burst. Records whose lookup failed wait in their queue
// (the commit stops before them) until one of them is applied, which
// aborts for registry.unavailable, or until another abort (ClickHouse
// too slow, say) rolls the queue back and the replay meets the registry
// again: either way a transaction aborts, and none commits past them
// (the dead-letter check and the final comparisons show that).
func (b *burstyRegistry) waitBurstOver(t *testing.T, in *instance) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !b.fired() {
		if time.Now().After(deadline) {
			t.Fatalf("the registry burst never began: %s looked no schema up", in.name)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for !strings.Contains(in.out.String(), "schema registry lookup failed") ||
		metricSum(t, in.http, "winback_transactions_aborted_total") == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s met a registry burst and aborted no transaction for it:\n%s", in.name, in.diagnose())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for b.passedLookups.Load() == b.passedAtBurst.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("%s looked no schema up after the registry burst", in.name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runsOf returns what a test of consecutive runs over cfg does between its
// checks: produce more input, and run an instance until it has read all of
// it, then stop it.
func runsOf(t *testing.T, cfg config.Config, name string) (produce func(genOptions), run func()) {
	produce = func(o genOptions) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := produceTraffic(ctx, &cfg, &o, testenv.TestLogger(t), nil); err != nil {
			t.Fatal(err)
		}
	}
	run = func() {
		in := startInstance(t, cfg, name)
		waitCaughtUp(t, cfg.Kafka.Brokers, cfg.Kafka.Group, 2*time.Minute, inputs(cfg)...)
		in.stop(cfg.ShutdownTimeout)
	}
	return produce, run
}

// TestRecreatedChangelog loses the state (the changelog is deleted and
// recreated, the group's offsets kept) and goes on with new input: the
// rebuilt customers restart their version counters, and
// customer_aggregates FINAL must still show their new state, not the
// higher-counted rows of the lost one.
func TestRecreatedChangelog(t *testing.T) {
	s := newStack(t, 3)
	cfg := truthConfig(s, "recreate")
	day := time.Now().UTC().Truncate(24 * time.Hour)
	produce, run := runsOf(t, cfg, "recreate")
	produce(genOptions{customers: 60, days: 240, seed: 3, encoding: "json", end: day.AddDate(0, 0, -40).Format(time.DateOnly)})
	run()
	db := openCH(t, cfg.ClickHouse.DSN)
	before := map[string]uint64{}
	oldState, oldEpochs := restoredState(t, cfg)
	for _, line := range clickhouseAggregates(t, db, cfg.ClickHouse.Database) {
		f := strings.Fields(line)
		v, _ := strconv.ParseUint(strings.TrimPrefix(f[1], "v="), 10, 64)
		before[f[0]] = v
	}
	if len(before) == 0 || len(oldState) == 0 {
		t.Fatal("the first run left no customers")
	}

	// The state is lost: the changelog is deleted and created again, empty.
	adm, err := kadm.NewOptClient(kgo.SeedBrokers(cfg.Kafka.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := adm.DeleteTopics(ctx, cfg.Topics.State); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	if err := s.k.CreateTopics(ctx, 3, true, cfg.Topics.State); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // epochs are whole seconds

	produce(genOptions{customers: 60, days: 30, seed: 4, encoding: "json", end: day.Format(time.DateOnly)})
	run()
	newState, newEpochs := restoredState(t, cfg)
	got := clickhouseAggregates(t, db, cfg.ClickHouse.Database)
	byID := map[string]string{}
	for _, line := range got {
		byID[strings.Fields(line)[0]] = line
	}
	lower := 0
	for _, want := range newState {
		id := strings.Fields(want)[0]
		if byID[id] != want {
			t.Errorf("customer %s: ClickHouse shows\n  %s\nthe rebuilt state is\n  %s", id, byID[id], want)
		}
		f := strings.Fields(want)
		v, _ := strconv.ParseUint(strings.TrimPrefix(f[1], "v="), 10, 64)
		if old, ok := before[id]; ok && v&(1<<32-1) < old&(1<<32-1) {
			lower++
		}
	}
	for p, e := range newEpochs {
		if e <= oldEpochs[p] {
			t.Errorf("partition %d: epoch %d after the rebuild, %d before; want it higher", p, e, oldEpochs[p])
		}
	}
	if lower == 0 {
		t.Fatal("no rebuilt customer has a lower version counter than before; the test proves nothing")
	}
	t.Logf("%d customers rebuilt, %d of them with a lower counter than their old row; all show the new state", len(newState), lower)
}
