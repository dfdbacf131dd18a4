package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/config"
	"github.com/winback/winback/testenv"
)

// runBin runs the winback binary with args and returns its exit code and
// stderr. bound is a generous limit: a command that hangs fails the test.
func runBin(t *testing.T, bound time.Duration, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	cmd := exec.CommandContext(ctx, binPath, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("winback %s did not exit within %s; stderr:\n%s", strings.Join(args, " "), bound, stderr.String())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, stdout.String(), stderr.String()
}

// closedAddr returns a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	return freeAddr(t)
}

// muteAddr returns a loopback address that accepts connections and never
// answers.
func muteAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return ln.Addr().String()
}

// TestStartupFailsFast runs each command against an unreachable
// dependency with a short --startup-timeout: each must exit 1 with one
// line naming the setting, the address and a fix, and nothing else.
func TestStartupFailsFast(t *testing.T) {
	k := testenv.NewKafka(t, "orders", "email-events", "support-events", "winback-triggers", "winback-dlq", "winback-state")
	reg := testenv.NewRegistry(t)
	noKafka, noReg := closedAddr(t), closedAddr(t)
	ch := testenv.NewClickHouse(t)
	if ch.HTTPPort() == 0 {
		t.Fatal("the test ClickHouse has no HTTP port (CLICKHOUSE_DSN set?); this test needs a local one")
	}
	// The newcomer's mistake: ClickHouse's HTTP port (8123 by default).
	chHTTP := fmt.Sprintf("127.0.0.1:%d", ch.HTTPPort())
	// Something else that answers HTTP: the registry.
	otherHTTP := strings.TrimPrefix(reg.URL(), "http://")
	noCH := closedAddr(t)
	mute := muteAddr(t)

	cases := []struct {
		name    string
		args    []string
		setting string
		hint    string
	}{
		{"run without kafka", []string{"run", "--kafka-brokers", noKafka}, "--kafka-brokers " + noKafka, "nothing listens there"},
		{"gen without kafka", []string{"gen", "--kafka-brokers", noKafka}, "--kafka-brokers " + noKafka, "nothing listens there"},
		{"backtest without kafka", []string{"backtest", "--kafka-brokers", noKafka}, "--kafka-brokers " + noKafka, "start Kafka"},
		{"run without registry", []string{"run", "--kafka-brokers", k.Addr(), "--registry-url", "http://" + noReg}, "--registry-url http://" + noReg, "start the registry"},
		{"gen without registry", []string{"gen", "--kafka-brokers", k.Addr(), "--registry-url", "http://" + noReg}, "--registry-url http://" + noReg, "start the registry"},
		{"run without clickhouse", []string{"run", "--kafka-brokers", k.Addr(), "--registry-url", reg.URL(),
			"--clickhouse-dsn", "clickhouse://u:secret@" + noCH + "/default"}, "--clickhouse-dsn clickhouse://u:***@" + noCH + "/default", "start clickhouse-server"},
		{"run on ClickHouse's HTTP port", []string{"run", "--kafka-brokers", k.Addr(), "--registry-url", reg.URL(),
			"--clickhouse-dsn", "clickhouse://" + chHTTP + "/default"}, "--clickhouse-dsn clickhouse://" + chHTTP,
			fmt.Sprintf("%d is ClickHouse's HTTP port; winback speaks the native protocol on 9000", ch.HTTPPort())},
		{"migrate on another HTTP server", []string{"migrate", "--clickhouse-dsn", "clickhouse://" + otherHTTP + "/default"},
			"--clickhouse-dsn clickhouse://" + otherHTTP, "answers HTTP, not ClickHouse's native protocol"},
		{"migrate on a port that never answers", []string{"migrate", "--clickhouse-dsn", "clickhouse://" + mute + "/default"},
			"--clickhouse-dsn clickhouse://" + mute, "accepts connections but does not answer ClickHouse's native protocol"},
	}
	shape := regexp.MustCompile(`^winback (run|gen|backtest|migrate): --[a-z-]+ \S+: not reachable within 1s \(--startup-timeout\): .+; .+\n$`)
	// An HTTP port is a mistake, not an outage: no waiting.
	httpShape := regexp.MustCompile(`^winback (run|migrate): --clickhouse-dsn \S+: .+; .+\n$`)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			timeout := "1s"
			if strings.Contains(c.name, "HTTP") {
				timeout = "60s" // must fail at once, not wait
			}
			args := append(c.args, "--startup-timeout", timeout, "--http-addr", freeAddr(t))
			code, _, stderr := runBin(t, 60*time.Second, args...)
			if code != 1 {
				t.Errorf("exit code %d, want 1; stderr:\n%s", code, stderr)
			}
			sh := shape
			if strings.Contains(c.name, "HTTP") {
				sh = httpShape
			}
			if !sh.MatchString(stderr) {
				t.Errorf("stderr is not one line of the expected shape:\n%s", stderr)
			}
			for _, want := range []string{c.setting, c.hint} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr does not contain %q:\n%s", want, stderr)
				}
			}
			if strings.Contains(stderr, "secret") {
				t.Errorf("stderr shows the password:\n%s", stderr)
			}
		})
	}
	t.Run("no DDL without kafka", func(t *testing.T) { noDDLWithoutKafka(t, ch) })
}

// noDDLWithoutKafka: run checks Kafka before it touches ClickHouse, so a
// wrong broker address leaves the database alone.
func noDDLWithoutKafka(t *testing.T, ch *testenv.ClickHouse) {
	db := fmt.Sprintf("wb_noddl_%d", time.Now().UnixNano()%1e6)
	code, _, stderr := runBin(t, 60*time.Second, "run", "--kafka-brokers", closedAddr(t),
		"--clickhouse-dsn", ch.DSN(), "--clickhouse-database", db, "--startup-timeout", "1s")
	if code != 1 || !strings.Contains(stderr, "--kafka-brokers") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	conn := openCH(t, ch.DSN())
	var n uint64
	if err := conn.QueryRow("SELECT count() FROM system.databases WHERE name = ?", db).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("database %s was created although Kafka was unreachable", db)
	}
}

// TestGenFailsWithinDefault: gen's default --startup-timeout is short
// (10s), and the probe does not flood stderr with franz-go's dial errors.
func TestGenFailsWithinDefault(t *testing.T) {
	// Refused at once: the test only checks the bound and the output.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	began := time.Now()
	code, _, stderr := runBin(t, 60*time.Second, "gen", "--kafka-brokers", addr, "--encoding", "json")
	if code != 1 {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "within 10s (--startup-timeout)") {
		t.Errorf("gen's default startup timeout is not 10s:\n%s", stderr)
	}
	if n := strings.Count(stderr, "\n"); n != 1 {
		t.Errorf("stderr has %d lines, want 1:\n%s", n, stderr)
	}
	// A generous bound, not a speed assertion: the old behaviour hung.
	if took := time.Since(began); took > 40*time.Second {
		t.Errorf("gen took %s to give up", took)
	}
}

// TestCompressionCodecs: every kafka.compression the configuration accepts
// is the franz-go codec of its name. (TestProducerStyles' kafkajs run
// shows that the setting reaches the records: KafkaJS, which reads no
// snappy, reads winback's gzip triggers.)
func TestCompressionCodecs(t *testing.T) {
	want := map[string]kgo.CompressionCodec{
		"snappy": kgo.SnappyCompression(), "lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
		"gzip": kgo.GzipCompression(), "none": kgo.NoCompression(),
	}
	if len(config.Compressions) != len(want) {
		t.Fatalf("config accepts %v; the test knows %d codecs", config.Compressions, len(want))
	}
	for _, name := range config.Compressions {
		c, err := compression(name)
		if err != nil || c != want[name] {
			t.Errorf("%s: %v, %v; want %v", name, c, err, want[name])
		}
	}
	if _, err := compression("brotli"); err == nil {
		t.Error("brotli: no error")
	}
}

// TestStopDuringStartup: SIGTERM while run still waits for Kafka is a
// clean stop (exit 0), as it is once running, and the log says what the
// start-up was waiting on. It used to exit 1 with "context canceled".
func TestStopDuringStartup(t *testing.T) {
	noKafka := closedAddr(t)
	cmd := exec.Command(binPath, "run", "--kafka-brokers", noKafka, "--startup-timeout", "5m")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // past the signal handler, into the retries
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("run did not stop on SIGTERM; stderr:\n%s", stderr.String())
	}
	for _, want := range []string{"stopped before start-up finished", "connection refused"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}
