package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/consume"
	"github.com/winback/winback/testenv"
)

// devProcess is `winback dev` running as a child process with JSON
// triggers, reached only through kcat and HTTP.
type devProcess struct {
	kafka, http string
	kcat        string
	out         *bytes.Buffer
}

// startDev starts `winback dev` on free ports with a fresh ClickHouse
// database and the extra flags given; it is stopped with SIGTERM at the
// end of the test, which must exit 0.
func startDev(t *testing.T, database string, extra ...string) *devProcess {
	t.Helper()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat is not installed (make deps installs it): %v", err)
	}
	ch := testenv.NewClickHouse(t)
	d := &devProcess{kafka: freeAddr(t), http: freeAddr(t), kcat: kcat, out: &bytes.Buffer{}}
	args := append([]string{"dev",
		"--kafka-addr", d.kafka, "--registry-addr", freeAddr(t), "--clickhouse", ch.DSN(),
		"--clickhouse-database", database, "--trigger-format", "json",
		"--http-addr", d.http, "--commit-interval", "200ms"}, extra...)
	cmd := exec.Command(binPath, args...)
	cmd.Stdout, cmd.Stderr = d.out, d.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("winback dev exited with %v after SIGTERM; output:\n%s", err, d.out.String())
			}
		case <-time.After(45 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("winback dev did not exit within 45s of SIGTERM; output:\n%s", d.out.String())
		}
	})
	waitReady(t, d.http, 90*time.Second)
	return d
}

// kc runs kcat against the dev broker with stdin and returns its output.
func (d *devProcess) kc(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	c := exec.Command(d.kcat, append([]string{"-b", d.kafka}, args...)...)
	c.Stdin = strings.NewReader(stdin)
	b, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("kcat %v: %v\n%s", args, err, b)
	}
	return string(b)
}

// jsonTrigger is the JSON trigger contract, as far as the tests read it.
type jsonTrigger struct {
	TriggerID     string             `json:"trigger_id"`
	CustomerID    string             `json:"customer_id"`
	Kind          string             `json:"kind"`
	PrimaryReason string             `json:"primary_reason"`
	Reasons       []string           `json:"reasons"`
	Priority      int                `json:"priority"`
	Action        string             `json:"recommended_action"`
	Evidence      map[string]float64 `json:"evidence"`
}

// line is every field of tr that a replay of its input reproduces, on one
// line: all of them but the wall times.
func (tr jsonTrigger) line() string {
	var ev strings.Builder
	for _, k := range slices.Sorted(maps.Keys(tr.Evidence)) {
		fmt.Fprintf(&ev, "%s=%v ", k, tr.Evidence[k])
	}
	return fmt.Sprintf("%s|%s|%s|%s|%v|%d|%s|%s", tr.TriggerID, tr.CustomerID, tr.Kind, tr.PrimaryReason, tr.Reasons, tr.Priority, tr.Action, ev.String())
}

// triggers reads every committed trigger with kcat.
func (d *devProcess) triggers(t *testing.T) []jsonTrigger {
	t.Helper()
	lines := d.kc(t, "", "-C", "-t", "winback-triggers", "-o", "beginning", "-e", "-q",
		"-X", "isolation.level=read_committed", "-f", "%s\n")
	var got []jsonTrigger
	for _, l := range strings.Split(strings.TrimSpace(lines), "\n") {
		if l == "" {
			continue
		}
		var tr jsonTrigger
		if err := json.Unmarshal([]byte(l), &tr); err != nil {
			t.Fatalf("trigger is not JSON: %v: %q", err, l)
		}
		got = append(got, tr)
	}
	return got
}

// quietOrders is the quiet-partition scenario's orders as kcat input
// (key|value lines): twelve weekly orders of customer a, the last one 83
// days before now, then 23 weekly orders of customer b up to 6 days
// before now.
func quietOrders(a, b string, now time.Time) string {
	var orders strings.Builder
	order := func(cust string, n int, at time.Time) {
		fmt.Fprintf(&orders, `%s|{"event_id":"%s-%d","customer_id":"%s","event_time":"%s","type":"PLACED","order_id":"%s-o%d","amount":30.0,"currency":"EUR","items":1}`+"\n",
			cust, cust, n, cust, at.Format(time.RFC3339), cust, n)
	}
	for i := range 12 {
		order(a, i, now.AddDate(0, 0, -83-7*(11-i)))
	}
	for i := range 23 {
		order(b, i, now.AddDate(0, 0, -6-7*(22-i)))
	}
	return orders.String()
}

// TestKcatQuietPartition is the quiet-partition scenario from outside:
// plain kcat (librdkafka's default CRC32 partitioner, no flags) produces
// twelve weekly orders of customer A, the last one 83 days ago, and 23
// weekly orders of customer B up to 6 days ago, on different tasks. A's
// task hears nothing after its own orders, so only the pipeline's event
// time (B's) can bring A's silence due: A gets a PURCHASE_LAPSE within
// the idle timeout plus 10 s of B's orders being processed, B nothing.
func TestKcatQuietPartition(t *testing.T) {
	const partitions = 4
	d := startDev(t, "quiet", "--partitions", fmt.Sprint(partitions), "--lapse-idle-timeout", "3s")
	// Two ids in different tasks (murmur2), so that A's task really is
	// quiet.
	a, b := "quiet-a", ""
	for i := 0; b == ""; i++ {
		if c := fmt.Sprintf("steady-b%d", i); consume.PartitionOf(c, partitions) != consume.PartitionOf(a, partitions) {
			b = c
		}
	}
	now := time.Now().UTC()
	d.kc(t, quietOrders(a, b, now), "-P", "-t", "orders", "-K", "|")
	produced := time.Now()

	var got []jsonTrigger
	for deadline := produced.Add(3*time.Second + 10*time.Second + 5*time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if got = d.triggers(t); len(got) > 0 {
			break
		}
	}
	if len(got) != 1 {
		t.Fatalf("want one trigger (PURCHASE_LAPSE for %s) within the idle timeout + 10 s, got %d: %+v\nwinback output:\n%s", a, len(got), got, d.out.String())
	}
	if tr := got[0]; tr.CustomerID != a || tr.PrimaryReason != "PURCHASE_LAPSE" {
		t.Fatalf("unexpected trigger %+v", tr)
	}
	t.Logf("A's PURCHASE_LAPSE committed %.1fs after kcat produced", time.Since(produced).Seconds())
	// One e-mail dated six days ahead (a producer's clock gone wrong)
	// must not move event time: it is dead-lettered, and no timer fires
	// early, however long the pipeline idles after it.
	d.kc(t, fmt.Sprintf(`%s|{"event_id":"future-1","customer_id":"%s","event_time":%d,"type":"DELIVERED","campaign_id":"c"}`+"\n",
		b, b, now.AddDate(0, 0, 6).UnixMilli()), "-P", "-t", "email-events", "-K", "|")
	var dlq string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(300 * time.Millisecond) {
		if dlq = d.kc(t, "", "-C", "-t", "winback-dlq", "-o", "beginning", "-e", "-q", "-X", "isolation.level=read_committed", "-f", "%h\n"); strings.Contains(dlq, "time.in_future") {
			break
		}
	}
	if !strings.Contains(dlq, "winback.reason=time.in_future") {
		t.Errorf("the e-mail six days ahead is not dead-lettered as time.in_future: %q", dlq)
	}
	// B stays quiet; nothing else fires while the pipeline idles.
	time.Sleep(3 * time.Second)
	if got := d.triggers(t); len(got) != 1 {
		t.Fatalf("after idling: %d triggers, want 1: %+v", len(got), got)
	}
	// Both customers are whole in their tasks: kcat's partitioner put
	// some of their orders elsewhere, and the repartition topic brought
	// them home.
	for cust, n := range map[string]int{a: 12, b: 23} {
		body := httpGet(t, "http://"+d.http+"/v1/customers/"+cust, 200)
		if !strings.Contains(body, fmt.Sprintf(`"orders_total":%d`, n)) {
			t.Errorf("customer %s: want %d orders in its state, got %s", cust, n, body)
		}
	}
	// librdkafka's consistent_random partitioner is CRC32 of the key
	// modulo the partition count: every record it put elsewhere than
	// murmur2 was forwarded once.
	want := 0
	for cust, n := range map[string]int{a: 12, b: 23} {
		if librdkafkaPartition([]byte(cust), partitions) != consume.PartitionOf(cust, partitions) {
			want += n
		}
	}
	if got := metricSum(t, d.http, "winback_repartitioned_records_total"); got != float64(want) {
		t.Errorf("winback_repartitioned_records_total = %v, want %d (records kcat placed off their murmur2 partition)", got, want)
	}
}

// metricSum adds up every series of a metric on the /metrics page.
func metricSum(t *testing.T, httpAddr, name string) float64 {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(httpGet(t, "http://"+httpAddr+"/metrics", 200)))
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	if mf := mfs[name]; mf != nil {
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// TestPartitionCountChange adds partitions to an input while winback runs:
// customers would re-hash into tasks without their state, so the process
// must stop within 30 s, non-zero, naming the topic, both counts and the
// procedure to follow.
func TestPartitionCountChange(t *testing.T) {
	ch := testenv.NewClickHouse(t)
	kafkaAddr, httpAddr := freeAddr(t), freeAddr(t)
	var out bytes.Buffer
	cmd := exec.Command(binPath, "dev", "--kafka-addr", kafkaAddr, "--registry-addr", freeAddr(t),
		"--clickhouse", ch.DSN(), "--clickhouse-database", "parts", "--partitions", "2",
		"--http-addr", httpAddr, "--commit-interval", "200ms")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	waitReady(t, httpAddr, 90*time.Second)

	adm, err := kadm.NewOptClient(kgo.SeedBrokers(kafkaAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := adm.CreatePartitions(ctx, 1, "email-events")
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatalf("add a partition: %v", err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("winback exited with %v, want a non-zero exit; output:\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("winback still runs 30 s after email-events went from 2 to 3 partitions; output:\n%s", out.String())
	}
	for _, want := range []string{"email-events", "from 2 to 3 partitions", "docs/production.md", "Changing the partition count"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("exit message lacks %q; output:\n%s", want, out.String())
		}
	}
}

// TestQuietPartitionAcrossInstances is the quiet-partition scenario with
// two `winback run` instances: plain kcat (CRC32) puts every order of a
// steady customer B in a partition one instance holds, while B's own task
// sits on the other instance beside the task of customer A, whose orders
// (in its own partition) move event time. B's task is quiet; it must not
// follow A's time before the first instance has forwarded B's orders, or
// B would look lapsed: A gets its PURCHASE_LAPSE, B nothing.
func TestQuietPartitionAcrossInstances(t *testing.T) {
	const partitions = 4
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Fatalf("kcat is not installed (make deps installs it): %v", err)
	}
	s := newStack(t, partitions)
	cfg := s.cfg
	cfg.Kafka.Group, cfg.Kafka.TransactionalID = "quiet-two", "quiet-two"
	cfg.Lapse.IdleTimeout = 3 * time.Second
	cfg.TriggerFormat = "json"
	ins := []*instance{startInstance(t, cfg, "q1"), startInstance(t, cfg, "q2")}
	for _, in := range ins {
		in.waitReady(time.Minute)
	}
	owned := make([][]int32, 2)
	waitFor(t, time.Minute, "two tasks on each instance", func() (struct{}, bool) {
		for i, in := range ins {
			if owned[i] = ownedPartitions(t, in.http); len(owned[i]) != 2 {
				return struct{}{}, false
			}
		}
		return struct{}{}, true
	})
	crc := func(c string) int32 { return librdkafkaPartition([]byte(c), partitions) }
	var a, b string
	for i := 0; a == ""; i++ {
		if c := fmt.Sprintf("quiet-a%d", i); slices.Contains(owned[1], consume.PartitionOf(c, partitions)) && crc(c) == consume.PartitionOf(c, partitions) {
			a = c
		}
	}
	for i := 0; b == ""; i++ {
		c := fmt.Sprintf("steady-b%d", i)
		if p := consume.PartitionOf(c, partitions); slices.Contains(owned[1], p) && p != consume.PartitionOf(a, partitions) && slices.Contains(owned[0], crc(c)) {
			b = c
		}
	}
	t.Logf("tasks %v on q1, %v on q2; A=%s in its own partition, B=%s's orders in q1's %d, its task on q2", owned[0], owned[1], a, b, crc(b))
	time.Sleep(cfg.Lapse.IdleTimeout) // every task quiet before the orders come

	d := &devProcess{kafka: s.k.Addr(), kcat: kcat}
	now := time.Now().UTC()
	d.kc(t, quietOrders(a, b, now), "-P", "-t", cfg.Topics.Orders, "-K", "|")

	var got []jsonTrigger
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && len(got) == 0; time.Sleep(500 * time.Millisecond) {
		got = d.triggers(t)
	}
	time.Sleep(3 * time.Second) // anything B's task would fire after A's
	if got = d.triggers(t); len(got) != 1 || got[0].CustomerID != a || got[0].PrimaryReason != "PURCHASE_LAPSE" {
		t.Fatalf("want one trigger, PURCHASE_LAPSE for %s; got %d: %+v\nq1:\n%s\nq2:\n%s", a, len(got), got, ins[0].out.String(), ins[1].out.String())
	}
	for _, in := range ins {
		in.stop(45 * time.Second)
	}
}

// ownedPartitions returns the partitions whose tasks the instance at
// httpAddr holds, from its winback_customers_tracked series (set at a
// task's first commit), in order.
func ownedPartitions(t *testing.T, httpAddr string) []int32 {
	t.Helper()
	var ps []int32
	for labels := range series(t, httpAddr, "winback_customers_tracked") {
		p, err := strconv.Atoi(strings.TrimPrefix(labels, "partition="))
		if err != nil {
			t.Fatalf("customers_tracked series %q", labels)
		}
		ps = append(ps, int32(p))
	}
	slices.Sort(ps)
	return ps
}
