package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newClient(t *testing.T, k *Kafka, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(k.Addr())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// produce writes n records key-i/value-i (i from 0) and waits for the acks.
func produce(t *testing.T, cl *kgo.Client, topic string, from, n int) {
	t.Helper()
	var rs []*kgo.Record
	for i := from; i < from+n; i++ {
		rs = append(rs, &kgo.Record{Topic: topic, Key: []byte("key-" + strconv.Itoa(i)), Value: []byte("value-" + strconv.Itoa(i))})
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// consumeValues polls until it has n records and returns their values sorted.
func consumeValues(t *testing.T, ctx context.Context, cl *kgo.Client, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", len(got), n, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	slices.Sort(got)
	return got
}

func values(from, n int) []string {
	var vs []string
	for i := from; i < from+n; i++ {
		vs = append(vs, "value-"+strconv.Itoa(i))
	}
	slices.Sort(vs)
	return vs
}

func TestKafkaTopics(t *testing.T) {
	ctx := testCtx(t)
	k, err := StartKafka(ctx, KafkaOptions{
		Topics:          []string{"orders", "email-events"},
		CompactedTopics: []string{"winback-state"},
		Logger:          TestLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	if !strings.HasPrefix(k.Addr(), "127.0.0.1:") || strings.HasSuffix(k.Addr(), ":0") {
		t.Fatalf("Addr() = %q, want 127.0.0.1:<port>", k.Addr())
	}
	// Idempotent: existing topics are fine; a new one gets its own count.
	if err := k.CreateTopics(ctx, 0, false, "orders", "winback-triggers"); err != nil {
		t.Fatalf("CreateTopics again: %v", err)
	}
	if err := k.CreateTopics(ctx, 2, false, "two"); err != nil {
		t.Fatal(err)
	}

	adm := kadm.NewClient(newClient(t, k))
	td, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"orders": 6, "email-events": 6, "winback-state": 6, "winback-triggers": 6, "two": 2}
	got := map[string]int{}
	for _, d := range td.Sorted() {
		got[d.Topic] = len(d.Partitions)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("topics and partition counts = %v, want %v", got, want)
	}

	cfgs, err := adm.DescribeTopicConfigs(ctx, "winback-state", "orders")
	if err != nil {
		t.Fatal(err)
	}
	policy := map[string]string{}
	for _, rc := range cfgs {
		if rc.Err != nil {
			t.Fatalf("describe %s: %v", rc.Name, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Key == "cleanup.policy" {
				policy[rc.Name] = c.MaybeValue()
			}
		}
	}
	if policy["winback-state"] != "compact" || policy["orders"] == "compact" {
		t.Fatalf("cleanup.policy = %v, want winback-state compact and orders not", policy)
	}
}

// TestKafkaTransactionsAndGroups proves what winback relies on: a
// transactional producer's aborted records are invisible to a
// read_committed group consumer, and the group commits offsets.
func TestKafkaTransactionsAndGroups(t *testing.T) {
	ctx := testCtx(t)
	k := NewKafka(t, "in")

	prod := newClient(t, k, kgo.TransactionalID("txn-test"), kgo.DefaultProduceTopic("in"))
	for i, commit := range []bool{true, false, true} {
		if err := prod.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		produce(t, prod, "in", i*10, 10)
		if err := prod.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end transaction %d: %v", i, err)
		}
	}

	cons := newClient(t, k,
		kgo.ConsumerGroup("g"), kgo.ConsumeTopics("in"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit())
	got := consumeValues(t, ctx, cons, 20)
	want := append(values(0, 10), values(20, 10)...)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("read_committed consumer got %v, want committed records %v", got, want)
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	offs, err := kadm.NewClient(newClient(t, k)).FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	// 30 data records plus 3 transaction markers: committed offsets sum
	// to 33 once the consumer has read past every marker, at least 20
	// even if it stopped right after the last committed record.
	var sum int64
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum < 20 {
		t.Fatalf("group g committed offsets summing to %d, want >= 20", sum)
	}
}

// TestKafkaKcat proves an outside client (librdkafka's kcat) can read
// metadata, produce and consume.
func TestKafkaKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat not installed (run scripts/deps.sh): %v", err)
	}
	ctx := testCtx(t)
	k := NewKafka(t, "kcat-in", "go-in")
	run := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, kcat, append([]string{"-b", k.Addr()}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kcat %v: %v\n%s", args, err, stderr.String())
		}
		return string(out)
	}

	meta := run("", "-L")
	for _, want := range []string{"1 brokers:", k.Addr(), `topic "kcat-in" with 6 partitions`, `topic "go-in" with 6 partitions`} {
		if !strings.Contains(meta, want) {
			t.Fatalf("kcat -L output lacks %q:\n%s", want, meta)
		}
	}

	// kcat produces, Go consumes; -K: splits at the first colon only, so
	// JSON values pass intact.
	json := `{"customer_id":"c3","n":3}`
	run("k1:value-1\nk2:value-2\nc3:"+json+"\n", "-P", "-t", "kcat-in", "-K:")
	cl := newClient(t, k, kgo.ConsumeTopics("kcat-in"))
	if got := consumeValues(t, ctx, cl, 3); !slices.Equal(got, []string{"value-1", "value-2", json}) {
		t.Fatalf("Go consumer got %v from kcat's records", got)
	}

	// Go produces, kcat consumes (-e: exit at the end of every partition).
	produce(t, newClient(t, k), "go-in", 0, 5)
	out := run("", "-C", "-t", "go-in", "-X", "isolation.level=read_committed", "-o", "beginning", "-e", "-q", "-f", "%k=%s\n")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	slices.Sort(lines)
	want := []string{"key-0=value-0", "key-1=value-1", "key-2=value-2", "key-3=value-3", "key-4=value-4"}
	if !slices.Equal(lines, want) {
		t.Fatalf("kcat consumed %q, want %q", lines, want)
	}
}

// TestKafkaDataDir restarts a cluster on the same directory and port: the
// topics, records and committed group offsets survive.
func TestKafkaDataDir(t *testing.T) {
	ctx := testCtx(t)
	dir := t.TempDir()
	k1, err := StartKafka(ctx, KafkaOptions{DataDir: dir, SyncWrites: true, Topics: []string{"persist"}, Partitions: 3, Logger: TestLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	addr := k1.Addr()
	func() {
		defer k1.Close()
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup("pg"), kgo.ConsumeTopics("persist"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		produce(t, cl, "persist", 0, 50)
		if got := consumeValues(t, ctx, cl, 50); !slices.Equal(got, values(0, 50)) {
			t.Fatalf("before restart got %v", got)
		}
		if err := cl.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatal(err)
		}
		produce(t, cl, "persist", 50, 20) // not yet consumed by pg
	}()

	k2, err := StartKafka(ctx, KafkaOptions{Addr: addr, DataDir: dir, Logger: TestLogger(t)})
	if err != nil {
		t.Fatalf("restart on %s: %v", addr, err)
	}
	defer k2.Close()
	if k2.Addr() != addr {
		t.Fatalf("restarted on %s, want %s", k2.Addr(), addr)
	}
	all := newClient(t, k2, kgo.ConsumeTopics("persist"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if got := consumeValues(t, ctx, all, 70); !slices.Equal(got, values(0, 70)) {
		t.Fatalf("after restart got %d records %v, want the 70 produced", len(got), got)
	}
	// The group resumes after its committed offsets: only the last 20.
	grp := newClient(t, k2, kgo.ConsumerGroup("pg"), kgo.ConsumeTopics("persist"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if got := consumeValues(t, ctx, grp, 20); !slices.Equal(got, values(50, 20)) {
		t.Fatalf("group after restart got %v, want records 50..69", got)
	}
}

func TestKafkaFixedPortBusy(t *testing.T) {
	ctx := testCtx(t)
	k := NewKafka(t)
	_, err := StartKafka(ctx, KafkaOptions{Addr: k.Addr()})
	if err == nil {
		t.Fatalf("second cluster on busy %s started", k.Addr())
	}
	if !strings.Contains(err.Error(), k.Addr()[len("127.0.0.1:"):]) {
		t.Fatalf("error %q does not name the port", err)
	}
}

func TestLoopbackPort(t *testing.T) {
	f := func(addr string, want int, wantErr bool) {
		t.Helper()
		got, err := loopbackPort(addr)
		var ae *AddrError
		if wantErr {
			if !errors.As(err, &ae) || ae.Addr != addr {
				t.Fatalf("loopbackPort(%q) error = %v, want *AddrError", addr, err)
			}
			return
		}
		if err != nil || got != want {
			t.Fatalf("loopbackPort(%q) = %d, %v; want %d", addr, got, err, want)
		}
	}
	f("", 0, false)
	f(":0", 0, false)
	f("127.0.0.1:9092", 9092, false)
	f("localhost:19092", 19092, false)
	f(":9092", 9092, false)
	f("127.0.0.1:", 0, false)
	f("10.0.0.1:9092", 0, true)
	f("0.0.0.0:9092", 0, true)
	f("9092", 0, true)
	f("127.0.0.1:99999", 0, true)
	f("127.0.0.1:http", 0, true)
}
