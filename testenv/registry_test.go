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
