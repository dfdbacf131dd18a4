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
	f("/debug/pprof/", 200, "goroutine")
	kafkaDown = nil
	f("/readyz", 200, `"kafka":"ok"`)
}
