package testenv

import (
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
)

const testSchema = `{"type":"record","name":"Ping","namespace":"winback.test","fields":[{"name":"id","type":"string"}]}`

func TestRegistry(t *testing.T) {
	ctx := testCtx(t)
	r := NewRegistry(t)
	if !strings.HasPrefix(r.URL(), "http://127.0.0.1:") {
		t.Fatalf("URL() = %q", r.URL())
	}
	cl, err := sr.NewClient(sr.URLs(r.URL()))
	if err != nil {
		t.Fatal(err)
	}
	ss, err := cl.CreateSchema(ctx, "ping-value", sr.Schema{Schema: testSchema, Type: sr.TypeAvro})
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if ss.ID <= 0 || ss.Version != 1 {
		t.Fatalf("registered id %d version %d", ss.ID, ss.Version)
	}
	got, err := cl.SchemaByID(ctx, ss.ID)
	if err != nil {
		t.Fatalf("fetch id %d: %v", ss.ID, err)
	}
	if got.Schema != testSchema {
		t.Fatalf("schema %d = %s, want %s", ss.ID, got.Schema, testSchema)
	}
	// Registering the same schema again gives the same id.
	again, err := cl.CreateSchema(ctx, "ping-value", sr.Schema{Schema: testSchema, Type: sr.TypeAvro})
	if err != nil || again.ID != ss.ID {
		t.Fatalf("re-register: id %d, %v; want %d", again.ID, err, ss.ID)
	}
	if _, err := cl.SchemaByID(ctx, ss.ID+100); err == nil {
		t.Fatal("unknown schema id found")
	}
}

func TestRegistryFixedAddr(t *testing.T) {
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	r, err := StartRegistry(addr)
	if err != nil {
		t.Fatal(err)
	}
	if r.URL() != "http://"+addr {
		t.Fatalf("URL() = %q, want http://%s", r.URL(), addr)
	}
	resp, err := http.Get(r.URL() + "/subjects")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /subjects: %s", resp.Status)
	}
	if _, err := StartRegistry(addr); err == nil {
		t.Fatalf("second registry on busy %s started", addr)
	}
	r.Close()
	r.Close() // idempotent
	if _, err := http.Get(r.URL() + "/subjects"); err == nil {
		t.Fatal("registry still serves after Close")
	}
	if _, err := StartRegistry("no-port"); err == nil {
		t.Fatal(`StartRegistry("no-port") succeeded`)
	}
}

// TestRegistryKept: a registry started again on the same file serves the
// schemas registered before under the same ids and versions, and numbers
// a new schema after them (a fresh one would give it id 1, which records
// kept by the broker name for another schema).
func TestRegistryKept(t *testing.T) {
	ctx := testCtx(t)
	path := t.TempDir() + "/registry.json"
	other := `{"type":"record","name":"Pong","fields":[{"name":"n","type":"long"}]}`
	third := `{"type":"record","name":"Pang","fields":[{"name":"s","type":"string"}]}`
	r, err := StartRegistryIn("", path)
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := sr.NewClient(sr.URLs(r.URL()))
	a, err := cl.CreateSchema(ctx, "ping-value", sr.Schema{Schema: testSchema})
	if err != nil {
		t.Fatal(err)
	}
	b, err := cl.CreateSchema(ctx, "pong-value", sr.Schema{Schema: other})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.CreateSchema(ctx, "ping-copy-value", sr.Schema{Schema: testSchema}); err != nil {
		t.Fatal(err) // the same schema under another subject
	}
	r.Close()

	r, err = StartRegistryIn("", path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cl, _ = sr.NewClient(sr.URLs(r.URL()))
	for _, want := range []sr.SubjectSchema{a, b} {
		got, err := cl.SchemaByVersion(ctx, want.Subject, want.Version)
		if err != nil || got.ID != want.ID || got.Schema.Schema != want.Schema.Schema {
			t.Errorf("%s v%d after a restart: id %d, %v; want id %d", want.Subject, want.Version, got.ID, err, want.ID)
		}
	}
	c, err := cl.CreateSchema(ctx, "pang-value", sr.Schema{Schema: third})
	if err != nil || c.ID <= max(a.ID, b.ID) {
		t.Errorf("a schema registered after the restart got id %d (%v); ids %d and %d are taken", c.ID, err, a.ID, b.ID)
	}
	fresh, err := StartRegistryIn("", t.TempDir()+"/none.json")
	if err != nil {
		t.Fatalf("no file yet: %v", err)
	}
	fresh.Close()
}
