package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/config"
	"github.com/winback/winback/testenv"
)

// TestStandbyTakeover is issue 21's standby acceptance at a size for `go
// test`: three instances with kafka.standby_replicas 1 share six tasks,
// each keeping a warm copy of two tasks of the others. Once the group is
// idle, one instance is killed with SIGKILL. The moved tasks commit again
// (their first progress record under the new owner) within 5 s of the
// session timeout, the instances that take them restore them from their
// standbys (winback_restores_total{from="standby"}) and restore nothing
// from the changelog, and the run ends with the same triggers, treatments
// and aggregates as one undisturbed instance on the same input.
// WINBACK_STANDBY_SIZE=6,12,300000,30 runs it at the size
// (instances, partitions, customers, days).
func TestStandbyTakeover(t *testing.T) { standbyTakeover(t, false) }

// TestStandbyTakeoverMidStream is TestStandbyTakeover with the kill while
// the group is processing: the killed instance may leave an open
// transaction, the standbys are a transaction or so behind, and the
// takeover reads the changelog's tail from where they stand. A survivor
// whose own transaction the rebalance aborts restores its own tasks from
// the changelog (the abort path, not the standbys'); the moved tasks still
// come from the standbys.
func TestStandbyTakeoverMidStream(t *testing.T) { standbyTakeover(t, true) }

func standbyTakeover(t *testing.T, midStream bool) {
	parts, n := 6, 3
	customers, days := 400, 200
	if v := os.Getenv("WINBACK_STANDBY_SIZE"); v != "" {
		if _, err := fmt.Sscanf(v, "%d,%d,%d,%d", &n, &parts, &customers, &days); err != nil || n < 2 || parts%n != 0 {
			t.Fatalf("WINBACK_STANDBY_SIZE=%q: want instances,partitions,customers,days with partitions a multiple of instances", v)
		}
	}
	// A minute per 10k customers beyond the first 3000, for a larger run.
	slack := time.Duration(max(0, customers-3000)/10000) * time.Minute
	s := newStack(t, int32(parts))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute+2*slack)
	defer cancel()
	log := testenv.TestLogger(t)
	o := genOptions{customers: customers, days: days, seed: 41, encoding: "json"}
	if _, err := produceTraffic(ctx, &s.cfg, &o, log, nil); err != nil {
		t.Fatal(err)
	}
	cfg := runConfig(s.cfg, "standby")
	cfg.Topics.Partitions = parts
	cfg.Kafka.StandbyReplicas = 1
	if !midStream {
		cfg.MaxPollRecords = 1000 // else runConfig's small transactions: the stream lasts
	}
	began := time.Now()
	var ins []*instance
	for i := range n {
		ins = append(ins, startInstance(t, cfg, fmt.Sprintf("standby-%d", i)))
	}
	for _, in := range ins {
		in.waitReady(time.Minute + slack)
	}
	if !midStream {
		waitCaughtUp(t, cfg.Kafka.Brokers, cfg.Kafka.Group, 2*time.Minute+slack, inputs(cfg)...)
		t.Logf("caught up %s after the start", time.Since(began).Round(time.Millisecond))
	}
	// Every instance holds its share of tasks and of standbys, caught up
	// (mid-stream: applying the others' commits).
	deadline := time.Now().Add(time.Minute + slack)
	for {
		ok := true
		for _, in := range ins {
			ok = ok && metricSum(t, in.http, "winback_partitions_assigned") == float64(parts/n) &&
				metricSum(t, in.http, "winback_standby_tasks") == float64(parts/n) &&
				len(series(t, in.http, "winback_standby_lag_records")) == parts/n &&
				// the tasks' own gauges appear at their first commit;
				// the victim's tasks are read from them below
				len(series(t, in.http, "winback_customers_tracked")) == parts/n
			if midStream {
				ok = ok && metricSum(t, in.http, "winback_standby_records_total") > 0
			} else {
				ok = ok && metricSum(t, in.http, "winback_standby_lag_records") == 0
			}
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			for _, in := range ins {
				t.Logf("%s: tasks %v, standbys %v, lags %v; log:\n%s", in.name, metricSum(t, in.http, "winback_partitions_assigned"),
					metricSum(t, in.http, "winback_standby_tasks"), series(t, in.http, "winback_standby_lag_records"), logLines(in, `"msg":"consume: `))
			}
			t.Fatalf("the instances do not each hold %d tasks and %d caught-up standbys", parts/n, parts/n)
		}
		time.Sleep(200 * time.Millisecond)
	}

	victim, rest := ins[0], ins[1:]
	moved := ownedPartitions(t, victim.http)
	if len(moved) != parts/n {
		t.Fatalf("%s holds tasks %v", victim.name, moved)
	}
	before := make([]map[string]float64, len(rest))
	aborts := make([]float64, len(rest))
	for i, in := range rest {
		before[i] = series(t, in.http, "winback_restores_total")
		aborts[i] = metricSum(t, in.http, "winback_transactions_aborted_total")
	}
	// A task's first commit under a new owner carries its first progress
	// record (consume/progress.go): watch the progress topic from here.
	watch := progressFrom(t, cfg)
	victim.kill()
	killed := time.Now()
	if midStream && behind(t, cfg) == 0 {
		t.Fatal("the group caught up before the kill; the stream is too small to prove anything")
	}
	t.Logf("killed %s at %s", victim.name, killed.UTC().Format("15:04:05.000"))
	var took time.Duration
	for seen := map[int32]bool{}; len(seen) < len(moved); {
		pctx, pcancel := context.WithDeadline(ctx, killed.Add(cfg.Kafka.SessionTimeout+time.Minute))
		fs := watch.PollFetches(pctx)
		late := pctx.Err() != nil
		pcancel()
		if late {
			t.Fatalf("the moved tasks %v did not commit within %s of the kill (seen %v)", moved, time.Since(killed).Round(time.Millisecond), seen)
		}
		fs.EachRecord(func(r *kgo.Record) {
			// A record produced before the kill is the victim's own:
			// its last transaction's markers can land just after it.
			if p, ok := taskOfProgress(r.Key); ok && slices.Contains(moved, p) && !r.Timestamp.Before(killed) {
				seen[p] = true
			}
		})
		took = time.Since(killed)
	}
	t.Logf("tasks %v of %s first committed %s after the kill (session timeout %s)", moved, victim.name, took.Round(time.Millisecond), cfg.Kafka.SessionTimeout)
	for _, in := range rest {
		t.Logf("%s:\n%s", in.name, logLines(in, `"from":"standby"`))
	}
	if limit := cfg.Kafka.SessionTimeout + 5*time.Second; took > limit {
		for _, in := range rest {
			t.Logf("%s:\n%s", in.name, logLines(in, `"msg":"consume: `))
		}
		t.Errorf("the moved tasks first committed %s after the kill, more than the session timeout + 5 s (%s)", took.Round(time.Millisecond), limit)
	}
	fromStandby := 0.0
	for i, in := range rest {
		after := series(t, in.http, "winback_restores_total")
		// An instance whose transaction the rebalance aborts (its offset
		// commit meets REBALANCE_IN_PROGRESS: mid-stream only) restores
		// its own tasks from the changelog, standbys or not.
		d := after[`from=changelog`] - before[i][`from=changelog`]
		aborted := metricSum(t, in.http, "winback_transactions_aborted_total") - aborts[i]
		if d != 0 && (!midStream || aborted == 0) {
			t.Errorf("%s restored %v tasks from the changelog after the kill (%v transactions aborted); log:\n%s", in.name, d, aborted, logLines(in, `"msg":"consume: `))
		} else if d != 0 {
			t.Logf("%s restored %v tasks from the changelog after %v aborted transactions", in.name, d, aborted)
		}
		fromStandby += after[`from=standby`] - before[i][`from=standby`]
	}
	if fromStandby != float64(len(moved)) {
		t.Errorf("%v tasks taken over from standbys, want %d (those of the killed instance)", fromStandby, len(moved))
	}

	waitCaughtUp(t, cfg.Kafka.Brokers, cfg.Kafka.Group, 2*time.Minute+slack, inputs(cfg)...)
	for _, in := range rest {
		in.stop(cfg.ShutdownTimeout)
	}
	got := collect(t, cfg)
	ref := runConfig(s.cfg, "standbyref")
	ref.Topics.Partitions = parts
	ref.MaxPollRecords = 1000
	in := startInstance(t, ref, "standby-ref")
	waitCaughtUp(t, ref.Kafka.Brokers, ref.Kafka.Group, 2*time.Minute+slack, inputs(ref)...)
	in.stop(ref.ShutdownTimeout)
	what := "standby takeover after SIGKILL"
	if midStream {
		what += " mid-stream"
	}
	compare(t, what, collect(t, ref), got)
}

// logLines returns the lines of an instance's log that contain sub.
func logLines(in *instance, sub string) string {
	var lines []string
	for _, l := range strings.Split(in.out.String(), "\n") {
		if strings.Contains(l, sub) {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// series returns the values of a metric's series on an instance's
// /metrics, by their labels ("k=v,k2=v2").
func series(t *testing.T, httpAddr, name string) map[string]float64 {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(strings.NewReader(httpGet(t, "http://"+httpAddr+"/metrics", 200)))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, m := range mfs[name].GetMetric() {
		var ls []string
		for _, l := range m.GetLabel() {
			ls = append(ls, l.GetName()+"="+l.GetValue())
		}
		out[strings.Join(ls, ",")] = m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return out
}

// progressFrom returns a client reading the group's progress topic,
// read_committed, from its current end.
func progressFrom(t *testing.T, cfg config.Config) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Kafka.Brokers...), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{cfg.ProgressTopic(): {0: kgo.NewOffset().AtEnd()}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	// Fix the start now: the first poll lists the end offset.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	cl.PollFetches(ctx)
	return cl
}

// taskOfProgress reads a progress record's key: "task/" and the task
// (consume/progress.go).
func taskOfProgress(k []byte) (int32, bool) {
	if len(k) != 9 || string(k[:5]) != "task/" {
		return 0, false
	}
	return int32(binary.BigEndian.Uint32(k[5:])), true
}
