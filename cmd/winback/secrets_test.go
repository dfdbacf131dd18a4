package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/event"
)

func randomSecret(t *testing.T, name string) string {
	t.Helper()
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return name + "-" + hex.EncodeToString(b)
}

// authGet is GET url with an optional bearer token.
func authGet(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestSecretsStayHidden runs the winback binary with its secrets on the
// command line (the worst place for them) and the log at debug level:
// customer state answers only with the bearer token (401 without), the
// profiler's cmdline shows the secrets masked, and neither the log nor any
// HTTP answer contains a secret or the token. Then a ClickHouse DSN with a
// wrong password and an invalid one must fail without showing theirs.
func TestSecretsStayHidden(t *testing.T) {
	s := newStack(t, 2)
	regPass, urlPass, token := randomSecret(t, "registry"), randomSecret(t, "url"), randomSecret(t, "token")
	secrets := []string{regPass, urlPass, token}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	regURL, err := url.Parse(s.cfg.Registry.URL)
	if err != nil {
		t.Fatal(err)
	}
	regURL.User = url.UserPassword("wb", urlPass) // the fake registry takes any credentials

	cfg := s.cfg
	cfg.HTTPAddr = freeAddr(t)
	cfg.LogFormat, cfg.LogLevel = "json", "debug"
	cfg.Registry.URL = "http://unused:1" // replaced by the flag
	in := &instance{t: t, name: "secrets", out: &syncBuffer{}, done: make(chan error, 1), http: cfg.HTTPAddr}
	in.cmd = exec.Command(binPath, "run",
		"--registry-url", regURL.String(),
		"--registry-username", "wb", "--registry-password="+regPass,
		"--http-token-file", tokenFile, "--http-pprof")
	in.cmd.Env = runEnv(&cfg)
	in.cmd.Stdout, in.cmd.Stderr = in.out, in.out
	if err := in.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { in.done <- in.cmd.Wait() }()
	t.Cleanup(func() {
		if in.cmd.ProcessState == nil {
			_ = in.cmd.Process.Kill()
			<-in.done
		}
	})
	in.waitReady(time.Minute)

	// A customer to look at.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Kafka.Brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ev := event.Event{Kind: event.KindOrder, EventID: "s-1", CustomerID: "c-secret", Time: time.Now().Add(-time.Hour).UnixMilli(),
		OrderType: event.OrderPlaced, OrderID: "o-1", Amount: 10, Currency: "EUR", Items: 1}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: cfg.Topics.Orders, Key: []byte(ev.CustomerID), Value: codec.AppendEventJSON(nil, &ev)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	waitCaughtUp(t, cfg.Kafka.Brokers, cfg.Kafka.Group, time.Minute, inputs(cfg)...)

	base := "http://" + cfg.HTTPAddr
	var bodies []string
	check := func(path, tok string, code int, want string) {
		t.Helper()
		got, body := authGet(t, base+path, tok)
		if got != code || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d %q, want %d containing %q", path, got, body, code, want)
		}
		bodies = append(bodies, body)
	}
	check("/v1/customers/x", "", http.StatusUnauthorized, "bearer token")
	check("/v1/customers/c-secret", "", http.StatusUnauthorized, "bearer token")
	check("/v1/customers/c-secret", "wrong-"+token, http.StatusUnauthorized, "bearer token")
	check("/v1/customers/c-secret", token, http.StatusOK, `"customer_id":"c-secret"`)
	check("/debug/pprof/cmdline", "", http.StatusUnauthorized, "bearer token")
	check("/debug/pprof/cmdline", token, http.StatusOK, "--registry-password=***")
	check("/debug/pprof/cmdline", token, http.StatusOK, "wb:***@")
	check("/readyz", "", http.StatusOK, `"clickhouse":"ok"`)
	check("/metrics", "", http.StatusOK, "winback_")
	in.stop(cfg.ShutdownTimeout + 10*time.Second)

	out := in.out.String()
	if !strings.Contains(out, `"level":"DEBUG"`) {
		t.Fatalf("no debug lines in the log: the test would not see much; log:\n%s", out[:min(len(out), 3000)])
	}
	for _, secret := range secrets {
		if strings.Contains(out, secret) {
			i := strings.Index(out, secret)
			t.Errorf("the log shows a secret: …%s…", out[max(0, i-200):min(len(out), i+100)])
		}
		for _, b := range bodies {
			if strings.Contains(b, secret) {
				t.Errorf("an HTTP answer shows a secret: %q", b)
			}
		}
	}

	// A DSN with a wrong password, and one that is not valid: both fail at
	// start, naming the DSN without its password.
	chURL, err := url.Parse(s.cfg.ClickHouse.DSN)
	if err != nil {
		t.Fatal(err)
	}
	dsnPass := randomSecret(t, "dsn")
	chURL.User = url.UserPassword("default", dsnPass)
	for _, dsn := range []string{chURL.String(), "http://default:" + dsnPass + "@" + chURL.Host + "/default"} {
		bad := s.cfg
		bad.HTTPAddr = freeAddr(t)
		bad.LogFormat, bad.LogLevel = "json", "debug"
		cmd := exec.Command(binPath, "run", "--clickhouse-dsn", dsn)
		cmd.Env = runEnv(&bad)
		done := make(chan struct{})
		var out []byte
		go func() { out, _ = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("winback with a bad DSN did not exit; output:\n%s", out)
		}
		if cmd.ProcessState.Success() {
			t.Errorf("winback started with the DSN %s", dsn)
		}
		if strings.Contains(string(out), dsnPass) {
			t.Errorf("the output shows the DSN's password:\n%s", out)
		}
		if !strings.Contains(string(out), "default:***@") {
			t.Errorf("the output does not name the DSN (redacted):\n%s", out)
		}
	}
}
