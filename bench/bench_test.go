package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/event"
)

// goka must put every key in the partition franz-go (and Kafka's Java
// client) put its input in, or its group table would not line up.
func TestMurmur2HasherPartitionsLikeFranzGo(t *testing.T) {
	kp := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	sp := sarama.NewCustomHashPartitioner(murmur2Hasher)("t")
	for _, n := range []int{1, 3, 6, 7, 32} {
		for i := range 20000 {
			key := fmt.Sprintf("c%06d", i)
			want := kp.Partition(&kgo.Record{Key: []byte(key)}, n)
			got, err := sp.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(key)}, int32(n))
			if err != nil {
				t.Fatal(err)
			}
			if int(got) != want {
				t.Fatalf("key %s, %d partitions: sarama+murmur2Hasher gives %d, franz-go %d", key, n, got, want)
			}
		}
	}
}

func TestCustomerStateCodecRoundTrip(t *testing.T) {
	f := func(s customerState) {
		t.Helper()
		b, err := customerStateCodec{}.Encode(&s)
		if err != nil {
			t.Fatal(err)
		}
		v, err := customerStateCodec{}.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := *v.(*customerState); got != s {
			t.Fatalf("round trip: got %+v, want %+v", got, s)
		}
	}
	f(customerState{})
	f(customerState{Orders: 7, Emails: 1 << 31, Tickets: 3, Spend: -12.5, FirstOrderAt: 1, LastOrderAt: 1767225600000, LastOrderID: "o-123"})
	if _, err := (customerStateCodec{}).Decode([]byte("short")); err == nil {
		t.Fatal("Decode of 5 bytes: no error")
	}
}

func TestGokaEventCodecMarksBadInput(t *testing.T) {
	f := func(in string, bad bool) {
		t.Helper()
		v, err := gokaEventCodec{}.Decode([]byte(in))
		if err != nil {
			t.Fatalf("Decode(%q): %v (goka would stop the processor)", in, err)
		}
		if got := v.(*gokaEvent).bad; got != bad {
			t.Fatalf("Decode(%q).bad = %v, want %v", in, got, bad)
		}
	}
	f(`{"event_id":"e1","customer_id":"c000001","event_time":1767225600000,"type":"PLACED","order_id":"o1","amount":12.5}`, false)
	f(`{"customer_id":""}`, true)
	f(`not json`, true)
	f(``, true)
}

func TestCustomerStateApply(t *testing.T) {
	var s customerState
	s.apply("order", &gokaEvent{Type: "PLACED", Amount: 10, EventTime: 200, OrderID: "b"})
	s.apply("order", &gokaEvent{Type: "PLACED", Amount: 5, EventTime: 100, OrderID: "a"})
	s.apply("order", &gokaEvent{Type: "REFUNDED", Amount: 2, EventTime: 300})
	s.apply("email", &gokaEvent{Type: "OPENED"})
	s.apply("support", &gokaEvent{Type: "OPENED"})
	want := customerState{Orders: 2, Emails: 1, Tickets: 1, Spend: 13, FirstOrderAt: 100, LastOrderAt: 200, LastOrderID: "b"}
	if s != want {
		t.Fatalf("got %+v, want %+v", s, want)
	}
}

func TestHistogramDelta(t *testing.T) {
	metrics := func(counts ...int) string {
		les := []string{"0.01", "0.1", "1", "+Inf"}
		var b strings.Builder
		b.WriteString("# TYPE winback_trigger_latency_seconds histogram\n")
		for i, le := range les {
			fmt.Fprintf(&b, "winback_trigger_latency_seconds_bucket{le=%q} %d\n", le, counts[i])
		}
		fmt.Fprintf(&b, "winback_trigger_latency_seconds_count %d\nother_bucket{le=\"1\"} 99\n", counts[len(counts)-1])
		return b.String()
	}
	// 100 new observations, all between 0.01 and 0.1.
	n, p50, p99 := histogramDelta(metrics(5, 5, 5, 5), metrics(5, 105, 105, 105), "winback_trigger_latency_seconds")
	if n != 100 {
		t.Fatalf("n = %v, want 100", n)
	}
	if math.Abs(p50-0.055) > 1e-9 || math.Abs(p99-0.0991) > 1e-9 {
		t.Fatalf("p50 %v, p99 %v; want 0.055 and 0.0991 (linear within the bucket)", p50, p99)
	}
	if n, _, _ := histogramDelta(metrics(1, 2, 3, 4), metrics(1, 2, 3, 4), "winback_trigger_latency_seconds"); n != 0 {
		t.Fatalf("no new observations: n = %v", n)
	}
}

func TestQuantile(t *testing.T) {
	v := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, c := range []struct{ q, want float64 }{{0.5, 5}, {0.99, 10}, {0.1, 1}, {0, 1}} {
		if got := quantile(v, c.q); got != c.want {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
}

func TestRatiosAndMarkdown(t *testing.T) {
	r := &report{Lines: []line{
		{Name: "ceiling", Events: 100, CPU: 1, PerCore: 100},
		{Name: "goka-leveldb", Events: 100, CPU: 10, PerCore: 10},
		{Name: "winback", Events: 100, CPU: 2, PerCore: 50},
		{Name: "goka-memory", Error: "boom"},
	}}
	ratios(r.Lines)
	if got := r.Lines[2]; got.VsCeiling != 0.5 || got.VsGoka != 5 {
		t.Fatalf("winback ratios: vs ceiling %v, vs goka %v; want 0.5 and 5", got.VsCeiling, got.VsGoka)
	}
	md := r.markdown()
	for _, want := range []string{"| winback | 100 |", "| 0.50× | 5.00× |", "FAILED: boom", "|---|--:|"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestProcReadsThisProcess(t *testing.T) {
	x := 0.0
	for i := range 30_000_000 {
		x += math.Sqrt(float64(i))
	}
	_ = x
	if procPeakRSS(os.Getpid()) <= 0 {
		t.Fatal("procPeakRSS of this process is 0")
	}
	if procCPU(os.Getpid()) <= 0 {
		t.Fatal("procCPU of this process is 0 after spinning")
	}
}

func TestWorkOf(t *testing.T) {
	text := `# HELP winback_transactions_committed_total Kafka transactions committed.
# TYPE winback_transactions_committed_total counter
winback_transactions_committed_total 12
# TYPE winback_batch_duration_seconds histogram
winback_batch_duration_seconds_bucket{le="1"} 10
winback_batch_duration_seconds_bucket{le="+Inf"} 12
winback_batch_duration_seconds_sum 10.5
winback_batch_duration_seconds_count 12
# TYPE winback_clickhouse_flush_seconds histogram
winback_clickhouse_flush_seconds_bucket{le="+Inf"} 12
winback_clickhouse_flush_seconds_sum 7.25
winback_clickhouse_flush_seconds_count 12
# TYPE winback_clickhouse_rows_total counter
winback_clickhouse_rows_total{table="customer_aggregates"} 1000
winback_clickhouse_rows_total{table="customer_daily"} 900
# TYPE winback_clickhouse_batches_total counter
winback_clickhouse_batches_total{table="customer_aggregates"} 20
winback_clickhouse_batches_total{table="customer_daily"} 4
# TYPE winback_triggers_total counter
winback_triggers_total{action="EMAIL",kind="WINBACK",reason="PURCHASE_LAPSE",tier="HIGH",treatment="TREATED"} 30
winback_triggers_total{action="EMAIL",kind="WINBACK",reason="PURCHASE_LAPSE",tier="LOW",treatment="CONTROL"} 5
winback_triggers_total{action="NONE",kind="RECOVERED",reason="PURCHASE_LAPSE",tier="LOW",treatment="TREATED"} 2
winback_triggers_total{action="NONE",kind="WINBACK",reason="LOW_SATISFACTION",tier="LOW",treatment="TREATED"} 0
# TYPE winback_transaction_ends_total counter
winback_transaction_ends_total{cause="interval"} 9
winback_transaction_ends_total{cause="shutdown"} 0
# TYPE go_memstats_heap_alloc_bytes gauge
go_memstats_heap_alloc_bytes 4e+06
# TYPE winback_customers_tracked gauge
winback_customers_tracked{partition="0"} 6000
winback_customers_tracked{partition="1"} 4000
`
	w := workOf("winback", text)
	if w.Transactions != 12 || w.BatchSeconds != 10.5 || w.FlushSeconds != 7.25 || w.Inserts != 24 ||
		w.Rows["customer_aggregates"] != 1000 || w.Rows["customer_daily"] != 900 || len(w.Rows) != 2 {
		t.Fatalf("workOf = %+v", w)
	}
	if w.Triggers["WINBACK/PURCHASE_LAPSE"] != 35 || w.Triggers["RECOVERED/PURCHASE_LAPSE"] != 2 || len(w.Triggers) != 2 || w.TriggerCount() != 37 {
		t.Fatalf("triggers = %v (count %v); want WINBACK/PURCHASE_LAPSE 35, RECOVERED/PURCHASE_LAPSE 2, no zero series", w.Triggers, w.TriggerCount())
	}
	if len(w.Ends) != 1 || w.Ends["interval"] != 9 {
		t.Fatalf("transaction ends = %v, want interval 9 and no zero series", w.Ends)
	}
	if got := w.HeapPerCustomer(); got != 400 {
		t.Fatalf("heap per customer = %v, want 4e6/10000 = 400", got)
	}
	w.Interval, w.IntervalS, w.MaxPollRecords, w.BatchRows, w.Events = "1s", 1, 100, 100000, 1200
	want := "winback (commit interval 1s, max_poll_records 100, clickhouse batch_rows 100000): 12 transactions (100 events and 0.875 s each on average; bounded by interval 9), " +
		"10.50 s in them, of which 7.25 s waiting for ClickHouse flushes; 24 ClickHouse inserts; rows: customer_aggregates 1000, customer_daily 900; " +
		"37 triggers emitted: RECOVERED/PURCHASE_LAPSE 2, WINBACK/PURCHASE_LAPSE 35"
	if got := w.summary(); got != want {
		t.Fatalf("summary\n got %s\nwant %s", got, want)
	}
	if w := workOf("x", "not metrics {"); w.Transactions != 0 || w.TriggerCount() != 0 || w.HeapPerCustomer() != 0 {
		t.Fatalf("workOf of a text that does not parse = %+v", w)
	}
}

func TestBound(t *testing.T) {
	for _, c := range []struct {
		name string
		w    winbackWork
		want string
	}{
		{"no transactions", winbackWork{MaxPollRecords: 100, IntervalS: 1, Events: 500}, "–"},
		{"full polls", winbackWork{MaxPollRecords: 100, IntervalS: 10, Events: 950, Transactions: 10, BatchSeconds: 2}, "max_poll_records (100)"},
		{"interval", winbackWork{MaxPollRecords: 100, IntervalS: 1, Events: 500, Transactions: 10, BatchSeconds: 9.5}, "commit interval"},
		{"neither", winbackWork{MaxPollRecords: 100, IntervalS: 1, Events: 500, Transactions: 10, BatchSeconds: 5}, "neither"},
		{"one poll", winbackWork{MaxPollRecords: 100, IntervalS: 0.1, Events: 500, Transactions: 10, BatchSeconds: 21}, "one poll (outlasted the interval)"},
		{"winback's causes, most first", winbackWork{MaxPollRecords: 100, IntervalS: 10, Events: 950, Transactions: 10, BatchSeconds: 2,
			Ends: map[string]float64{"interval": 3, "cache": 7}}, "cache 7, interval 3"},
	} {
		if got := c.w.Bound(); got != c.want {
			t.Errorf("%s: Bound() = %q, want %q", c.name, got, c.want)
		}
	}
}

func TestParseIntervals(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []time.Duration
		err  bool
	}{
		{"100ms,1s,10s", []time.Duration{100 * time.Millisecond, time.Second, 10 * time.Second}, false},
		{" 1s ", []time.Duration{time.Second}, false},
		{"", nil, true},
		{"1s,soon", nil, true},
		{"0s", nil, true},
		{"1s,1000ms", nil, true},
	} {
		got, err := parseIntervals(c.in)
		if (err != nil) != c.err || !slices.Equal(got, c.want) {
			t.Errorf("parseIntervals(%q) = %v, %v; want %v (error: %v)", c.in, got, err, c.want, c.err)
		}
	}
}

func TestEmailReceiverAndKeepRecord(t *testing.T) {
	for _, c := range []struct {
		id    string
		every int
		want  bool
	}{
		{"c000010", 1, true}, {"c000010", 0, true}, {"c000010", 5, true}, {"c000011", 5, false}, {"bogus", 5, false},
	} {
		if got := emailReceiver(c.id, c.every); got != c.want {
			t.Errorf("emailReceiver(%q, %d) = %v, want %v", c.id, c.every, got, c.want)
		}
	}
	mail := &gen.Record{Kind: event.KindEmail, Event: event.Event{CustomerID: "c000011"}}
	order := &gen.Record{Kind: event.KindOrder, Event: event.Event{CustomerID: "c000011"}}
	if keepRecord(mail, 5) || !keepRecord(order, 5) || !keepRecord(mail, 1) {
		t.Fatal("keepRecord must drop only the e-mail of customers who get none")
	}
}

// planEmail sizes the e-mail share so that the stream is about the
// events asked for; the count of the records actually kept checks it.
func TestPlanEmail(t *testing.T) {
	const customers, days = 300, 365
	count := func(every int) int {
		g, err := gen.New(genConfig(customers, days, 1))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		if err := g.Each(func(r *gen.Record) error {
			if keepRecord(r, every) {
				n++
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	all := count(1)
	every, est, err := planEmail(all/4, customers, days, 1)
	if err != nil {
		t.Fatal(err)
	}
	if every <= 1 || every >= 100 {
		t.Fatalf("planEmail(a quarter of the stream) = every %d; want a share between 1 and 100", every)
	}
	if got := count(every); math.Abs(float64(got-all/4)) > 0.25*float64(all/4) || math.Abs(float64(got-est)) > 0.25*float64(got) {
		t.Fatalf("every %d keeps %d records; asked for %d, estimated %d", every, got, all/4, est)
	}
	if every, _, _ := planEmail(10*all, customers, days, 1); every != 1 {
		t.Fatalf("planEmail(more than the whole stream) = every %d, want 1", every)
	}
	if every, _, _ := planEmail(1, customers, days, 1); every != 100 {
		t.Fatalf("planEmail(1 record) = every %d, want 100 (the floor)", every)
	}
	if from, to := streamStart(days), streamStart(days).AddDate(0, 0, days); to.After(time.Now()) || from.Year() != 2025 {
		t.Fatalf("a year of stream runs %s to %s; it must be over by now", from, to)
	}
}

func TestProbeCustomers(t *testing.T) {
	truth := []gen.Truth{
		{CustomerID: "c000001", MustNotTrigger: true}, {CustomerID: "c000002", MustNotTrigger: true},
		{CustomerID: "c000003"}, {CustomerID: "c000004", MustNotTrigger: true}, {CustomerID: "c000006", MustNotTrigger: true},
	}
	if got := probeCustomers(truth, 2, 0, 3); !slices.Equal(got, []string{"c000002", "c000004", "c000006"}) {
		t.Fatalf("first probes = %v; want the steady buyers who get e-mail first", got)
	}
	if got := probeCustomers(truth, 2, 3, 3); !slices.Equal(got, []string{"c000001"}) {
		t.Fatalf("probes after 3 = %v; want the one left", got)
	}
	if got := probeCustomers(truth, 2, 9, 3); len(got) != 0 {
		t.Fatalf("probes past the end = %v", got)
	}
}

func TestDBName(t *testing.T) {
	if got := dbName("winback-avro@100ms"); got != "bench_winback_avro_100ms" {
		t.Fatalf("dbName = %q", got)
	}
	if got := dbName("winback-avro@1.5s"); got != "bench_winback_avro_1_5s" {
		t.Fatalf("dbName = %q", got)
	}
}

func TestSweepTable(t *testing.T) {
	r := &report{
		Lines: []line{
			{Name: "ceiling", Events: 1000, CPU: 0.1, PerCore: 10000, PerCoreAll: 5000},
			{Name: "goka-leveldb", Events: 1000, CPU: 1, PerCore: 1000, PerCoreAll: 900},
			{Name: "clickhouse", Events: 1000, CPU: 0.5, PerCore: 2000, ServerCPU: 0.25, PerCoreAll: 1000},
			{Name: "winback-avro@100ms", Events: 1000, CPU: 0.4, PerCore: 2500, ServerCPU: 0.5, PerCoreAll: 1100},
			{Name: "winback-avro@10s", Error: "boom"},
		},
		Scheduled: []scheduledQuery{{AtS: 60, Lapsed: 3, Seconds: 0.1}, {AtS: 70, Lapsed: 7, Seconds: 0.2}},
		ScheduleS: 60,
		Engine:    []engineHeap{{Customers: 100000, BytesPerCust: 354.4}},
		Work: []winbackWork{
			{Run: "winback-avro@100ms", Interval: "100ms", IntervalS: 0.1, MaxPollRecords: 100000, Events: 1000, Transactions: 4, BatchSeconds: 0.4,
				Triggers: map[string]float64{"WINBACK/PURCHASE_LAPSE": 9}, HeapBytes: 3000, Customers: 10,
				Latency: &latencyResult{Probes: 5, Matched: 5, P99: 0.25, MetricP99: 0.2}},
			{Run: "winback-avro@10s", Interval: "10s"},
		},
	}
	ratios(r.Lines)
	md := r.markdown()
	for _, want := range []string{
		"| ceiling | – | 1000 | 10k | 1.00× | 10.00× | 0.00 µs | 5k | 5.00× |",
		"| clickhouse | query every 60 s | 1000 | 2k | 0.20× | 2.00× | 250.00 µs | 1k | 1.00× | up to 60 s + 200 ms | 7 lapsed found (2 query runs) |",
		"| winback-avro@100ms | 100ms | 1000 | 2k | 0.25× | 2.50× | 500.00 µs | 1k | 1.10× | 250 ms (metric 200 ms; 5/5) | 9 | 4 | 250 | commit interval | 300 B |",
		"| 60.0 | 0 | 0 | 3 | 100.0 |",
		"The lapse engine alone (below): 354 B at 100000 customers of heap per tracked customer.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "| winback-avro@10s | 10s") {
		t.Errorf("a failed run has a row in the sweep table:\n%s", md)
	}
}

func TestBudgets(t *testing.T) {
	ls := []line{
		{Name: "ceiling", Events: 1000, PerSecond: 1000},
		{Name: "winback", Events: 1000, PerSecond: 250, CPU: 3, BrokerCPU: 0.5, ServerCPU: 1.5},
		{Name: "winback-avro", Error: "boom"},
		{Name: "goka-leveldb", Events: 1000, PerSecond: 100},
	}
	bs := budgets(ls, 2)
	if len(bs) != 1 {
		t.Fatalf("budgets = %+v, want one (winback; the failed run and the peers have none)", bs)
	}
	b := bs[0]
	// 50% of 1000/s is 500/s: 1000 events in 2 s, 4 CPU s on 2 cores.
	if b.Share != 0.25 || b.TargetWall != 2 || b.CPUBudget != 4 || b.CPUUsed != 5 {
		t.Fatalf("budget = %+v; want share 0.25, 2 s, 4 CPU s budget, 5 CPU s used", b)
	}
	want := "winback: 250 events/s is 25% of the ceiling's 1k. At 50% of it, the 1000 events would take 2.00 s, so 4.00 CPU s on 2 cores for every process; " +
		"the run used 5.00 CPU s (1.2× that): winback's own 3.00 s (0.8×) and ClickHouse's inserts 1.50 s (0.4×)"
	if got := b.summary(); got != want {
		t.Fatalf("summary\n got %s\nwant %s", got, want)
	}
	if budgets(ls[1:], 2) != nil {
		t.Fatal("budgets without a ceiling line should be nil")
	}
}

// TestGitCommitIgnoresBenchOutputs: a run after another, before its
// results are committed, still names a clean commit; any other change is
// dirty.
func TestGitCommitIgnoresBenchOutputs(t *testing.T) {
	repo := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@t"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(repo, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("init", "-q")
	for _, f := range []string{"main.go", "bench/results.json", "bench/micro.txt", "bench/profiles/winback.cpu.pprof"} {
		write(f, "a")
	}
	git("add", "-A")
	git("commit", "-qm", "one")
	clean := gitCommit(repo)
	if clean == "" || strings.HasSuffix(clean, "-dirty") {
		t.Fatalf("gitCommit of a clean tree = %q", clean)
	}
	for _, f := range []string{"bench/results.json", "bench/micro.txt", "bench/profiles/winback.cpu.pprof"} {
		write(f, "b")
	}
	if got := gitCommit(repo); got != clean {
		t.Fatalf("with only bench outputs changed: %q, want %q", got, clean)
	}
	write("main.go", "b")
	if got := gitCommit(repo); got != clean+"-dirty" {
		t.Fatalf("with main.go changed: %q, want %q", got, clean+"-dirty")
	}
}
