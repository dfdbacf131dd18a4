package testenv

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// startChild starts a child-process server even if CLICKHOUSE_DSN is set:
// these tests are about the child process.
func startChild(t *testing.T, o ClickHouseOptions) *ClickHouse {
	t.Helper()
	t.Setenv(EnvClickHouseDSN, "")
	if o.Logger == nil {
		o.Logger = TestLogger(t)
	}
	ch, err := StartClickHouse(testCtx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ch.Close)
	return ch
}

func openCH(t *testing.T, ch *ClickHouse) driver.Conn {
	t.Helper()
	opts, err := clickhouse.ParseDSN(ch.DSN())
	if err != nil {
		t.Fatalf("ParseDSN(%q): %v", ch.DSN(), err)
	}
	if len(opts.Addr) != 1 || opts.Addr[0] != ch.Addr() || opts.Auth.Database != "default" || opts.Protocol != clickhouse.Native {
		t.Fatalf("DSN %q parses to addr %v database %q protocol %v", ch.DSN(), opts.Addr, opts.Auth.Database, opts.Protocol)
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// insertRows writes ids from..from+n-1 with an explicit column list, which
// ClickHouse 18.16 needs for PrepareBatch.
func insertRows(t *testing.T, ctx context.Context, conn driver.Conn, from, n int) {
	t.Helper()
	b, err := conn.PrepareBatch(ctx, "INSERT INTO kv (id, name, amount) VALUES")
	if err != nil {
		t.Fatalf("prepare batch: %v", err)
	}
	for i := from; i < from+n; i++ {
		if err := b.Append(uint64(i), "name-"+strconv.Itoa(i), float64(i)/2); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatalf("send batch: %v", err)
	}
}

// countSum returns count() and sum(id) of kv.
func countSum(ctx context.Context, conn driver.Conn) (uint64, uint64, error) {
	var n, sum uint64
	err := conn.QueryRow(ctx, "SELECT count(), sum(id) FROM kv").Scan(&n, &sum)
	return n, sum, err
}

func TestClickHouse(t *testing.T) {
	ctx := testCtx(t)
	t.Setenv("TZ", "Asia/Tokyo") // the server must use its configured UTC
	ch := startChild(t, ClickHouseOptions{})
	if ch.External() || !ch.Running() {
		t.Fatalf("External() = %v, Running() = %v", ch.External(), ch.Running())
	}
	if want := "clickhouse://" + ch.Addr() + "/default"; ch.DSN() != want {
		t.Fatalf("DSN() = %q, want %q", ch.DSN(), want)
	}
	conn := openCH(t, ch)

	var version, tz string
	if err := conn.QueryRow(ctx, "SELECT version(), timezone()").Scan(&version, &tz); err != nil {
		t.Fatal(err)
	}
	if tz != "UTC" && tz != "Etc/UTC" {
		t.Fatalf("server timezone %q, want UTC", tz)
	}
	t.Logf("ClickHouse %s at %s", version, ch.Addr())

	// The HTTP interface answers on HTTPPort.
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(ch.HTTPPort()) + "/ping")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(body)) != "Ok." {
		t.Fatalf("GET /ping = %q", body)
	}

	if err := conn.Exec(ctx, `CREATE TABLE kv (id UInt64, name String, amount Float64) ENGINE = MergeTree ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	insertRows(t, ctx, conn, 0, 1000)
	rows, err := conn.Query(ctx, "SELECT id, name, amount FROM kv WHERE id IN (0, 7, 999) ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var (
			id     uint64
			name   string
			amount float64
		)
		if err := rows.Scan(&id, &name, &amount); err != nil {
			t.Fatal(err)
		}
		got = append(got, strconv.FormatUint(id, 10)+"/"+name+"/"+strconv.FormatFloat(amount, 'f', -1, 64))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if want := "0/name-0/0 7/name-7/3.5 999/name-999/499.5"; strings.Join(got, " ") != want {
		t.Fatalf("read back %q, want %q", got, want)
	}

	// A crash (SIGKILL) loses nothing that was acknowledged, and the
	// server comes back on the same address.
	addr, httpPort := ch.Addr(), ch.HTTPPort()
	if err := ch.Kill(); err != nil {
		t.Fatal(err)
	}
	if ch.Running() {
		t.Fatal("Running() after Kill")
	}
	if _, _, err := countSum(ctx, conn); err == nil {
		t.Fatal("query succeeded while the server was killed")
	}
	if err := ch.Kill(); err != nil {
		t.Fatalf("Kill of a stopped server: %v", err)
	}
	if err := ch.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if ch.Addr() != addr || ch.HTTPPort() != httpPort {
		t.Fatalf("restarted on %s/%d, want %s/%d", ch.Addr(), ch.HTTPPort(), addr, httpPort)
	}
	if n, sum, err := countSum(ctx, conn); err != nil || n != 1000 || sum != 999*1000/2 {
		t.Fatalf("after kill and restart: count %d sum %d err %v; want 1000 rows", n, sum, err)
	}

	// Graceful stop and restart; Restart of a running server restarts it.
	insertRows(t, ctx, conn, 1000, 10)
	if err := ch.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := ch.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := ch.Restart(ctx); err != nil {
		t.Fatalf("Restart of a running server: %v", err)
	}
	if n, _, err := countSum(ctx, conn); err != nil || n != 1010 {
		t.Fatalf("after stop and restart: count %d err %v; want 1010", n, err)
	}

	dir := ch.Dir()
	ch.Close()
	ch.Close()
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temp dir %s still there after Close: %v", dir, err)
	}
	if err := ch.Restart(ctx); err == nil {
		t.Fatal("Restart after Close succeeded")
	}
}

// TestClickHouseDir starts twice on one directory: the data survives a
// Close, and Close keeps a directory it did not create.
func TestClickHouseDir(t *testing.T) {
	ctx := testCtx(t)
	dir := filepath.Join(t.TempDir(), "a & <b>") // needs XML escaping
	ch := startChild(t, ClickHouseOptions{Dir: dir})
	conn := openCH(t, ch)
	if err := conn.Exec(ctx, `CREATE TABLE kv (id UInt64, name String, amount Float64) ENGINE = MergeTree ORDER BY id`); err != nil {
		t.Fatal(err)
	}
	insertRows(t, ctx, conn, 0, 100)
	conn.Close()
	ch.Close()
	if _, err := os.Stat(filepath.Join(dir, "config.xml")); err != nil {
		t.Fatalf("Close removed the caller's dir: %v", err)
	}

	ch2 := startChild(t, ClickHouseOptions{Dir: dir})
	conn2 := openCH(t, ch2)
	if n, _, err := countSum(ctx, conn2); err != nil || n != 100 {
		t.Fatalf("second start on %s: count %d err %v; want 100", dir, n, err)
	}
}

func TestClickHouseStartFailure(t *testing.T) {
	t.Setenv(EnvClickHouseDSN, "")
	fake := filepath.Join(t.TempDir(), "clickhouse-server")
	script := "#!/bin/sh\necho 'DB::Exception: the fake server refuses to start' >&2\nexit 3\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, err := StartClickHouse(testCtx(t), ClickHouseOptions{Dir: dir, Binary: fake})
	if err == nil {
		t.Fatal("a server that exits at once started")
	}
	for _, want := range []string{"did not start", "exit status 3", "the fake server refuses to start", dir} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestClickHouseExternal(t *testing.T) {
	ctx := testCtx(t)
	child := startChild(t, ClickHouseOptions{})

	t.Setenv(EnvClickHouseDSN, child.DSN())
	ext, err := StartClickHouse(ctx, ClickHouseOptions{Binary: "/nonexistent/clickhouse-server"})
	if err != nil {
		t.Fatal(err)
	}
	defer ext.Close()
	if !ext.External() || ext.DSN() != child.DSN() || ext.Addr() != child.Addr() || ext.HTTPPort() != 0 || ext.Dir() != "" {
		t.Fatalf("external handle: External %v DSN %q Addr %q HTTPPort %d Dir %q", ext.External(), ext.DSN(), ext.Addr(), ext.HTTPPort(), ext.Dir())
	}
	for name, f := range map[string]func() error{
		"Stop":    ext.Stop,
		"Kill":    ext.Kill,
		"Restart": func() error { return ext.Restart(ctx) },
	} {
		if err := f(); !errors.Is(err, ErrExternalClickHouse) {
			t.Errorf("%s on external server: %v, want ErrExternalClickHouse", name, err)
		}
	}
	ext.Close()
	if !child.Running() {
		t.Fatal("Close of the external handle stopped the server")
	}

	t.Setenv(EnvClickHouseDSN, "clickhouse://127.0.0.1:1/default")
	short, cancel := context.WithTimeout(ctx, 300_000_000) // 300 ms
	defer cancel()
	if _, err := StartClickHouse(short, ClickHouseOptions{}); err == nil || !strings.Contains(err.Error(), "does not answer") {
		t.Fatalf("unreachable external server: %v", err)
	}
}

// TestClickHouseDiesWithParent kills (SIGKILL) a process that started a
// server: the server must not outlive it.
func TestClickHouseDiesWithParent(t *testing.T) {
	ctx := testCtx(t)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envHelper+"="+t.TempDir())
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("helper printed no server pid: %v\n%s", err, stderr.String())
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("server pid %d not running before its parent dies: %v", pid, err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	// The server is the helper's child, so once it is dead nobody reaps
	// it but init: wait for the pid to vanish or turn zombie.
	deadline := time.After(15 * time.Second)
	for {
		if !alive(pid) {
			return
		}
		select {
		case <-deadline:
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("clickhouse-server %d outlived its parent", pid)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// TestClickHousePause: a paused server accepts nothing until Resume, and
// then answers on the same connection pool with its data intact.
func TestClickHousePause(t *testing.T) {
	ch := startChild(t, ClickHouseOptions{})
	conn := openCH(t, ch)
	if err := conn.Ping(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := ch.Pause(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ch.Resume() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := conn.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("a paused server answered")
	}
	if !ch.Running() {
		t.Fatal("a paused server counts as stopped")
	}
	if err := ch.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := pingClickHouse(testCtx(t), mustOptions(t, ch)); err != nil {
		t.Fatalf("after Resume: %v", err)
	}
}

func mustOptions(t *testing.T, ch *ClickHouse) *clickhouse.Options {
	t.Helper()
	opts, err := clickhouse.ParseDSN(ch.DSN())
	if err != nil {
		t.Fatal(err)
	}
	return opts
}
