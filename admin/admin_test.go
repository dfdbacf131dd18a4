package admin

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/winback/winback/pipeline/consume"
)

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "winback_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Inc()
	kafkaDown := errors.New("no brokers reachable")
	lookup := func(_ context.Context, id string) ([]byte, int32, error) {
		switch id {
		case "c-1":
			return []byte(`{"customer_id":"c-1"}`), 2, nil
		case "c-elsewhere":
			return nil, 5, &consume.NotOwnedError{Partition: 5, MemberID: "m-7", Host: "10.0.0.7"}
		case "c-restoring":
			return nil, 1, errors.New("partition 1 is being restored; retry shortly")
		}
		return nil, 0, consume.ErrUnknownCustomer
	}
	s := New("127.0.0.1:0", reg, []Check{
		{Name: "state", Fn: func(context.Context) error { return nil }},
		{Name: "kafka", Fn: func(context.Context) error { return kafkaDown }},
	}, lookup, nil)
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	f := func(path string, code int, want string) {
		t.Helper()
		resp, err := http.Get("http://" + s.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != code || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d %q, want %d containing %q", path, resp.StatusCode, body, code, want)
		}
	}
	f("/healthz", 200, "ok")
	f("/metrics", 200, "winback_test_total 1")
	f("/readyz", 503, `"kafka":"no brokers reachable"`)
	f("/v1/customers/c-1", 200, `"customer_id":"c-1"`)
	f("/v1/customers/nobody", 404, "unknown customer")
	f("/v1/customers/c-elsewhere", 421, `"owner_member_id":"m-7"`)
	f("/v1/customers/c-restoring", 503, "being restored")
	f("/debug/pprof/", 404, "") // off without WithPprof
	kafkaDown = nil
	f("/readyz", 200, `"kafka":"ok"`)
}

// serveTest runs a Server with opts until the test ends and returns its
// base URL.
func serveTest(t *testing.T, lookup Lookup, opts ...Option) string {
	t.Helper()
	s := New("127.0.0.1:0", prometheus.NewRegistry(), nil, lookup, nil, opts...)
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return "http://" + s.Addr()
}

func get(t *testing.T, url, auth string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header
}

// TestToken checks that with a token, customer state and the profiler
// answer only a request that carries it, while probes and metrics stay
// open; and that the profiler's command line is the one given, not
// os.Args.
func TestToken(t *testing.T) {
	const token = "s3cr3t-token-0123456789"
	looked := 0
	lookup := func(_ context.Context, id string) ([]byte, int32, error) {
		looked++
		return []byte(`{"customer_id":"` + id + `"}`), 0, nil
	}
	base := serveTest(t, lookup, WithToken(token), WithPprof([]string{"winback", "run", "--clickhouse-dsn", "clickhouse://u:***@ch:9000/db"}))
	cases := []struct {
		path, auth string
		code       int
		want       string
	}{
		{"/v1/customers/x", "", 401, "bearer token"},
		{"/v1/customers/x", "Bearer wrong", 401, "bearer token"},
		{"/v1/customers/x", "Bearer " + token[:len(token)-1], 401, "bearer token"},
		{"/v1/customers/x", "Bearer " + token + "x", 401, "bearer token"},
		{"/v1/customers/x", "Basic " + token, 401, "bearer token"},
		{"/v1/customers/x", token, 401, "bearer token"},
		{"/v1/customers/x", "Bearer " + token, 200, `"customer_id":"x"`},
		{"/v1/customers/x", "bearer " + token, 200, `"customer_id":"x"`}, // RFC 7235: any case
		{"/debug/pprof/", "", 401, "bearer token"},
		{"/debug/pprof/cmdline", "", 401, "bearer token"},
		{"/debug/pprof/heap?debug=1", "Bearer nope", 401, "bearer token"},
		{"/debug/pprof/", "Bearer " + token, 200, "goroutine"},
		{"/debug/pprof/cmdline", "Bearer " + token, 200, "winback\x00run\x00--clickhouse-dsn\x00clickhouse://u:***@ch:9000/db"},
		{"/healthz", "", 200, "ok"},
		{"/metrics", "", 200, ""},
		{"/readyz", "", 200, "{}"},
	}
	for _, c := range cases {
		code, body, h := get(t, base+c.path, c.auth)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("GET %s (%q): %d %q, want %d containing %q", c.path, c.auth, code, body, c.code, c.want)
		}
		if code == 401 && h.Get("WWW-Authenticate") != `Bearer realm="winback"` {
			t.Errorf("GET %s: 401 without WWW-Authenticate", c.path)
		}
		if strings.Contains(body, token) {
			t.Errorf("GET %s: the body shows the token", c.path)
		}
	}
	if looked != 2 {
		t.Errorf("the lookup ran %d times; only the two authenticated requests may reach it", looked)
	}
}

// TestNoToken: without a token, customers are served to anyone (the
// documented default for a private network) and pprof stays off.
func TestNoToken(t *testing.T) {
	base := serveTest(t, func(context.Context, string) ([]byte, int32, error) { return []byte(`{}`), 0, nil })
	if code, _, _ := get(t, base+"/v1/customers/x", ""); code != 200 {
		t.Errorf("customer without a token configured: %d", code)
	}
	for _, p := range []string{"/debug/pprof/", "/debug/pprof/cmdline", "/debug/pprof/profile?seconds=1"} {
		if code, _, _ := get(t, base+p, ""); code != 404 {
			t.Errorf("GET %s without --http-pprof: %d, want 404", p, code)
		}
	}
}
