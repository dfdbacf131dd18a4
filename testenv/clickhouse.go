package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// EnvClickHouseDSN names the environment variable that points testenv at an
// existing ClickHouse server instead of starting one.
const EnvClickHouseDSN = "CLICKHOUSE_DSN"

// ErrExternalClickHouse is returned by Stop, Kill and Restart on a server
// testenv did not start (CLICKHOUSE_DSN).
var ErrExternalClickHouse = errors.New("clickhouse server is external (" + EnvClickHouseDSN + "): testenv does not control it")

const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 30 * time.Second
)

// errPortInUse marks a start that failed because a port was taken between
// choosing it and the server binding it.
var errPortInUse = errors.New("port already in use")

// ClickHouseOptions configures StartClickHouse.
type ClickHouseOptions struct {
	// Dir holds the server's config, data and logs. Empty means a new
	// temporary directory, removed by Close. A given Dir is kept, and a
	// server started on it again finds its data.
	Dir string
	// Binary is the clickhouse-server to run. Empty means
	// EnsureClickHouse (which may install it).
	Binary string
	// Logger receives start and stop events; nil discards them.
	Logger *slog.Logger
}

// ClickHouse is a real clickhouse-server running as a child process on free
// loopback ports, or a handle on the external server named by
// CLICKHOUSE_DSN.
type ClickHouse struct {
	log      *slog.Logger
	dsn      string
	addr     string
	httpPort int
	external bool

	bin       string
	layout    chLayout
	removeDir bool

	mu     sync.Mutex
	proc   *proc // nil when the server is not running
	closed bool
}

// StartClickHouse starts clickhouse-server as a child process and waits
// until it answers SELECT 1 on the native port (at most 30 s). The child
// gets SIGKILL if this process dies. If CLICKHOUSE_DSN is set, it starts
// nothing and returns a handle on that server once it answers.
func StartClickHouse(ctx context.Context, o ClickHouseOptions) (*ClickHouse, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if dsn := os.Getenv(EnvClickHouseDSN); dsn != "" {
		return externalClickHouse(ctx, dsn, log)
	}
	bin := o.Binary
	if bin == "" {
		var err error
		if bin, err = EnsureClickHouse(ctx, log); err != nil {
			return nil, err
		}
	}
	c := &ClickHouse{log: log, bin: bin}
	dir := o.Dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "winback-clickhouse-"); err != nil {
			return nil, fmt.Errorf("testenv: clickhouse dir: %w", err)
		}
		c.removeDir = true
	}
	var err error
	for range 3 {
		var ports []int
		if ports, err = freePorts(2); err != nil {
			break
		}
		c.setLayout(newLayout(dir, ports[0], ports[1]))
		if err = c.layout.write(); err != nil {
			break
		}
		c.mu.Lock()
		err = c.startLocked(ctx)
		c.mu.Unlock()
		if !errors.Is(err, errPortInUse) {
			break
		}
		log.Warn("clickhouse port taken, trying other ports", "err", err)
	}
	if err != nil {
		if c.removeDir {
			_ = os.RemoveAll(dir)
		}
		return nil, err
	}
	return c, nil
}

func (c *ClickHouse) setLayout(l chLayout) {
	c.layout = l
	c.httpPort = l.HTTPPort
	c.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(l.TCPPort))
	c.dsn = "clickhouse://" + c.addr + "/default"
}

func externalClickHouse(ctx context.Context, dsn string, log *slog.Logger) (*ClickHouse, error) {
	opts, err := clickhouse.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("testenv: %s: %w", EnvClickHouseDSN, err)
	}
	if len(opts.Addr) == 0 {
		return nil, fmt.Errorf("testenv: %s %q has no address", EnvClickHouseDSN, dsn)
	}
	c := &ClickHouse{log: log, dsn: dsn, addr: opts.Addr[0], external: true}
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	for {
		err := pingClickHouse(ctx, opts)
		if err == nil {
			log.Info("using external clickhouse", "addr", c.addr)
			return c, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("testenv: clickhouse at %s=%s does not answer: %w", EnvClickHouseDSN, dsn, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// DSN is "clickhouse://127.0.0.1:PORT/default" (or CLICKHOUSE_DSN), for
// clickhouse.ParseDSN.
func (c *ClickHouse) DSN() string { return c.dsn }

// Addr is the native protocol's "host:port".
func (c *ClickHouse) Addr() string { return c.addr }

// HTTPPort is the HTTP interface's port on 127.0.0.1, or 0 for an
// external server.
func (c *ClickHouse) HTTPPort() int { return c.httpPort }

// Dir is the server's directory (config.xml, data/, log/), or "" for an
// external server.
func (c *ClickHouse) Dir() string { return c.layout.Dir }

// External reports whether this is a CLICKHOUSE_DSN server.
func (c *ClickHouse) External() bool { return c.external }

// Running reports whether the child process is up (always true for an
// external server).
func (c *ClickHouse) Running() bool {
	if c.external {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.proc != nil && !c.proc.exited()
}

// Stop stops the server gracefully: SIGTERM, then wait (SIGKILL after 30 s).
// Stopping a stopped server does nothing.
func (c *ClickHouse) Stop() error { return c.stop(syscall.SIGTERM) }

// Kill kills the server with SIGKILL and waits for it to exit, like a
// crash. Killing a stopped server does nothing.
func (c *ClickHouse) Kill() error { return c.stop(syscall.SIGKILL) }

// stop is Stop and Kill: stopLocked with sig, under the lock, on a server
// testenv started.
func (c *ClickHouse) stop(sig syscall.Signal) error {
	if c.external {
		return ErrExternalClickHouse
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopLocked(sig)
}

// Pause freezes the server with SIGSTOP, like a stalled host: connections
// stay open and connects succeed (the kernel accepts them), but nothing
// answers until Resume. Pausing a stopped server does nothing.
func (c *ClickHouse) Pause() error { return c.signal(syscall.SIGSTOP) }

// Resume continues a server frozen by Pause (SIGCONT).
func (c *ClickHouse) Resume() error { return c.signal(syscall.SIGCONT) }

func (c *ClickHouse) signal(sig syscall.Signal) error {
	if c.external {
		return ErrExternalClickHouse
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.proc == nil || c.proc.exited() {
		return nil
	}
	if err := c.proc.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("testenv: signal clickhouse: %w", err)
	}
	return nil
}

// Restart starts the server again on the same ports and data directory,
// stopping it first if it still runs, and waits until it answers.
func (c *ClickHouse) Restart(ctx context.Context) error {
	if c.external {
		return ErrExternalClickHouse
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("testenv: clickhouse: restart after Close")
	}
	if err := c.stopLocked(syscall.SIGTERM); err != nil {
		return err
	}
	// The old process's ports are free once it has exited, but give the
	// kernel a moment if a bind still fails.
	for {
		err := c.startLocked(ctx)
		if !errors.Is(err, errPortInUse) {
			return err
		}
		c.log.Warn("clickhouse restart: port still in use, retrying", "err", err)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Close stops the server and removes its directory if it was a temporary
// one (then it kills the server: there is nothing to stop gracefully for).
// A server on a caller's Dir is stopped gracefully. Close of an external
// server does nothing. It is safe to call more than once.
func (c *ClickHouse) Close() {
	if c.external {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	// A server whose directory is about to go needs no graceful stop.
	sig := syscall.SIGTERM
	if c.removeDir {
		sig = syscall.SIGKILL
	}
	if err := c.stopLocked(sig); err != nil {
		c.log.Warn("clickhouse stop", "err", err)
	}
	if c.removeDir {
		if err := os.RemoveAll(c.layout.Dir); err != nil {
			c.log.Warn("clickhouse: remove dir", "dir", c.layout.Dir, "err", err)
		}
	}
}

// startLocked runs clickhouse-server and waits until it is ready; on
// failure the process is killed and the error carries the log tails.
func (c *ClickHouse) startLocked(ctx context.Context) error {
	if c.proc != nil && !c.proc.exited() {
		return errors.New("testenv: clickhouse already running")
	}
	c.proc = nil
	// Only what this run writes to the error log explains its failure.
	errLogStart := fileSize(c.layout.ErrLog)
	stdio, err := os.OpenFile(c.layout.Stdio, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("testenv: clickhouse stdout log: %w", err)
	}
	began := time.Now()
	p, err := startProc(c.layout.Dir, stdio, c.bin, "--config-file="+c.layout.Config)
	if err != nil {
		return fmt.Errorf("testenv: start %s: %w", c.bin, err)
	}
	opts := &clickhouse.Options{Addr: []string{c.addr}}
	ping := func(ctx context.Context) error { return pingClickHouse(ctx, opts) }
	if err := p.waitReady(ctx, 50*time.Millisecond, ping); err != nil {
		p.kill()
		logs := c.logTail(errLogStart)
		if strings.Contains(logs, "Address already in use") {
			err = fmt.Errorf("%w: %w", errPortInUse, err)
		}
		return fmt.Errorf("testenv: clickhouse-server (tcp %d, http %d, dir %s) did not start: %w\n%s",
			c.layout.TCPPort, c.layout.HTTPPort, c.layout.Dir, err, logs)
	}
	c.proc = p
	c.log.Info("clickhouse started", "addr", c.addr, "http_port", c.httpPort, "dir", c.layout.Dir,
		"pid", p.cmd.Process.Pid, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// stopLocked sends sig and waits for the process to exit; after
// stopTimeout it sends SIGKILL.
func (c *ClickHouse) stopLocked(sig syscall.Signal) error {
	p := c.proc
	if p == nil {
		return nil
	}
	c.proc = nil
	if p.exited() {
		return nil
	}
	began := time.Now()
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("testenv: signal clickhouse: %w", err)
	}
	select {
	case <-p.done:
		c.log.Info("clickhouse stopped", "signal", sig.String(), "took", time.Since(began).Round(time.Millisecond))
		return nil
	case <-time.After(stopTimeout):
	}
	p.kill()
	return fmt.Errorf("testenv: clickhouse did not stop within %s of %s; killed it", stopTimeout, sig)
}

// logTail is the end of this run's error log and of the server's stdout,
// to explain a failed start.
func (c *ClickHouse) logTail(errLogFrom int64) string {
	var b strings.Builder
	if s := readFrom(c.layout.ErrLog, errLogFrom); s != "" {
		fmt.Fprintf(&b, "--- %s (tail)\n%s\n", c.layout.ErrLog, tail([]byte(s), 20))
	}
	if s := readFrom(c.layout.Stdio, 0); s != "" {
		fmt.Fprintf(&b, "--- %s (tail)\n%s\n", c.layout.Stdio, tail([]byte(s), 20))
	}
	return b.String()
}

// pingClickHouse opens a connection and runs SELECT 1.
func pingClickHouse(ctx context.Context, base *clickhouse.Options) error {
	opts := *base
	opts.DialTimeout = time.Second
	opts.ReadTimeout = 5 * time.Second
	opts.MaxOpenConns = 1
	conn, err := clickhouse.Open(&opts)
	if err != nil {
		return err
	}
	defer conn.Close()
	var one uint8
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return err
	}
	if one != 1 {
		return fmt.Errorf("SELECT 1 returned %d", one)
	}
	return nil
}

// freePorts returns n distinct free TCP ports on 127.0.0.1. Another process
// may take one before we use it; StartClickHouse retries with new ports.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("testenv: find a free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// readFrom reads path from offset, at most the last 64 KiB.
func readFrom(path string, off int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if size := fileSize(path); size-off > 64<<10 {
		off = size - 64<<10
	}
	if _, err := f.Seek(off, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
