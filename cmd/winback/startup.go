package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/winback/winback/config"
)

// Start-up checks. A dependency that cannot be reached when winback starts
// is most often a wrong address, not an outage: each check retries for
// --startup-timeout and then fails with one line naming the setting, the
// address and the likely fix. Once started, outages are retried as before
// (the consume loop, the ClickHouse flush and the registry retry).

// startupError is a dependency that could not be reached at start: exit
// code 1, printed on one line.
type startupError struct {
	Setting string // the flag, e.g. kafka-brokers
	Addr    string // what was tried, passwords redacted
	Waited  time.Duration
	Err     error  // the last error seen
	Hint    string // the likely fix
}

func (e *startupError) Error() string {
	msg := fmt.Sprintf("--%s %s: not reachable within %s (--startup-timeout): %v", e.Setting, e.Addr, e.Waited, e.Err)
	if e.Waited == 0 { // a mistake waiting cannot fix
		msg = fmt.Sprintf("--%s %s: %v", e.Setting, e.Addr, e.Err)
	}
	if e.Hint != "" {
		msg += "; " + e.Hint
	}
	return msg
}

func (e *startupError) Unwrap() error { return e.Err }

// retryUntil calls try until it succeeds, ctx is done or timeout has
// passed since the first call, and returns the last error that says more
// than the deadline did.
func retryUntil(ctx context.Context, timeout time.Duration, try func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	backoff := 100 * time.Millisecond
	var last error
	for {
		actx, cancel := context.WithDeadline(ctx, deadline)
		err := try(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return stopped(ctx, err)
		}
		var p permanent
		if errors.As(err, &p) {
			return p // waiting cannot fix it
		}
		if last == nil || !errors.Is(err, context.DeadlineExceeded) {
			last = err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return last
		}
		select {
		case <-ctx.Done():
			return stopped(ctx, last)
		case <-time.After(min(backoff, left)):
		}
		if time.Until(deadline) <= 0 {
			return last
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// stopped is ctx's error with what the last attempt was waiting on.
func stopped(ctx context.Context, last error) error {
	if last == nil || errors.Is(last, context.Canceled) {
		return ctx.Err()
	}
	return fmt.Errorf("%w; the last attempt: %v", ctx.Err(), last)
}

// checkKafka waits until a seed broker answers a metadata request. The
// probe has no logger: franz-go would log every failed dial.
func checkKafka(ctx context.Context, cfg *config.Config, kopts []kgo.Opt) error {
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), kopts...),
		kgo.WithLogger(kgo.BasicLogger(nopWriter{}, kgo.LogLevelNone, nil)),
		kgo.DialTimeout(min(cfg.StartupTimeout, 10*time.Second)),
		kgo.RequestRetries(0),
	)...)
	if err != nil {
		return usageError{fmt.Errorf("kafka client: %w", err)} // the options: waiting will not help
	}
	defer cl.Close()
	err = retryUntil(ctx, cfg.StartupTimeout, cl.Ping)
	if err == nil || ctx.Err() != nil {
		return err
	}
	addrs := strings.Join(cfg.Kafka.Brokers, ",")
	return &startupError{Setting: "kafka-brokers", Addr: addrs, Waited: cfg.StartupTimeout, Err: lastLine(err), Hint: kafkaHint(cfg, err)}
}

func kafkaHint(cfg *config.Config, err error) string {
	for _, b := range cfg.Kafka.Brokers {
		_, port, _ := net.SplitHostPort(b)
		switch port {
		case "8081":
			return "8081 is usually the schema registry; Kafka listens on 9092"
		case "9000", "8123":
			return port + " is usually ClickHouse; Kafka listens on 9092"
		}
	}
	s := err.Error()
	switch {
	case strings.Contains(s, "SASL"), strings.Contains(s, "sasl"):
		return "check --kafka-sasl-mechanism, --kafka-sasl-username and the password"
	case strings.Contains(s, "tls:"), strings.Contains(s, "x509"):
		return "check --kafka-tls-enabled and the CA (--kafka-tls-ca-file)"
	case strings.Contains(s, "connection refused"):
		return "nothing listens there: start Kafka (or 'winback dev' for an embedded one) or fix the address"
	case cfg.Kafka.TLS.Enabled:
		// A plaintext listener answers a TLS hello with silence or EOF.
		return "check the address, and that this listener speaks TLS (--kafka-tls-enabled is on)"
	case cfg.Kafka.SASL.Mechanism != "":
		return "check the address, and that this listener expects SASL (--kafka-sasl-mechanism is " + cfg.Kafka.SASL.Mechanism + ")"
	}
	return "check the address and that the broker's advertised listeners are reachable from here"
}

// checkRegistry waits until the schema registry answers GET /subjects.
func checkRegistry(ctx context.Context, cfg *config.Config, src *sr.Client) error {
	err := retryUntil(ctx, cfg.StartupTimeout, func(ctx context.Context) error {
		_, err := src.Subjects(ctx)
		return err
	})
	if err == nil || ctx.Err() != nil {
		return err
	}
	hint := "start the registry or fix --registry-url (winback dev runs an embedded one)"
	var re *sr.ResponseError
	switch {
	case errors.As(err, &re) && (re.StatusCode == 401 || re.StatusCode == 403):
		hint = "the registry refused the credentials: check --registry-username and --registry-password"
	case errors.As(err, &re):
		hint = fmt.Sprintf("it answered HTTP %d: is this a Confluent-compatible schema registry?", re.StatusCode)
	}
	return &startupError{Setting: "registry-url", Addr: config.Redact(cfg.Registry.URL), Waited: cfg.StartupTimeout, Err: lastLine(err), Hint: hint}
}

// clickhouseStartError explains a failed ClickHouse connection: it looks
// whether the address answers HTTP (the port 8123 mistake) or nothing.
func clickhouseStartError(ctx context.Context, cfg *config.Config, err error) error {
	if ctx.Err() != nil {
		return err
	}
	dsn := config.Redact(cfg.ClickHouse.DSN)
	hint := "check the host, port and credentials of the DSN"
	if u, perr := url.Parse(cfg.ClickHouse.DSN); perr == nil {
		addr := u.Host // with its port: config.Validate requires one
		isHTTP, isClickHouse := answersHTTP(context.WithoutCancel(ctx), addr)
		switch {
		case isClickHouse:
			hint = u.Port() + " is ClickHouse's HTTP port; winback speaks the native protocol on 9000 (clickhouse://host:9000/db)"
		case isHTTP:
			hint = addr + " answers HTTP, not ClickHouse's native protocol (usually on port 9000)"
		case strings.Contains(err.Error(), "connection refused"):
			hint = "nothing listens there: start clickhouse-server, or fix the host and port (the native protocol, usually 9000)"
		case strings.Contains(err.Error(), "no answer to the handshake"):
			hint = addr + " accepts connections but does not answer ClickHouse's native protocol: check the port (usually 9000) and that nothing else holds it"
		case strings.Contains(err.Error(), "Authentication") || strings.Contains(err.Error(), "password"):
			hint = "the server refused the user or password in the DSN"
		}
	}
	waited := cfg.StartupTimeout
	var p permanent
	if errors.As(err, &p) {
		waited = 0
	}
	return &startupError{Setting: "clickhouse-dsn", Addr: dsn, Waited: waited, Err: lastLine(err), Hint: hint}
}

// answersHTTP reports whether addr answers an HTTP request, and whether
// that answer is ClickHouse's ("Ok." on /ping).
func answersHTTP(ctx context.Context, addr string) (isHTTP, isClickHouse bool) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false, false
	}
	defer c.Close()
	dl, _ := ctx.Deadline()
	_ = c.SetDeadline(dl)
	if _, err := c.Write([]byte("GET /ping HTTP/1.0\r\nHost: " + addr + "\r\n\r\n")); err != nil {
		return false, false
	}
	resp, _ := io.ReadAll(io.LimitReader(c, 4096))
	isHTTP = bytes.HasPrefix(resp, []byte("HTTP/"))
	return isHTTP, isHTTP && bytes.HasSuffix(bytes.TrimSpace(resp), []byte("Ok."))
}

// lastLine keeps an error on one line.
func lastLine(err error) error {
	s := strings.Join(strings.Fields(err.Error()), " ")
	return errors.New(s)
}

// permanent marks an error retryUntil does not retry.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }

// speaksHTTP reports whether the DSN's address answers HTTP.
func speaksHTTP(ctx context.Context, dsn string) bool {
	u, err := url.Parse(dsn)
	if err != nil || u.Port() == "" {
		return false
	}
	// Within the attempt's time: clickhouseStartError probes again
	// after the last attempt, for its hint.
	isHTTP, _ := answersHTTP(ctx, u.Host)
	return isHTTP
}
