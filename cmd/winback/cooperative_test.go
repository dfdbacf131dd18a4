package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/winback/winback/testenv"
)

// TestCooperativeStop is issue 21's acceptance at a size for `go test`: six
// instances share 12 tasks; one of them stops. Only its tasks move: the
// other instances restore exactly those (winback_restore_duration_seconds
// counts one per task restored), none of them aborts a transaction, and
// none has a gap of 2 s or more between two commits while the group
// rebalances. WINBACK_COOP_CUSTOMERS sets the stream's customers (the
// issue's figure is 300000) and WINBACK_COOP_DAYS its days (120).
func TestCooperativeStop(t *testing.T) {
	customers, days := 3000, 120
	if v, err := strconv.Atoi(os.Getenv("WINBACK_COOP_CUSTOMERS")); err == nil && v > 0 {
		customers = v
	}
	if v, err := strconv.Atoi(os.Getenv("WINBACK_COOP_DAYS")); err == nil && v > 0 {
		days = v
	}
	// A minute per 10k customers beyond the first 3000, for a larger run.
	slack := time.Duration(max(0, customers-3000)/10000) * time.Minute
	const parts, n = 12, 6
	s := newStack(t, parts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute+slack)
	defer cancel()
	o := genOptions{customers: customers, days: days, seed: 21, encoding: "json"}
	if _, err := produceTraffic(ctx, &s.cfg, &o, testenv.TestLogger(t), nil); err != nil {
		t.Fatal(err)
	}
	cfg := runConfig(s.cfg, "coop")
	cfg.Topics.Partitions = parts
	cfg.CommitInterval = 100 * time.Millisecond
	cfg.MaxPollRecords = 1000

	var ins []*instance
	for i := range n {
		ins = append(ins, startInstance(t, cfg, fmt.Sprintf("coop-%d", i)))
	}
	for _, in := range ins {
		in.waitReady(2*time.Minute + slack)
	}
	// Every instance holds its share before the stop.
	deadline := time.Now().Add(time.Minute)
	for {
		held := 0
		for _, in := range ins {
			if metricSum(t, in.http, "winback_partitions_assigned") == parts/n {
				held++
			}
		}
		if held == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d instances hold %d tasks", held, n, parts/n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	waitCaughtUp(t, cfg.Kafka.Brokers, cfg.Kafka.Group, 4*time.Minute+slack, inputs(cfg)...)

	stopped, rest := ins[0], ins[1:]
	type state struct{ restores, aborts, commits float64 }
	read := func(in *instance) state {
		page := httpGet(t, "http://"+in.http+"/metrics", http.StatusOK)
		parser := expfmt.NewTextParser(model.UTF8Validation)
		mfs, err := parser.TextToMetricFamilies(strings.NewReader(page))
		if err != nil {
			t.Fatal(err)
		}
		var st state
		if mf := mfs["winback_restore_duration_seconds"]; mf != nil {
			for _, m := range mf.GetMetric() {
				st.restores += float64(m.GetHistogram().GetSampleCount())
			}
		}
		st.aborts = familySum(mfs["winback_transactions_aborted_total"])
		st.commits = familySum(mfs["winback_transactions_committed_total"])
		return st
	}
	before := make([]state, len(rest))
	for i, in := range rest {
		before[i] = read(in)
	}
	// Watch the others' commits every 50 ms from the stop until the moved
	// tasks are held again and 3 s more.
	var (
		mu      sync.Mutex
		gaps    = make([]time.Duration, len(rest))
		last    = make([]time.Time, len(rest))
		commits = make([]float64, len(rest))
	)
	watch, stopWatch := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	start := time.Now()
	for i, in := range rest {
		last[i], commits[i] = start, before[i].commits
		wg.Go(func() {
			for watch.Err() == nil {
				c := read(in).commits
				now := time.Now()
				mu.Lock()
				if c != commits[i] {
					gaps[i] = max(gaps[i], now.Sub(last[i]))
					last[i], commits[i] = now, c
				}
				mu.Unlock()
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	stopped.stop(cfg.ShutdownTimeout)
	deadline = time.Now().Add(time.Minute)
	for {
		held := 0.0
		for _, in := range rest {
			held += metricSum(t, in.http, "winback_partitions_assigned")
		}
		if held == parts {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the others hold %v of %d tasks a minute after the stop", held, parts)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(3 * time.Second)
	stopWatch()
	wg.Wait()
	end := time.Now()
	mu.Lock()
	defer mu.Unlock()
	restored := 0.0
	for i, in := range rest {
		after := read(in)
		restored += after.restores - before[i].restores
		if after.aborts != before[i].aborts {
			t.Errorf("%s aborted %v transactions in the rebalance", in.name, after.aborts-before[i].aborts)
		}
		gaps[i] = max(gaps[i], end.Sub(last[i]))
		if gaps[i] >= 2*time.Second {
			t.Errorf("%s did not commit for %s during the rebalance", in.name, gaps[i].Round(time.Millisecond))
		}
		t.Logf("%s: longest gap between commits %s, %v tasks restored", in.name, gaps[i].Round(time.Millisecond), after.restores-before[i].restores)
	}
	if restored != parts/n {
		t.Errorf("the others restored %v tasks after the stop, want %d (those of the stopped instance)", restored, parts/n)
	}
}

// familySum adds up the counter and gauge values of a metric's series.
func familySum(mf *dto.MetricFamily) float64 {
	v := 0.0
	for _, m := range mf.GetMetric() {
		v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
	}
	return v
}
