package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
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
func StartRegistry(addr string) (*Registry, error) { return StartRegistryIn(addr, "") }

// StartRegistryIn is StartRegistry keeping the registry's schemas in the
// JSON file path across restarts (none if path is empty): it seeds them
// from the file at start, with their ids and versions, and writes the
// file again after every request that changes the registry. Without it a
// restarted registry numbers schemas from 1 again, and the records a
// broker kept (kfake's DataDir) name ids that now mean other schemas.
func StartRegistryIn(addr, path string) (*Registry, error) {
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
	if err := seedRegistry(fake, path); err != nil {
		ln.Close()
		return nil, err
	}
	r := &Registry{
		fake:   fake,
		srv:    &http.Server{Handler: fake.Handler(), ReadHeaderTimeout: 10 * time.Second},
		url:    "http://" + ln.Addr().String(),
		served: make(chan struct{}),
	}
	if path != "" {
		r.srv.Handler = r.saving(fake.Handler(), path)
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

// seedRegistry loads the schemas that save wrote to path, if any.
func seedRegistry(fake *srfake.Registry, path string) (err error) {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("testenv: registry: %w", err)
	}
	var schemas []sr.SubjectSchema
	if err := json.Unmarshal(b, &schemas); err != nil {
		return fmt.Errorf("testenv: registry %s: %w", path, err)
	}
	defer func() { // SeedSchema panics on a bad or repeated entry
		if p := recover(); p != nil {
			err = fmt.Errorf("testenv: registry %s: %v", path, p)
		}
	}()
	seeded := map[int]bool{}
	for _, s := range schemas { // saved in id order: references come first
		if seeded[s.ID] {
			// One schema under several subjects: srfake seeds an id
			// once, and registering it again under the other subject
			// gives it the same id.
			if _, _, err := fake.RegisterSchema(s.Subject, s.Schema); err != nil {
				return fmt.Errorf("testenv: registry %s: %s: %w", path, s.Subject, err)
			}
			continue
		}
		seeded[s.ID] = true
		fake.SeedSchema(s.Subject, s.Version, s.ID, s.Schema)
	}
	return nil
}

// saving serves h and, after each request that may change the registry,
// writes every subject's schemas to path.
func (r *Registry) saving(h http.Handler, path string) http.Handler {
	var mu sync.Mutex
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h.ServeHTTP(w, req)
		if req.Method == http.MethodGet || req.Method == http.MethodHead {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if err := r.save(req.Context(), path); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: registry: saving %s: %v\n", path, err)
		}
	})
}

func (r *Registry) save(ctx context.Context, path string) error {
	cl, err := sr.NewClient(sr.URLs(r.url))
	if err != nil {
		return err
	}
	subjects, err := cl.Subjects(ctx)
	if err != nil {
		return err
	}
	var all []sr.SubjectSchema
	for _, subject := range subjects {
		ss, err := cl.Schemas(ctx, subject)
		if err != nil {
			return err
		}
		all = append(all, ss...)
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].ID != all[j].ID {
			return all[i].ID < all[j].ID
		}
		return all[i].Subject < all[j].Subject
	})
	b, err := json.Marshal(all)
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
