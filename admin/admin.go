package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/winback/winback/pipeline/consume"
)

// Check is one readiness check; nil means ready.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Lookup returns a customer's live state as JSON and its partition.
type Lookup func(ctx context.Context, id string) ([]byte, int32, error)

// Server is the HTTP server.
type Server struct {
	addr   string
	srv    *http.Server
	ln     net.Listener
	log    *slog.Logger
	checks []Check
	lookup Lookup
	opts   options
}

type options struct {
	tokenSum [sha256.Size]byte
	token    bool
	pprof    bool
	cmdline  []string
}

// Option configures a Server.
type Option func(*options)

// WithToken makes /v1/customers/{id} and /debug/pprof/ answer only requests
// with the header "Authorization: Bearer <token>"; others get 401. The
// comparison takes the same time whatever the token sent. An empty token
// leaves them open.
func WithToken(token string) Option {
	return func(o *options) {
		if token != "" {
			o.token, o.tokenSum = true, sha256.Sum256([]byte(token))
		}
	}
}

// WithPprof serves Go's profiler under /debug/pprof/ (off without it).
// /debug/pprof/cmdline shows cmdline, which the caller passes with its
// secrets masked (config.RedactArgs(os.Args)), never os.Args itself.
func WithPprof(cmdline []string) Option {
	return func(o *options) { o.pprof, o.cmdline = true, cmdline }
}

// New builds the server; g gathers the metrics (usually the registry the
// other components registered on).
func New(addr string, g prometheus.Gatherer, checks []Check, lookup Lookup, log *slog.Logger, opts ...Option) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{addr: addr, log: log, checks: checks, lookup: lookup}
	for _, o := range opts {
		o(&s.opts)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.ready)
	mux.Handle("GET /v1/customers/{id}", s.auth(http.HandlerFunc(s.customer)))
	if s.opts.pprof {
		mux.Handle("GET /debug/pprof/", s.auth(http.HandlerFunc(pprof.Index)))
		mux.Handle("GET /debug/pprof/cmdline", s.auth(http.HandlerFunc(s.cmdline)))
		mux.Handle("GET /debug/pprof/profile", s.auth(http.HandlerFunc(pprof.Profile)))
		mux.Handle("GET /debug/pprof/symbol", s.auth(http.HandlerFunc(pprof.Symbol)))
		mux.Handle("GET /debug/pprof/trace", s.auth(http.HandlerFunc(pprof.Trace)))
	}
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return s
}

// auth lets a request through h if it carries the token, or if there is
// none to carry.
func (s *Server) auth(h http.Handler) http.Handler {
	if !s.opts.token {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The scheme is case-insensitive (RFC 7235): "bearer" works too.
		scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		ok = ok && strings.EqualFold(scheme, "Bearer")
		// Hashes of equal length, so that the comparison's time says
		// nothing about the token's length or prefix.
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if !ok || subtle.ConstantTimeCompare(sum[:], s.opts.tokenSum[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="winback"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token (see --http-token-file)"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

// cmdline is pprof.Cmdline with the command line the caller gave.
func (s *Server) cmdline(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(strings.Join(s.opts.cmdline, "\x00")))
}

// Listen binds the address, so that Addr is known before Run.
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return err
	}
	s.ln = ln
	return nil
}

// Addr is the bound address.
func (s *Server) Addr() string {
	if s.ln == nil {
		return s.addr
	}
	return s.ln.Addr().String()
}

// Run serves until ctx is done, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- s.srv.Serve(s.ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.srv.Shutdown(sctx)
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	res := map[string]string{}
	ok := true
	for _, c := range s.checks {
		if err := c.Fn(ctx); err != nil {
			res[c.Name] = err.Error()
			ok = false
		} else {
			res[c.Name] = "ok"
		}
	}
	code := http.StatusOK
	if !ok {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, res)
}

func (s *Server) customer(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	data, p, err := s.lookup(r.Context(), id)
	var no *consume.NotOwnedError
	switch {
	case err == nil:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Winback-Partition", itoa(p))
		_, _ = w.Write(data)
	case errors.Is(err, consume.ErrUnknownCustomer):
		writeJSON(w, http.StatusNotFound, map[string]any{"error": "unknown customer", "customer_id": id, "partition": p})
	case errors.As(err, &no):
		writeJSON(w, http.StatusMisdirectedRequest, map[string]any{
			"error": "another instance owns this customer", "customer_id": id, "partition": no.Partition,
			"owner_member_id": no.MemberID, "owner_client_id": no.ClientID, "owner_host": no.Host,
		})
	default:
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": err.Error(), "customer_id": id, "partition": p})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func itoa(p int32) string {
	b, _ := json.Marshal(p)
	return string(b)
}
