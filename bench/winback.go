package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/event"
)

// winbackTopics are the topics of one winback run: the inputs and its own
// outputs (so that the JSON and the Avro run do not share state).
type winbackTopics struct {
	In                   gen.Topics
	Triggers, DLQ, State string
}

func outputTopics(suffix string) winbackTopics {
	return winbackTopics{Triggers: "winback-triggers-" + suffix, DLQ: "winback-dlq-" + suffix, State: "winback-state-" + suffix}
}

// winbackProc is one `winback run` child.
type winbackProc struct {
	cmd     *exec.Cmd
	http    string
	logPath string
	began   time.Time
	exited  chan struct{}
	waitErr error
}

// startWinback runs `winback run` with its settings in the environment
// (WINBACK_*), its JSON log in logPath.
func startWinback(ctx context.Context, bin string, env []string, logPath string) (*winbackProc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run")
	cmd.Env = append(append(os.Environ(), env...), "WINBACK_HTTP_ADDR="+addr, "WINBACK_HTTP_PPROF=true", "WINBACK_LOG_FORMAT=json", "WINBACK_LOG_LEVEL=info")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &winbackProc{cmd: cmd, http: addr, logPath: logPath, exited: make(chan struct{})}
	p.began = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start winback: %w", err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		logf.Close()
		close(p.exited)
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Kill()
		case <-p.exited:
		}
	}()
	return p, nil
}

func (p *winbackProc) pid() int { return p.cmd.Process.Pid }

// failed returns an error with the log's tail if the process has exited.
func (p *winbackProc) failed() error {
	select {
	case <-p.exited:
		return fmt.Errorf("winback exited early (%v); log tail:\n%s", p.waitErr, tail(p.logPath, 20))
	default:
		return nil
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (p *winbackProc) stop(timeout time.Duration) error {
	select {
	case <-p.exited:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(timeout):
			_ = p.cmd.Process.Kill()
			<-p.exited
			return fmt.Errorf("winback did not stop within %s after SIGTERM; log tail:\n%s", timeout, tail(p.logPath, 20))
		}
	}
	if p.waitErr != nil {
		return fmt.Errorf("winback exited with %v; log tail:\n%s", p.waitErr, tail(p.logPath, 20))
	}
	return nil
}

// get fetches a path from winback's HTTP server.
func (p *winbackProc) get(ctx context.Context, path string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.http+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// waitCaughtUp polls the group's committed offsets until they reach the end
// offsets of the input topics, then returns how long that took since start.
func waitCaughtUp(ctx context.Context, adm *kadm.Client, p *winbackProc, group string, ends kadm.ListedOffsets, timeout time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-tick.C:
		}
		if err := p.failed(); err != nil {
			return 0, err
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("winback did not commit the end offsets within %s; log tail:\n%s", timeout, tail(p.logPath, 20))
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		committed, err := adm.FetchOffsets(cctx, group)
		cancel()
		if err != nil {
			continue // the group may not exist yet
		}
		done := true
		ends.Each(func(o kadm.ListedOffset) {
			c, ok := committed.Lookup(o.Topic, o.Partition)
			if o.Offset > 0 && (!ok || c.At < o.Offset) {
				done = false
			}
		})
		if done {
			return time.Since(p.began), nil
		}
	}
}

// winbackEnv is the environment of a `winback run` on the bench's broker,
// registry and ClickHouse.
func winbackEnv(b *broker, chDSN, database, group, instance string, t winbackTopics) []string {
	return []string{
		"WINBACK_KAFKA_BROKERS=" + b.Kafka,
		"WINBACK_REGISTRY_URL=" + b.Registry,
		"WINBACK_CLICKHOUSE_DSN=" + chDSN,
		"WINBACK_CLICKHOUSE_DATABASE=" + database,
		"WINBACK_KAFKA_GROUP=" + group,
		"WINBACK_KAFKA_TRANSACTIONAL_ID=" + group,
		"WINBACK_KAFKA_INSTANCE_ID=" + instance,
		"WINBACK_KAFKA_SESSION_TIMEOUT=10s",
		"WINBACK_TOPICS_ORDERS=" + t.In.Orders,
		"WINBACK_TOPICS_EMAIL=" + t.In.Email,
		"WINBACK_TOPICS_SUPPORT=" + t.In.Support,
		"WINBACK_TOPICS_TRIGGERS=" + t.Triggers,
		"WINBACK_TOPICS_DLQ=" + t.DLQ,
		"WINBACK_TOPICS_STATE=" + t.State,
	}
}

// winbackRun is what one end-to-end run measured.
type winbackRun struct {
	line line
	work winbackWork // from /metrics when caught up
}

// runWinbackE2E runs `winback run` on a fresh group until its committed
// offsets reach the end of the three input topics. CPU and peak RSS are
// read from /proc at that moment (the process keeps running), so they
// cover start-up and the whole backlog but not the shutdown. If probe is
// set, it then measures trigger latency on live events before stopping.
func (o *orchestrator) runWinbackE2E(ctx context.Context, name string, t winbackTopics, probe bool) (winbackRun, error) {
	var run winbackRun
	l := &run.line
	l.Name = name
	group := "bench-" + name
	env := winbackEnv(o.broker, o.ch.DSN(), "bench_"+strings.ReplaceAll(name, "-", "_"), group, "one", t)
	ends, err := endOffsets(ctx, o.admin, t.In.Orders, t.In.Email, t.In.Support)
	if err != nil {
		return run, err
	}
	l.Events = sumOffsets(ends)
	b0, s0 := o.broker.CPU(), procCPU(o.chPID)
	p, err := startWinback(ctx, o.winbackBin, env, filepath.Join(o.dir, name+"-1.log"))
	if err != nil {
		return run, err
	}
	defer p.stop(o.stopTimeout)
	prof := o.profileWinback(ctx, p, name)
	wall, err := waitCaughtUp(ctx, kadm.NewClient(o.admin), p, group, ends, o.timeout)
	if err != nil {
		return run, err
	}
	cpu, rss := procCPU(p.pid()), procPeakRSS(p.pid())
	l.Wall, l.CPU, l.PeakRSS = wall.Seconds(), cpu.Seconds(), rss
	l.BrokerCPU, l.ServerCPU = (o.broker.CPU() - b0).Seconds(), (procCPU(o.chPID) - s0).Seconds()
	o.log.Info("winback caught up", "run", name, "events", l.Events, "wall", wall.Round(time.Millisecond), "cpu", cpu)
	if code, body, err := p.get(ctx, "/metrics"); err == nil && code == http.StatusOK {
		run.work = workOf(name, body)
	}
	if o.profileDir != "" {
		if code, body, err := p.get(ctx, "/debug/pprof/heap"); err == nil && code == http.StatusOK {
			if err := os.WriteFile(filepath.Join(o.profileDir, name+".heap.pprof"), []byte(body), 0o644); err != nil {
				o.log.Warn("no heap profile of winback", "run", name, "err", err)
			}
		}
	}

	if probe {
		lat, err := o.probeLatency(ctx, p, t)
		if err != nil {
			return run, fmt.Errorf("latency probe: %w", err)
		}
		o.rep.Latency = lat
	}
	if err := <-prof; err != nil {
		o.log.Warn("no CPU profile of winback", "run", name, "err", err)
	}
	if err := p.stop(o.stopTimeout); err != nil {
		return run, err
	}
	return run, nil
}

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
	env := winbackEnv(o.broker, o.ch.DSN(), "bench_"+strings.ReplaceAll(name, "-", "_"), group, "two", t)
	logPath := filepath.Join(o.dir, name+"-2.log")
	p, err := startWinback(ctx, o.winbackBin, env, logPath)
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
	Probes    int     `json:"probes"`  // live events sent
	Matched   int     `json:"matched"` // of which a trigger for the customer came back
	P50       float64 `json:"p50_s"`
	P99       float64 `json:"p99_s"`
	Max       float64 `json:"max_s"`
	RateHz    float64 `json:"rate_per_s"`
	MetricP50 float64 `json:"metric_p50_s"` // from winback_trigger_latency_seconds over the probe, bucket-interpolated
	MetricP99 float64 `json:"metric_p99_s"`
	MetricN   float64 `json:"metric_count"`
}

func (r *latencyResult) summary() string {
	s := fmt.Sprintf("%d of %d live e-mail unsubscribes at %.0f/s came back as a committed trigger: p50 %.0f ms, p99 %.0f ms, max %.0f ms (producer send → read_committed consumer of the trigger topic)",
		r.Matched, r.Probes, r.RateHz, r.P50*1000, r.P99*1000, r.Max*1000)
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
func (o *orchestrator) probeLatency(ctx context.Context, p *winbackProc, t winbackTopics) (*latencyResult, error) {
	var ids []string
	for _, tr := range o.gen.Truth() {
		if tr.MustNotTrigger {
			ids = append(ids, tr.CustomerID)
		}
		if len(ids) == o.probes {
			break
		}
	}
	res := &latencyResult{Probes: len(ids), RateHz: o.probeRate}
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
		rec := &kgo.Record{Topic: t.In.Email, Key: []byte(id), Value: decode.AppendJSON(nil, &ev)}
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
	deadline := time.Now().Add(10 * time.Second)
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

// quantile of sorted values (nearest rank).
func quantile(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// histogramDelta reads a Prometheus histogram from two /metrics texts and
// returns the count of observations between them and their p50 and p99,
// interpolated linearly within buckets.
func histogramDelta(before, after, name string) (n, p50, p99 float64) {
	parse := func(text string) map[float64]float64 {
		m := map[float64]float64{}
		for _, ln := range strings.Split(text, "\n") {
			rest, ok := strings.CutPrefix(ln, name+"_bucket{")
			if !ok {
				continue
			}
			i := strings.Index(rest, `le="`)
			if i < 0 {
				continue
			}
			rest = rest[i+4:]
			j := strings.IndexByte(rest, '"')
			if j < 0 {
				continue
			}
			le, err := strconv.ParseFloat(rest[:j], 64)
			if err != nil {
				continue
			}
			fields := strings.Fields(rest[j:])
			v, err := strconv.ParseFloat(fields[len(fields)-1], 64)
			if err != nil {
				continue
			}
			m[le] = v
		}
		return m
	}
	b, a := parse(before), parse(after)
	var les []float64
	for le := range a {
		les = append(les, le)
	}
	slices.Sort(les)
	cum := make([]float64, len(les))
	for i, le := range les {
		cum[i] = a[le] - b[le]
	}
	if len(les) == 0 || cum[len(cum)-1] == 0 {
		return 0, 0, 0
	}
	n = cum[len(cum)-1]
	q := func(q float64) float64 {
		target := q * n
		lo, prev := 0.0, 0.0
		for i, le := range les {
			if cum[i] >= target {
				if math.IsInf(le, 1) {
					return lo
				}
				if cum[i] == prev {
					return le
				}
				return lo + (le-lo)*(target-prev)/(cum[i]-prev)
			}
			lo, prev = le, cum[i]
		}
		return lo
	}
	return n, q(0.5), q(0.99)
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// buildWinback builds ../cmd/winback into dir.
func buildWinback(ctx context.Context, repo, dir string, log *slog.Logger) (string, error) {
	bin := filepath.Join(dir, "winback")
	goBin := "go"
	if p, err := exec.LookPath("go"); err == nil {
		goBin = p
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", bin, "./cmd/winback")
	cmd.Dir = repo
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building winback (go build ./cmd/winback in %s): %w\n%s", repo, err, out)
	}
	log.Info("built winback", "bin", bin)
	return bin, nil
}

var errSkipped = errors.New("skipped")

// profileWinback fetches a CPU profile of the winback child over its first
// o.profileSeconds (from /debug/pprof, after a second for start-up) into
// o.profileDir/NAME.cpu.pprof. The channel yields the outcome.
func (o *orchestrator) profileWinback(ctx context.Context, p *winbackProc, name string) <-chan error {
	done := make(chan error, 1)
	if o.profileDir == "" || o.profileSeconds <= 0 {
		done <- nil
		return done
	}
	go func() {
		select {
		case <-ctx.Done():
			done <- ctx.Err()
			return
		case <-time.After(time.Second):
		}
		code, body, err := p.get(ctx, "/debug/pprof/profile?seconds="+strconv.Itoa(o.profileSeconds))
		switch {
		case err != nil:
			done <- err
		case code != http.StatusOK:
			done <- fmt.Errorf("/debug/pprof/profile: HTTP %d: %s", code, firstLine(body))
		default:
			if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
				done <- err
				return
			}
			done <- os.WriteFile(filepath.Join(o.profileDir, name+".cpu.pprof"), []byte(body), 0o644)
		}
	}()
	return done
}

// winbackWork is what a winback run did to get through the stream, from its
// /metrics when it caught up: where the wall time and the ClickHouse CPU go.
type winbackWork struct {
	Run          string             `json:"run"`
	Transactions float64            `json:"transactions"`
	BatchSeconds float64            `json:"batch_s"`            // summed wall time of the transactions
	FlushSeconds float64            `json:"clickhouse_flush_s"` // of which waiting for ClickHouse
	Rows         map[string]float64 `json:"clickhouse_rows"`    // by table
}

func (w *winbackWork) summary() string {
	tables := slices.Sorted(maps.Keys(w.Rows))
	rows := make([]string, len(tables))
	for i, t := range tables {
		rows[i] = fmt.Sprintf("%s %.0f", t, w.Rows[t])
	}
	return fmt.Sprintf("%s: %.0f transactions, %.2f s in them, of which %.2f s waiting for ClickHouse flushes; ClickHouse rows: %s",
		w.Run, w.Transactions, w.BatchSeconds, w.FlushSeconds, strings.Join(rows, ", "))
}

// workOf reads a winbackWork from a /metrics text.
func workOf(run, text string) winbackWork {
	w := winbackWork{Run: run, Rows: map[string]float64{}}
	for _, ln := range strings.Split(text, "\n") {
		name, rest, ok := strings.Cut(ln, " ")
		if !ok || strings.HasPrefix(ln, "#") {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			continue
		}
		switch {
		case name == "winback_transactions_committed_total":
			w.Transactions = v
		case name == "winback_batch_duration_seconds_sum":
			w.BatchSeconds = v
		case name == "winback_clickhouse_flush_seconds_sum":
			w.FlushSeconds = v
		case strings.HasPrefix(name, `winback_clickhouse_rows_total{table="`):
			w.Rows[strings.TrimSuffix(strings.TrimPrefix(name, `winback_clickhouse_rows_total{table="`), `"}`)] = v
		}
	}
	return w
}
