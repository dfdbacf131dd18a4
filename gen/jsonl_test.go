package gen_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/event"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// TestJSONLGolden pins the line format and the generator's output for a
// tiny config: a change to either shows up as a diff of testdata/tiny.jsonl.
func TestJSONLGolden(t *testing.T) {
	g := newGen(t, gen.Config{Customers: 4, Days: 21, Seed: 1, MalformedShare: -1, DuplicateShare: -1})
	var buf bytes.Buffer
	if err := g.WriteJSONL(&buf); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "tiny.jsonl")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		got := strings.Split(buf.String(), "\n")
		exp := strings.Split(string(want), "\n")
		for i := range min(len(got), len(exp)) {
			if got[i] != exp[i] {
				t.Fatalf("line %d:\n got %s\nwant %s\n(run go test -update to accept)", i+1, got[i], exp[i])
			}
		}
		t.Fatalf("got %d lines, want %d (run go test -update to accept)", len(got), len(exp))
	}
}

// TestJSONLRoundTrip writes JSON lines and reads them back through
// ReadJSONL and pipeline/decode: every valid record and duplicate comes
// back, in order, and nothing else.
func TestJSONLRoundTrip(t *testing.T) {
	g := newGen(t, gen.Config{Customers: 80, Days: 60, Seed: 2, MalformedShare: 0.01, DuplicateShare: 0.01})
	var want []event.Event
	for _, r := range collect(t, g) {
		if r.Malformed == nil {
			want = append(want, r.Event)
		}
	}
	var buf bytes.Buffer
	if err := g.WriteJSONL(&buf); err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(buf.Bytes(), []byte("\n")); n != len(want) {
		t.Fatalf("%d lines, want %d", n, len(want))
	}
	dec := newDecoder(g, nil)
	i := 0
	var ev event.Event
	err := gen.ReadJSONL(&buf, gen.DefaultTopics(), func(k event.Kind, key, value []byte) error {
		if err := dec.Decode(context.Background(), k, key, value, &ev); err != nil {
			return err
		}
		if ev != want[i] {
			t.Fatalf("line %d: got %+v, want %+v", i+1, ev, want[i])
		}
		i++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if i != len(want) {
		t.Fatalf("read %d events, want %d", i, len(want))
	}
}

func TestReadJSONLErrors(t *testing.T) {
	f := func(input string, wantErr bool, wantCalls int) {
		t.Helper()
		calls := 0
		err := gen.ReadJSONL(strings.NewReader(input), gen.DefaultTopics(), func(event.Kind, []byte, []byte) error {
			calls++
			return nil
		})
		if (err != nil) != wantErr || (err != nil && !errors.Is(err, gen.ErrJSONL)) || calls != wantCalls {
			t.Errorf("%q: err %v, %d calls; want error %v, %d calls", input, err, calls, wantErr, wantCalls)
		}
	}
	line := `{"topic":"orders","event_id":"o-1","customer_id":"c1","event_time":1,"type":"PLACED","order_id":"x","amount":1,"currency":"EUR","items":1}`
	f(line+"\n\n  \n"+line, false, 2)
	f(`{"topic":"payments","event_id":"p"}`, true, 0)
	f(`{"event_id":"o-1","topic":"orders"}`, true, 0)
	f(line+"\n"+`{"topic":"orders"`, false, 2) // routed; decoding rejects it
	f(`{"topic":"or\"ders"}`, true, 0)

	var key []byte
	_ = gen.ReadJSONL(strings.NewReader(line), gen.DefaultTopics(), func(_ event.Kind, k, _ []byte) error {
		key = append(key, k...)
		return nil
	})
	if string(key) != "c1" {
		t.Errorf("key %q, want c1", key)
	}
	stop := errors.New("stop")
	if err := gen.ReadJSONL(strings.NewReader(line), gen.DefaultTopics(), func(event.Kind, []byte, []byte) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("fn's error lost: %v", err)
	}
}

// ExampleGenerator_WriteJSONL shows the line format: the topic, then the
// event's JSON fields.
func ExampleGenerator_WriteJSONL() {
	g, err := gen.New(gen.Config{Customers: 1, Days: 7, Seed: 1, Mix: gen.Mix{gen.SteadyWeekly: 1}})
	if err != nil {
		panic(err)
	}
	var buf bytes.Buffer
	if err := g.WriteJSONL(&buf); err != nil {
		panic(err)
	}
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.Contains(line, `"type":"SENT"`) || strings.Contains(line, `"topic":"orders"`) {
			os.Stdout.WriteString(line + "\n")
		}
	}
	// Output:
	// {"topic":"email-events","event_id":"e-c000001-1","customer_id":"c000001","event_time":1767354755579,"type":"SENT","campaign_id":"cmp-0001"}
	// {"topic":"email-events","event_id":"e-c000001-3","customer_id":"c000001","event_time":1767639970420,"type":"SENT","campaign_id":"cmp-0002"}
	// {"topic":"orders","event_id":"o-c000001-1","customer_id":"c000001","event_time":1767687155395,"type":"PLACED","order_id":"ord-c000001-0001","amount":21.15,"currency":"GBP","items":1}
}

// FuzzReadJSONL: any input either routes or fails with a *JSONLError (or a
// scanner error), never panics; a line written by AppendJSONL routes to its
// kind and customer.
func FuzzReadJSONL(f *testing.F) {
	f.Add([]byte(`{"topic":"orders","event_id":"o-1","customer_id":"c1","event_time":1,"type":"PLACED","order_id":"x","amount":1,"currency":"EUR","items":1}`))
	f.Add([]byte("{\"topic\":\"email-events\",\"customer_id\":\"c\\\"2\"}\n\n{\"topic\":\"support-events\"}"))
	f.Add([]byte(`{"topic":"`))
	f.Add([]byte{0, 1, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		err := gen.ReadJSONL(bytes.NewReader(data), gen.DefaultTopics(), func(k event.Kind, key, value []byte) error {
			if k < event.KindOrder || k > event.KindSupport || len(value) == 0 {
				t.Fatalf("routed kind %v, value %q", k, value)
			}
			return nil
		})
		var je *gen.JSONLError
		if err != nil && !errors.As(err, &je) && !strings.Contains(err.Error(), "reading JSON lines") {
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
		// A customer id made of the input round-trips when it needs no
		// escaping.
		id := string(data)
		if strings.ContainsAny(id, "\"\\\n\r") || !utf8.ValidString(id) || hasControl(id) {
			return
		}
		line := gen.AppendJSONL(nil, "support-events", &event.Event{Kind: event.KindSupport, CustomerID: id, CSAT: event.NoScore, NPS: event.NoScore})
		var gotKey string
		var gotKind event.Kind
		if err := gen.ReadJSONL(bytes.NewReader(line), gen.DefaultTopics(), func(k event.Kind, key, _ []byte) error {
			gotKind, gotKey = k, string(key)
			return nil
		}); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if gotKind != event.KindSupport || gotKey != id {
			t.Fatalf("line %q routed to %v key %q", line, gotKind, gotKey)
		}
	})
}

func hasControl(s string) bool {
	for _, c := range s {
		if c < 0x20 {
			return true
		}
	}
	return false
}
