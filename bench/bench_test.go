package main

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"
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
`
	w := workOf("winback", text)
	if w.Transactions != 12 || w.BatchSeconds != 10.5 || w.FlushSeconds != 7.25 ||
		w.Rows["customer_aggregates"] != 1000 || w.Rows["customer_daily"] != 900 || len(w.Rows) != 2 {
		t.Fatalf("workOf = %+v", w)
	}
	if got, want := w.summary(), "winback: 12 transactions, 10.50 s in them, of which 7.25 s waiting for ClickHouse flushes; ClickHouse rows: customer_aggregates 1000, customer_daily 900"; got != want {
		t.Fatalf("summary\n got %s\nwant %s", got, want)
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
