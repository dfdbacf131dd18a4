package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/winback/winback/testenv"
)

// TestClickHouseOutage stops ClickHouse for 30 s while events flow. The
// pipeline must pause (commit at most one transaction, hold a bounded
// amount of rows)
// rather than drop or buffer without bound, and after the restart every
// aggregate must arrive, exactly once.
func TestClickHouseOutage(t *testing.T) {
	s := newStack(t, 3)
	o := genOptions{customers: 200, days: 150, seed: 5, encoding: "json"}
	_, want, _ := independentPass(t, o)

	// Kafka commits one transaction ahead of ClickHouse (the rows are
	// written after the commit, and the next commit waits for them), so
	// the stream must span several transactions for the pause to show.
	s.cfg.MaxPollRecords = 2000
	_, reg := s.serveInProcess(t, s.cfg)
	if err := s.ch.Kill(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := produceTraffic(ctx, &s.cfg, &o, testenv.TestLogger(t), nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Second)

	if n := behind(t, s.cfg); n == 0 {
		t.Fatal("the group committed everything while ClickHouse was down: it did not pause")
	}
	pending := gauge(t, reg, "winback_clickhouse_pending_rows")
	retries := counter(t, reg, "winback_clickhouse_retries_total")
	if retries == 0 {
		t.Error("no ClickHouse retries while it was down")
	}
	// One transaction's rows at most: MaxPollRecords events, each
	// touching one customer row, one daily row and maybe a trigger or a
	// dead letter.
	if limit := float64(4 * s.cfg.MaxPollRecords); pending > limit {
		t.Errorf("%v rows pending while ClickHouse was down, more than one batch (%v)", pending, limit)
	}
	t.Logf("while down: %v rows pending, %v retries", pending, retries)

	if err := s.ch.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, s.cfg.Kafka.Brokers, s.cfg.Kafka.Group, 2*time.Minute, inputs(s.cfg)...)
	waitConfirmed(t, reg)
	db := openCH(t, s.cfg.ClickHouse.DSN)
	checkAggregates(t, db, s.cfg.ClickHouse.Database, want)
	var dup uint64
	if err := db.QueryRow("SELECT count() - uniqExact(customer_id) FROM " + s.cfg.ClickHouse.Database + ".customer_aggregates FINAL").Scan(&dup); err != nil {
		t.Fatal(err)
	}
	if dup != 0 {
		t.Errorf("%d customers have more than one current row", dup)
	}
}

func gauge(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return sums(fams, name, "")[""]
}

func counter(t *testing.T, g prometheus.Gatherer, name string) float64 { return gauge(t, g, name) }

// TestRegistryOutage: the schema registry answers 503 while Avro records
// arrive whose schemas the running instance has not seen. /readyz must
// keep answering within a second and say "registry unavailable", nothing
// past the undecodable records is committed, SIGTERM ends the instance
// within shutdown_timeout (the decoder would otherwise retry each lookup
// for registry.retry, 30 s), and once the registry is back a new
// instance applies every event exactly once.
func TestRegistryOutage(t *testing.T) {
	s := newStack(t, 3)
	proxy := newFlakyRegistry(t, s.reg.URL())
	cfg := s.cfg
	cfg.Registry.URL = proxy.url
	cfg.ShutdownTimeout = 10 * time.Second
	o := genOptions{customers: 100, days: 120, seed: 9, encoding: "avro"}
	_, want, _ := independentPass(t, o)

	in := startInstance(t, cfg, "outage-1")
	in.waitReady(time.Minute)
	proxy.down.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	direct := s.cfg // the producer registers its schemas past the proxy
	if _, err := produceTraffic(ctx, &direct, &o, testenv.TestLogger(t), nil); err != nil {
		t.Fatal(err)
	}

	client := &http.Client{Timeout: time.Second}
	said := ""
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline) && !strings.Contains(said, "registry unavailable"); {
		resp, err := client.Get("http://" + in.http + "/readyz")
		if err != nil {
			t.Fatalf("/readyz during the registry outage: %v (it must answer within 1 s)", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			said = ""
		} else {
			said = string(b)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(said, "registry unavailable") {
		t.Fatalf("/readyz never said the registry is unavailable; last: %q\n%s", said, in.out.String())
	}
	for range 10 {
		began := time.Now()
		resp, err := client.Get("http://" + in.http + "/readyz")
		if err != nil {
			t.Fatalf("/readyz during the registry outage: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("/readyz ready while the registry is down (answered in %s)", time.Since(began))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if proxy.requests.Load() == 0 {
		t.Fatal("the instance never asked the registry")
	}
	if n := behind(t, cfg); n == 0 {
		t.Fatal("everything was committed while the registry was down")
	}

	began := time.Now()
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-in.done:
		if err != nil {
			t.Fatalf("exited with %v after SIGTERM:\n%s", err, in.out.String())
		}
		t.Logf("stopped %s after SIGTERM during the outage", time.Since(began).Round(time.Millisecond))
	case <-time.After(cfg.ShutdownTimeout):
		t.Fatalf("did not exit within shutdown_timeout (%s) of SIGTERM during the outage:\n%s", cfg.ShutdownTimeout, in.out.String())
	}

	proxy.down.Store(false)
	in2 := startInstance(t, cfg, "outage-2")
	waitCaughtUp(t, cfg.Kafka.Brokers, cfg.Kafka.Group, 2*time.Minute, inputs(cfg)...)
	// ClickHouse gets a transaction's rows once it has committed.
	for deadline := time.Now().Add(time.Minute); metricSum(t, in2.http, "winback_clickhouse_unconfirmed") != 0; {
		if time.Now().After(deadline) {
			t.Fatal("ClickHouse did not confirm the last transaction's rows within a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
	db := openCH(t, cfg.ClickHouse.DSN)
	checkAggregates(t, db, cfg.ClickHouse.Database, want)
}

// flakyRegistry is a reverse proxy in front of a schema registry that
// answers 503 while down is set.
type flakyRegistry struct {
	url      string
	down     atomic.Bool
	requests atomic.Int64 // answered with 503
}

func newFlakyRegistry(t *testing.T, target string) *flakyRegistry {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	f := &flakyRegistry{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.down.Load() {
			f.requests.Add(1)
			http.Error(w, `{"error_code":50301,"message":"registry unavailable (test)"}`, http.StatusServiceUnavailable)
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.url = srv.URL
	return f
}
