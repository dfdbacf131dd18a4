// The end-to-end probes of a winback run: restore time and trigger latency.

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/event"
)

// restoreResult is the time a fresh winback instance takes to restore the
// state of every customer from the changelog.
type restoreResult struct {
	Label            string  `json:"label"`
	Customers        int     `json:"customers"`         // summed over the "partition restored" log lines
	ChangelogRecords int     `json:"changelog_records"` // read from the (compacted) changelog
	ReadySeconds     float64 `json:"ready_s"`           // process start to /readyz 200
	MaxPartitionS    float64 `json:"max_partition_s"`   // slowest partition's restore, from the log
	CPUSeconds       float64 `json:"cpu_s"`             // the instance's CPU until ready
	PeakRSS          int64   `json:"peak_rss_bytes"`
	Compacted        bool    `json:"compacted"`
}

func (r *restoreResult) summary() string {
	return fmt.Sprintf("%s: %d customers (%d changelog records%s) restored in %.2f s from process start to /readyz 200 (slowest partition %.2f s, %.2f CPU s, peak RSS %s)",
		r.Label, r.Customers, r.ChangelogRecords, map[bool]string{true: ", compacted first", false: ""}[r.Compacted],
		r.ReadySeconds, r.MaxPartitionS, r.CPUSeconds, mib(r.PeakRSS))
}

// measureRestore starts a second instance in the group of a finished run
// and times it from start to /readyz 200.
func (o *orchestrator) measureRestore(ctx context.Context, name, label string, t winbackTopics) (*restoreResult, error) {
	res := &restoreResult{Label: label}
	if err := o.broker.Compact(); err != nil {
		o.log.Warn("compaction failed; restoring from the whole changelog", "err", err)
	} else {
		res.Compacted = true
	}
	group := "bench-" + name
	cfg := winbackConfig(o.broker, o.ch.DSN(), dbName(name), group, "two", t)
	logPath := filepath.Join(o.dir, name+"-2.log")
	p, err := startWinback(ctx, o.winbackBin, cfg, logPath)
	if err != nil {
		return nil, err
	}
	defer p.stop(o.stopTimeout)
	deadline := time.Now().Add(o.timeout)
	for {
		if err := p.failed(); err != nil {
			return nil, err
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("restore: /readyz not 200 within %s; log tail:\n%s", o.timeout, tail(logPath, 20))
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		code, _, err := p.get(rctx, "/readyz")
		cancel()
		if err == nil && code == http.StatusOK {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	res.ReadySeconds = time.Since(p.began).Seconds()
	res.CPUSeconds = procCPU(p.pid()).Seconds()
	res.PeakRSS = procPeakRSS(p.pid())
	if err := p.stop(o.stopTimeout); err != nil {
		return nil, err
	}
	// The log lines of the restore, one per partition.
	f, err := os.Open(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	parts := 0
	for sc.Scan() {
		var m struct {
			Msg       string `json:"msg"`
			Records   int    `json:"records"`
			Customers int    `json:"customers"`
			Duration  int64  `json:"duration"` // slog's JSON handler writes a Duration in ns
		}
		if json.Unmarshal(sc.Bytes(), &m) != nil || m.Msg != "consume: partition restored" {
			continue
		}
		parts++
		res.Customers += m.Customers
		res.ChangelogRecords += m.Records
		res.MaxPartitionS = math.Max(res.MaxPartitionS, time.Duration(m.Duration).Seconds())
	}
	if parts == 0 {
		return res, fmt.Errorf("restore: no \"consume: partition restored\" line in %s", logPath)
	}
	return res, sc.Err()
}

// latencyResult is the time from a live event's arrival to its trigger.
type latencyResult struct {
	Probes    int     `json:"probes"`          // live events sent
	Matched   int     `json:"matched"`         // of which a trigger for the customer came back
	Interval  string  `json:"commit_interval"` // winback's
	P50       float64 `json:"p50_s"`
	P99       float64 `json:"p99_s"`
	Max       float64 `json:"max_s"`
	RateHz    float64 `json:"rate_per_s"`
	MetricP50 float64 `json:"metric_p50_s"` // from winback_trigger_latency_seconds over the probe, bucket-interpolated
	MetricP99 float64 `json:"metric_p99_s"`
	MetricN   float64 `json:"metric_count"`
}

func (r *latencyResult) summary() string {
	s := fmt.Sprintf("%d of %d live e-mail unsubscribes at %.0f/s came back as a committed trigger (commit interval %s): p50 %.0f ms, p99 %.0f ms, max %.0f ms (producer send → read_committed consumer of the trigger topic)",
		r.Matched, r.Probes, r.RateHz, r.Interval, r.P50*1000, r.P99*1000, r.Max*1000)
	if r.MetricN > 0 {
		s += fmt.Sprintf("; winback_trigger_latency_seconds over the same window: %.0f triggers, p50 ≈ %.0f ms, p99 ≈ %.0f ms", r.MetricN, r.MetricP50*1000, r.MetricP99*1000)
	}
	return s
}

// probeLatency sends live events to a caught-up winback, one customer at a
// time at a steady rate, and times each until a trigger for that customer
// is readable (read_committed) on the trigger topic. The events are e-mail
// unsubscribes of steady buyers (who never unsubscribed in the stream),
// with event times just after the stream's end, so each one makes an
// EMAIL_UNSUBSCRIBED trigger due at once.
//
// Each call takes customers no earlier call took (the earlier probes are
// in the input topics), those who receive e-mail first.
func (o *orchestrator) probeLatency(ctx context.Context, p *winbackProc, t winbackTopics, interval time.Duration) (*latencyResult, error) {
	ids := probeCustomers(o.gen.Truth(), o.emailEvery, o.probesUsed, o.probes)
	o.probesUsed += len(ids)
	res := &latencyResult{Probes: len(ids), RateHz: o.probeRate, Interval: interval.String()}
	if len(ids) == 0 {
		return res, nil
	}
	_, before, _ := p.get(ctx, "/metrics")

	cons, err := kgo.NewClient(kgo.SeedBrokers(o.broker.Kafka), kgo.ConsumeTopics(t.Triggers),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	defer cons.Close()
	// Make sure the consumer has its start offsets before the first probe.
	pctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	cons.PollFetches(pctx)
	cancel()

	prod, err := kgo.NewClient(kgo.SeedBrokers(o.broker.Kafka), kgo.ProducerLinger(0),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		return nil, err
	}
	defer prod.Close()

	sent := make(map[string]time.Time, len(ids))
	lat := make(map[string]time.Duration, len(ids))
	recv := make(chan struct{})
	go func() {
		defer close(recv)
		for {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil || fs.IsClientClosed() {
				return
			}
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				o.mu.Lock()
				defer o.mu.Unlock()
				k := string(r.Key)
				if at, ok := sent[k]; ok {
					if _, seen := lat[k]; !seen {
						lat[k] = now.Sub(at)
					}
				}
			})
		}
	}()
	_, end := o.gen.Range()
	gap := time.Duration(float64(time.Second) / o.probeRate)
	next := time.Now()
	for i, id := range ids {
		ev := event.Event{
			Kind: event.KindEmail, EventID: fmt.Sprintf("bench-probe-%d", i), CustomerID: id,
			Time: end.Add(time.Minute + time.Duration(i)*time.Second).UnixMilli(), EmailType: event.EmailUnsubscribed, CampaignID: "cmp-probe",
		}
		rec := &kgo.Record{Topic: t.In.Email, Key: []byte(id), Value: codec.AppendEventJSON(nil, &ev)}
		time.Sleep(time.Until(next))
		o.mu.Lock()
		sent[id] = time.Now()
		o.mu.Unlock()
		if err := prod.ProduceSync(ctx, rec).FirstErr(); err != nil {
			return nil, fmt.Errorf("produce probe: %w", err)
		}
		next = next.Add(gap)
	}
	// Wait for the stragglers: a few commit intervals.
	deadline := time.Now().Add(max(10*time.Second, 3*interval+5*time.Second))
	for time.Now().Before(deadline) {
		o.mu.Lock()
		n := len(lat)
		o.mu.Unlock()
		if n == len(ids) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	cons.Close()
	<-recv
	var ds []float64
	o.mu.Lock()
	for _, d := range lat {
		ds = append(ds, d.Seconds())
	}
	o.mu.Unlock()
	slices.Sort(ds)
	res.Matched = len(ds)
	if len(ds) > 0 {
		res.P50, res.P99, res.Max = quantile(ds, 0.5), quantile(ds, 0.99), ds[len(ds)-1]
	}
	if _, after, err := p.get(ctx, "/metrics"); err == nil {
		res.MetricN, res.MetricP50, res.MetricP99 = histogramDelta(before, after, "winback_trigger_latency_seconds")
	}
	return res, nil
}

// probeCustomers picks n probe customers among the steady buyers (who
// must never get a trigger, so the probe's is the only one), after the
// first skip of them: those who receive e-mail (every emailEvery-th)
// first, then the others.
func probeCustomers(truth []gen.Truth, emailEvery, skip, n int) []string {
	var mailed, others []string
	for _, tr := range truth {
		if !tr.MustNotTrigger {
			continue
		}
		if emailReceiver(tr.CustomerID, emailEvery) {
			mailed = append(mailed, tr.CustomerID)
		} else {
			others = append(others, tr.CustomerID)
		}
	}
	all := append(mailed, others...)
	skip = min(skip, len(all))
	return all[skip:min(skip+n, len(all))]
}
