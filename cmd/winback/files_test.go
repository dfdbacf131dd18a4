package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/event"
)

// TestGenOutBacktestFile: gen --out writes the file backtest --file
// reads, and --out - writes the same lines to stdout.
func TestGenOutBacktestFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "traffic.jsonl")
	args := []string{"gen", "--customers", "40", "--days", "120", "--seed", "5", "--end", "2026-06-30"}
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), append(args, "--out", path), &stdout, &stderr); code != 0 {
		t.Fatalf("gen --out: exit %d: %s", code, stderr.String())
	}
	data := mustRead(t, path)
	lines := bytes.Count(data, []byte("\n"))
	if want := "wrote " + itoa(lines) + " events for 40 customers over 120 days to " + path; !strings.HasPrefix(stdout.String(), want) {
		t.Errorf("gen --out said %q, want it to start %q", stdout.String(), want)
	}
	if lines < 500 {
		t.Fatalf("only %d lines", lines)
	}
	// The same traffic, to stdout, with the report on stderr.
	stdout.Reset()
	stderr.Reset()
	if code := run(t.Context(), append(args, "--out", "-"), &stdout, &stderr); code != 0 {
		t.Fatalf("gen --out -: exit %d: %s", code, stderr.String())
	}
	if !bytes.Equal(stdout.Bytes(), data) {
		t.Errorf("gen --out - wrote %d bytes, the file has %d", stdout.Len(), len(data))
	}
	if !strings.Contains(stderr.String(), "to standard output") {
		t.Errorf("gen --out - reported %q on stderr", stderr.String())
	}
	rep, _ := backtestJSON(t, "--file", path, "--now", "2026-07-01")
	if int(rep.Events) != lines || rep.BadTotal != 0 || rep.Customers != 40 {
		t.Errorf("backtest of gen's file: %d events (file has %d lines), %d bad, %d customers", rep.Events, lines, rep.BadTotal, rep.Customers)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// TestBacktestReadsAnyJSON feeds the same events pretty-printed, with the
// keys in another order ("topic" last) and spaces everywhere: the report
// must equal the compact file's.
func TestBacktestReadsAnyJSON(t *testing.T) {
	_, path := writeTraffic(t, gen.Config{Customers: 60, Days: 150, Start: btGenConfig().Start, Seed: 9})
	clean, _ := backtestJSON(t, "--file", path)

	var pretty bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(mustRead(t, path)))
	n := 0
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.UseNumber()
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		b, err := json.MarshalIndent(m, " ", "   ") // keys sorted: topic comes last
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte(`":`), []byte(`" :`))
		pretty.Write(b)
		// Alternate the separators: a blank line, none, two values on one line.
		switch n % 3 {
		case 0:
			pretty.WriteString("\n\n")
		case 1:
			pretty.WriteString("\n")
		case 2:
			pretty.WriteString(" ")
		}
		n++
	}
	if !bytes.Contains(pretty.Bytes(), []byte(`"topic" : "orders"`)) {
		t.Fatalf("the rewrite did not space the topic field:\n%.400s", pretty.String())
	}
	spaced := filepath.Join(t.TempDir(), "pretty.json")
	if err := os.WriteFile(spaced, pretty.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, _ := backtestJSON(t, "--file", spaced)
	if rep.BadTotal != 0 || rep.Events != clean.Events || rep.Triggers != clean.Triggers || rep.Recovered != clean.Recovered ||
		reasonRow(t, rep, event.ReasonPurchaseLapse) != reasonRow(t, clean, event.ReasonPurchaseLapse) {
		t.Errorf("pretty-printed input gave another report: events %d vs %d, bad %v, triggers %d vs %d",
			rep.Events, clean.Events, rep.BadRecords, rep.Triggers, clean.Triggers)
	}
}

// TestBacktestNoGoodRecords: a file with no valid event exits 1 with the
// first problem shown, instead of an empty report.
func TestBacktestNoGoodRecords(t *testing.T) {
	dir := t.TempDir()
	f := func(name, content, want string) {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errs := backtest(t, "--file", path)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1; stdout:\n%s", name, code, out)
		}
		if want = strings.ReplaceAll(want, "F", path); !strings.Contains(errs, want) {
			t.Errorf("%s: stderr\n%s\nwant it to contain\n%s", name, errs, want)
		}
	}
	f("topics.jsonl", "{\"topic\": \"ordrs\", \"customer_id\": \"c1\"}\n[1, 2]\n",
		`winback backtest: F: none of its 2 records is a valid event; the first: line 1: unknown topic "ordrs"; the input topics are email-events, orders, support-events; did you mean orders?`)
	f("text.txt", "hello\nworld\n",
		"winback backtest: F: none of its 2 records is a valid event; the first: line 1: not valid JSON: invalid character 'h'")
	f("fields.jsonl", "{\"topic\":\"orders\",\"customer_id\":\"c1\",\"event_id\":\"e1\"}\n",
		"winback backtest: F: none of its 1 records is a valid event; the first: record 1: ")
	f("empty.jsonl", "\n\n", "winback backtest: F has no events")
}

// TestReadJSONL checks the reader's line numbers and recovery alone.
func TestReadJSONL(t *testing.T) {
	in := strings.Join([]string{
		`{"topic":"orders","customer_id":"a"}`, // 1
		``,                                     // 2
		`{`,                                    // 3: a pretty-printed value
		`  "customer_id" : "b",`,               // 4
		`  "topic" : "email-events"`,           // 5
		`}  {"topic":"support-events","customer_id":"c"}`, // 6: two values
		`{"topic":"orders","customer_id":"d","x":`,        // 7: cut off
		`{"topic":"orders","customer_id":"e"}`,            // 8
		`{"customer_id":"f"}`,                             // 9
		`not json`,                                        // 10
		`{"topic":"orders","customer_id":7}`,              // 11: no string key
	}, "\n")
	var got, bad []string
	err := readJSONL(strings.NewReader(in), gen.DefaultTopics(), func(k event.Kind, key, value []byte) error {
		got = append(got, k.String()+"/"+string(key)+"/"+itoa(len(value)))
		if !json.Valid(value) || bytes.ContainsAny(value, " \n") {
			t.Errorf("value %q is not compact JSON", value)
		}
		return nil
	}, func(e *gen.JSONLError) { bad = append(bad, itoa(e.Line)+": "+e.Msg) })
	if err != nil {
		t.Fatal(err)
	}
	wantGot := []string{"order/a/36", "email/b/42", "support/c/44", "order/e/36", "order//34"}
	if strings.Join(got, " ") != strings.Join(wantGot, " ") {
		t.Errorf("values %v, want %v", got, wantGot)
	}
	wantBad := []string{
		"7: not valid JSON: invalid character '{' after object key:value pair", // line 8 is read again alone
		`9: no "topic" field (a string); each event names its input topic: email-events, orders, support-events`,
		"10: not valid JSON: invalid character 'o' in literal null (expecting 'u')",
	}
	if strings.Join(bad, "\n") != strings.Join(wantBad, "\n") {
		t.Errorf("bad values:\n%s\nwant:\n%s", strings.Join(bad, "\n"), strings.Join(wantBad, "\n"))
	}
}

// TestReadJSONLUnclosed: a value left open is reported at its first line,
// bounded in lines, and the lines after the bound are read again.
func TestReadJSONLUnclosed(t *testing.T) {
	var b strings.Builder
	b.WriteString("{\"topic\":\"orders\",\"customer_id\":\"a\",\"list\":[\n")
	for range maxJSONValueLines + 5 {
		b.WriteString("1,\n")
	}
	b.WriteString("{\"topic\":\"orders\",\"customer_id\":\"z\"}\n")
	var keys []string
	var bad []int
	err := readJSONL(strings.NewReader(b.String()), gen.DefaultTopics(), func(_ event.Kind, key, _ []byte) error {
		keys = append(keys, string(key))
		return nil
	}, func(e *gen.JSONLError) { bad = append(bad, e.Line) })
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || keys[0] != "z" {
		t.Errorf("values %v, want z's alone", keys)
	}
	// Line 1 opens the value; the "1," lines after the bound each fail.
	if len(bad) < 2 || bad[0] != 1 {
		t.Errorf("bad lines %v, want line 1 first", bad)
	}
}

// FuzzReadJSONL: any input is read without a panic; every value passed on
// is compact JSON naming an input topic, and the bad ones carry lines in
// the input's range, in order.
func FuzzReadJSONL(f *testing.F) {
	f.Add("{\"topic\":\"orders\",\"customer_id\":\"a\"}\n")
	f.Add("{\n \"customer_id\" : \"b\",\n \"topic\" : \"email-events\"\n} {\"topic\":\"support-events\"}\n")
	f.Add("not json\n{\"topic\":\"orders\",\"x\":\n{\"topic\":\"nowhere\"}\n[1,2]\n\"s\"\n")
	f.Add("{\"topic\":\"orders\",\"customer_id\":\"\\u0041\"}")
	f.Fuzz(func(t *testing.T, in string) {
		lines := strings.Count(in, "\n") + 1
		last := 0
		err := readJSONL(strings.NewReader(in), gen.DefaultTopics(), func(k event.Kind, key, value []byte) error {
			var env struct {
				Topic string `json:"topic"`
			}
			if !json.Valid(value) || json.Unmarshal(value, &env) != nil {
				t.Fatalf("value %q is not a JSON object", value)
			}
			var c bytes.Buffer
			if json.Compact(&c, value) != nil || !bytes.Equal(c.Bytes(), value) {
				t.Fatalf("value %q is not compact", value)
			}
			if gen.DefaultTopics().For(k) != env.Topic {
				t.Fatalf("kind %v for topic %q", k, env.Topic)
			}
			return nil
		}, func(e *gen.JSONLError) {
			if e.Line < 1 || e.Line > lines || e.Line < last {
				t.Fatalf("bad value at line %d (input has %d lines; previous %d)", e.Line, lines, last)
			}
			last = e.Line
		})
		if err != nil && !strings.Contains(err.Error(), "longer than") {
			t.Fatalf("read error: %v", err)
		}
	})
}

// BenchmarkReadJSONL reads generated traffic, as backtest --file does.
func BenchmarkReadJSONL(b *testing.B) {
	g, err := gen.New(gen.Config{Customers: 200, Days: 120, Start: btGenConfig().Start, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	if err := g.WriteJSONL(&buf); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := readJSONL(bytes.NewReader(data), gen.DefaultTopics(), func(event.Kind, []byte, []byte) error { n++; return nil },
			func(e *gen.JSONLError) { b.Fatalf("bad line %d: %s", e.Line, e.Msg) })
		if err != nil || n == 0 {
			b.Fatal(err, n)
		}
	}
}

func TestEnvelopeOf(t *testing.T) {
	f := func(in, topic, customer string, object bool) {
		t.Helper()
		env, ok := envelopeOf([]byte(in))
		if ok != object || string(env.topic) != topic || string(env.customerID) != customer {
			t.Errorf("envelopeOf(%s) = %q, %q, %v; want %q, %q, %v", in, env.topic, env.customerID, ok, topic, customer, object)
		}
	}
	f(`{"topic":"orders","customer_id":"c1"}`, "orders", "c1", true)
	f(` { "customer_id" : "c1" , "topic" : "orders" } `, "orders", "c1", true)
	f(`{"x":{"topic":"no","customer_id":"no"},"y":["topic",{"a":"}"}],"topic":"orders","customer_id":"c\"1"}`, "orders", `c"1`, true)
	f(`{"topic":"ord\u0065rs","n":-1.5e3,"b":true,"z":null,"customer_id":7}`, "orders", "", true)
	f(`{"topic":["orders"]}`, "", "", true)
	f(`{}`, "", "", true)
	f(`["topic","orders"]`, "", "", false)
	f(`"orders"`, "", "", false)
}
