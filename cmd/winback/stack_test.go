package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/config"
	"github.com/winback/winback/testenv"
)

// binPath is the winback binary built once for the tests that run it as a
// child process (kcat, kill -9, rebalance).
var binPath string

// raceBuild: the tests run under the race detector (race_test.go), and so
// does every winback child.
var raceBuild bool

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "winback-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "winback")
	build := []string{"build", "-o", binPath}
	if raceBuild {
		// Each child writes its race reports to a file of its own
		// (race.PID), read when the tests end: a child killed or
		// stopped by a test still counts.
		build = append(build, "-race")
		os.Setenv("GORACE", "log_path="+filepath.Join(dir, "race"))
	}
	out, err := exec.Command("go", append(build, ".")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build winback: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	if reports, _ := filepath.Glob(filepath.Join(dir, "race.*")); len(reports) > 0 {
		for _, r := range reports {
			b, _ := os.ReadFile(r)
			fmt.Fprintf(os.Stderr, "winback child %s:\n%s\n", filepath.Base(r), b)
		}
		fmt.Fprintf(os.Stderr, "FAIL: %d winback children reported data races\n", len(reports))
		code = max(code, 1)
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// stack is a real local environment: kfake on a port, srfake and a
// clickhouse-server child process, plus a Config pointing at them.
type stack struct {
	k   *testenv.Kafka
	reg *testenv.Registry
	ch  *testenv.ClickHouse
	cfg config.Config
}

func newStack(t *testing.T, partitions int32) *stack {
	t.Helper()
	return newStackWith(t, stackKafka(partitions))
}

// stackKafka is the broker of a stack: a free port, the default topics.
func stackKafka(partitions int32) testenv.KafkaOptions {
	tp := config.Default().Topics
	return testenv.KafkaOptions{
		Addr:            "127.0.0.1:0",
		Partitions:      partitions,
		Topics:          []string{tp.Orders, tp.Email, tp.Support, tp.Triggers, tp.DLQ},
		CompactedTopics: []string{tp.State},
	}
}

func newStackWith(t *testing.T, kopts testenv.KafkaOptions) *stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := config.Default()
	k, err := testenv.StartKafka(ctx, kopts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	reg := testenv.NewRegistry(t)
	ch := testenv.NewClickHouse(t)
	cfg.Kafka.Brokers = []string{k.Addr()}
	cfg.Kafka.SessionTimeout = 6 * time.Second
	cfg.Registry.URL = reg.URL()
	cfg.ClickHouse.DSN = ch.DSN()
	cfg.ClickHouse.Database = "wb_" + strings.ToLower(strings.NewReplacer("/", "_", "-", "_").Replace(t.Name()))
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.CommitInterval = 200 * time.Millisecond
	cfg.LogFormat = "text"
	cfg.LogLevel = "warn"
	return &stack{k: k, reg: reg, ch: ch, cfg: cfg}
}

// serveInProcess runs the pipeline in this process until the test ends; it
// returns the HTTP address and the metrics registry.
func (s *stack) serveInProcess(t *testing.T, cfg config.Config) (string, *prometheus.Registry) {
	t.Helper()
	addr, reg, _ := s.serveStoppable(t, cfg)
	return addr, reg
}

// serveStoppable is serveInProcess with a function that stops the pipeline
// and waits for it, for a test that must stop it before its cleanups run
// (a broker the test restarted closes before the pipeline would).
func (s *stack) serveStoppable(t *testing.T, cfg config.Config) (string, *prometheus.Registry, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	reg := prometheus.NewRegistry()
	started := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- serve(ctx, &cfg, testenv.TestLogger(t), reg, func(a string) { started <- a }) }()
	var addr string
	select {
	case addr = <-started:
	case err := <-done:
		cancel()
		t.Fatalf("pipeline did not start: %v", err)
	case <-time.After(time.Minute):
		cancel()
		t.Fatal("pipeline did not start within a minute")
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("pipeline stopped with an error: %v", err)
				}
			case <-time.After(time.Minute):
				t.Error("pipeline did not stop within a minute of cancellation")
			}
		})
	}
	t.Cleanup(stop)
	return addr, reg, stop
}

// waitCaughtUp waits until group has committed the end offset of every
// partition of topics.
func waitCaughtUp(t *testing.T, brokers []string, group string, timeout time.Duration, topics ...string) {
	t.Helper()
	adm, err := kadm.NewOptClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		// Committed offsets first: a transaction that commits input
		// offsets writes its forwarded records in the repartition topic
		// too, so ends listed after the offsets hold them.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		committed, err2 := adm.FetchOffsets(ctx, group)
		ends, err1 := adm.ListEndOffsets(ctx, topics...)
		cancel()
		if err1 == nil && err2 == nil {
			behind := 0
			ends.Each(func(o kadm.ListedOffset) {
				c, ok := committed.Lookup(o.Topic, o.Partition)
				if (!ok && o.Offset > 0) || (ok && c.At < o.Offset) {
					behind++
				}
			})
			if behind == 0 {
				return
			}
			last = fmt.Sprintf("%d partitions behind", behind)
		} else {
			last = fmt.Sprint(err1, err2)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("group %s did not catch up within %s: %s", group, timeout, last)
}

// waitConfirmed waits until the in-process pipeline's ClickHouse sink has
// confirmed the rows of every committed transaction: ClickHouse is
// written after the Kafka commit, so a caught-up group may still have its
// last transaction's rows on the way.
func waitConfirmed(t *testing.T, reg prometheus.Gatherer) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for gauge(t, reg, "winback_clickhouse_unconfirmed") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("ClickHouse did not confirm the last committed transaction's rows within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a free port.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// waitReady polls /readyz until it answers 200.
func waitReady(t *testing.T, httpAddr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s/readyz not ready within %s", httpAddr, timeout)
}

// consumeAll reads every committed record of topic from the start to its
// current end offsets.
func consumeAll(t *testing.T, brokers []string, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.KeepControlRecords(),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListCommittedOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	var out []*kgo.Record
	seen := map[int32]int64{}
	for done := func() bool {
		for p, end := range want {
			if seen[p] < end-1 {
				return false
			}
		}
		return true
	}; !done(); {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		// Control records (transaction markers) take offsets too, so
		// they are kept to see the end, but not returned.
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				out = append(out, r)
			}
			seen[r.Partition] = r.Offset
		})
	}
	if ctx.Err() != nil {
		t.Fatalf("reading %s: did not reach the end offsets %v (at %v)", topic, want, seen)
	}
	return out
}
