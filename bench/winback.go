package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/winback/winback/config"
	"github.com/winback/winback/gen"
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

// startWinback runs `winback run` with c in its environment
// (config.Environ), on a free HTTP port, its JSON log in logPath.
func startWinback(ctx context.Context, bin string, c config.Config, logPath string) (*winbackProc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "run")
	c.HTTPAddr, c.HTTPPprof, c.LogFormat, c.LogLevel = addr, true, "json", "info"
	cmd.Env = append(os.Environ(), config.Environ(&c)...)
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
// offsets of the input topics.
func waitCaughtUp(ctx context.Context, adm *kadm.Client, p *winbackProc, group string, ends kadm.ListedOffsets, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if err := p.failed(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("winback did not commit the end offsets within %s; log tail:\n%s", timeout, tail(p.logPath, 20))
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
			return nil
		}
	}
}

// waitConfirmed polls winback's /metrics until no ClickHouse rows are
// pending or unconfirmed (winback_clickhouse_pending_rows and
// winback_clickhouse_unconfirmed both 0), at most limit; it reports
// whether they got there.
func waitConfirmed(ctx context.Context, p *winbackProc, limit time.Duration) (bool, error) {
	deadline := time.Now().Add(limit)
	for {
		if err := p.failed(); err != nil {
			return false, err
		}
		if code, body, err := p.get(ctx, "/metrics"); err == nil && code == http.StatusOK {
			mfs := parseMetrics(body)
			if mfs != nil && value(mfs, "winback_clickhouse_pending_rows") == 0 && value(mfs, "winback_clickhouse_unconfirmed") == 0 {
				return true, nil
			}
		}
		if time.Now().After(deadline) {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// winbackConfig is the configuration of a `winback run` on the bench's broker,
// registry and ClickHouse.
func winbackConfig(b *broker, chDSN, database, group, instance string, t winbackTopics) config.Config {
	c := config.Default()
	c.Kafka.Brokers = []string{b.Kafka}
	c.Registry.URL = b.Registry
	c.ClickHouse.DSN, c.ClickHouse.Database = chDSN, database
	c.Kafka.Group, c.Kafka.TransactionalID, c.Kafka.InstanceID = group, group, instance
	c.Kafka.SessionTimeout = 10 * time.Second
	c.Topics.Orders, c.Topics.Email, c.Topics.Support = t.In.Orders, t.In.Email, t.In.Support
	c.Topics.Triggers, c.Topics.DLQ, c.Topics.State = t.Triggers, t.DLQ, t.State
	return c
}

// winbackRun is what one end-to-end run measured.
type winbackRun struct {
	line line
	work winbackWork // from /metrics when caught up
}

// dbName is a ClickHouse database name for a run: bench_ and the run's
// name with every character but letters and digits made an underscore.
func dbName(run string) string {
	b := []byte("bench_" + run)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}

// runWinbackE2E runs `winback run` on a fresh group until its committed
// offsets reach the end of the three input topics, with commit_interval
// interval (0: winback's default). CPU and peak RSS are read from /proc
// at that moment (the process keeps running), so they cover start-up and
// the whole backlog but not the shutdown. If probe is set, it then
// measures trigger latency on live events before stopping.
func (o *orchestrator) runWinbackE2E(ctx context.Context, name string, t winbackTopics, interval time.Duration, probe bool) (winbackRun, error) {
	var run winbackRun
	l := &run.line
	l.Name = name
	group := "bench-" + name
	cfg := winbackConfig(o.broker, o.ch.DSN(), dbName(name), group, "one", t)
	if interval > 0 {
		cfg.CommitInterval = interval
	}
	if o.maxPollRecords > 0 {
		cfg.MaxPollRecords = o.maxPollRecords
	}
	if o.batchRows > 0 {
		cfg.ClickHouse.BatchRows = o.batchRows
	}
	ends, err := endOffsets(ctx, o.admin, t.In.Orders, t.In.Email, t.In.Support)
	if err != nil {
		return run, err
	}
	l.Events = sumOffsets(ends)
	b0, s0 := o.broker.CPU(), procCPU(o.chPID)
	p, err := startWinback(ctx, o.winbackBin, cfg, filepath.Join(o.dir, name+"-1.log"))
	if err != nil {
		return run, err
	}
	defer p.stop(o.stopTimeout)
	prof := o.profileWinback(ctx, p, name)
	if err := waitCaughtUp(ctx, kadm.NewClient(o.admin), p, group, ends, o.timeout); err != nil {
		return run, err
	}
	// Done means the state flushed too: ClickHouse has confirmed every
	// committed transaction's rows, so that its inserts are charged here.
	if ok, err := waitConfirmed(ctx, p, 3*cfg.CommitInterval+2*cfg.ClickHouse.FlushInterval+30*time.Second); err != nil {
		return run, err
	} else if !ok {
		o.log.Warn("ClickHouse rows still unconfirmed; measuring anyway", "run", name)
	}
	wall := time.Since(p.began)
	cpu, rss := procCPU(p.pid()), procPeakRSS(p.pid())
	l.Wall, l.CPU, l.PeakRSS = wall.Seconds(), cpu.Seconds(), rss
	l.BrokerCPU, l.ServerCPU = (o.broker.CPU() - b0).Seconds(), (procCPU(o.chPID) - s0).Seconds()
	o.log.Info("winback caught up", "run", name, "events", l.Events, "wall", wall.Round(time.Millisecond), "cpu", cpu)
	if code, body, err := p.get(ctx, "/metrics"); err == nil && code == http.StatusOK {
		run.work = workOf(name, body)
	} else {
		run.work = winbackWork{Run: name}
		o.log.Warn("no /metrics from winback", "run", name, "code", code, "err", err)
	}
	run.work.Interval = cfg.CommitInterval.String()
	run.work.IntervalS = cfg.CommitInterval.Seconds()
	run.work.MaxPollRecords, run.work.BatchRows = cfg.MaxPollRecords, cfg.ClickHouse.BatchRows
	run.work.Events = l.Events
	if o.profileDir != "" {
		if code, body, err := p.get(ctx, "/debug/pprof/heap"); err == nil && code == http.StatusOK {
			if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
				o.log.Warn("no heap profile of winback", "run", name, "err", err)
			} else if err := os.WriteFile(filepath.Join(o.profileDir, name+".heap.pprof"), []byte(body), 0o644); err != nil {
				o.log.Warn("no heap profile of winback", "run", name, "err", err)
			}
		}
	}

	if probe {
		lat, err := o.probeLatency(ctx, p, t, cfg.CommitInterval)
		if err != nil {
			return run, fmt.Errorf("latency probe: %w", err)
		}
		run.work.Latency = lat
	}
	if err := <-prof; err != nil {
		o.log.Warn("no CPU profile of winback", "run", name, "err", err)
	}
	if err := p.stop(o.stopTimeout); err != nil {
		return run, err
	}
	return run, nil
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
		// On a loaded machine the HTTP server may not listen yet.
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if _, _, err := p.get(ctx, "/healthz"); err == nil || ctx.Err() != nil {
				break
			}
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
