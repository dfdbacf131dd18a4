package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// Registry is franz-go's in-memory schema registry fake (srfake) served
// over HTTP on a real port. Its compatibility check always passes: test
// schema evolution rules yourself.
type Registry struct {
	fake   *srfake.Registry
	srv    *http.Server
	url    string
	served chan struct{}
}

// StartRegistry serves a fresh srfake registry on addr ("127.0.0.1:8081").
// An empty addr or port 0 picks a free port; an empty host means
// 127.0.0.1.
func StartRegistry(addr string) (*Registry, error) {
	host, port := "127.0.0.1", "0"
	if addr != "" {
		h, p, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("testenv: registry %w", &AddrError{Addr: addr, Reason: err.Error()})
		}
		if h != "" {
			host = h
		}
		if p != "" {
			port = p
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("testenv: registry listen: %w", err)
	}
	fake := srfake.NewRegistry()
	r := &Registry{
		fake:   fake,
		srv:    &http.Server{Handler: fake.Handler(), ReadHeaderTimeout: 10 * time.Second},
		url:    "http://" + ln.Addr().String(),
		served: make(chan struct{}),
	}
	go func() {
		defer close(r.served)
		// Serve returns http.ErrServerClosed after Shutdown; an accept
		// error on our own listener shows up as failing requests.
		_ = r.srv.Serve(ln)
	}()
	return r, nil
}

// URL is the registry's base URL, "http://127.0.0.1:PORT", for
// sr.URLs(...).
func (r *Registry) URL() string { return r.url }

// Fake is the underlying srfake registry, for seeding and inspecting
// schemas without HTTP.
func (r *Registry) Fake() *srfake.Registry { return r.fake }

// Close stops serving and waits for the server to return. It is safe to call
// more than once.
func (r *Registry) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		_ = r.srv.Close()
	}
	<-r.served
}
