package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/winback/winback/config"
	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/event"
)

// kafkaJS runs testenv/kafkajs/client.js (an outside Node.js client:
// KafkaJS and @kafkajs/confluent-schema-registry, installed by make deps
// into .cache/kafkajs) with args and stdin, and returns its stdout.
func kafkaJS(ctx context.Context, t *testing.T, stdin []byte, args ...string) []byte {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed (apt-get install nodejs npm): %v", err)
	}
	modules, err := filepath.Abs("../../.cache/kafkajs/node_modules")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(modules, "kafkajs")); err != nil {
		t.Fatalf("KafkaJS is not installed in %s (make deps installs it: scripts/deps.sh): %v", modules, err)
	}
	cmd := exec.CommandContext(ctx, node, append([]string{"../../testenv/kafkajs/client.js"}, args...)...)
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules)
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node client.js %s: %v\n%s", args[0], err, stderr.Bytes())
	}
	return out
}

// jsLine is one line of client.js produce's input.
type jsLine struct {
	Topic string          `json:"topic,omitempty"`
	Key   *string         `json:"key"`
	Value json.RawMessage `json:"value,omitempty"` // an event, Avro-encoded by avsc
	Raw   []byte          `json:"raw"`             // sent as it is (null: none)
	End   string          `json:"end,omitempty"`   // commit or abort
}

// produceKafkaJS produces g's stream with client.js: orders and e-mails
// keyed by customer id and placed by KafkaJS's default partitioner, support
// events with no key, valid events as Confluent Avro, malformed records as
// they are; in transactions of 5000 records, with an aborted one half-way
// whose records (one per input, for a customer of their own) must never be
// applied.
func produceKafkaJS(ctx context.Context, t *testing.T, cfg *config.Config, g *gen.Generator) {
	t.Helper()
	topics := gen.Topics{Orders: cfg.Topics.Orders, Email: cfg.Topics.Email, Support: cfg.Topics.Support}
	var in bytes.Buffer
	enc := json.NewEncoder(&in)
	put := func(l jsLine) {
		if err := enc.Encode(l); err != nil {
			t.Fatal(err)
		}
	}
	var n, total int
	_ = g.Each(func(*gen.Record) error { total++; return nil })
	var last json.RawMessage
	err := g.Each(func(r *gen.Record) error {
		l := jsLine{Topic: topics.For(r.Kind), Key: &r.Event.CustomerID}
		switch {
		case r.Malformed != nil:
			l.Raw = r.Malformed
		case r.Duplicate:
			l.Value = last
		default:
			l.Value = codec.AppendEventJSON(nil, &r.Event)
			last = l.Value
		}
		if r.Kind == event.KindSupport {
			l.Key = nil
		}
		put(l)
		n++
		if n%5000 == 0 {
			put(jsLine{End: "commit"})
		}
		if n == total/2 {
			put(jsLine{End: "commit"})
			for _, topic := range []string{topics.Orders, topics.Email, topics.Support} {
				ev := event.Event{Kind: event.KindOrder, EventID: "aborted-" + topic, CustomerID: "aborted-customer",
					Time: r.Event.Time, OrderType: event.OrderPlaced, OrderID: "aborted", Amount: 1, Currency: "EUR", Items: 1}
				// An order, as JSON, on every input: applied on
				// orders and dead-lettered on the others if winback
				// ever read it.
				put(jsLine{Topic: topic, Key: &ev.CustomerID, Raw: codec.AppendEventJSON(nil, &ev)})
			}
			put(jsLine{End: "abort"})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	put(jsLine{End: "commit"})
	kafkaJS(ctx, t, in.Bytes(), "produce", cfg.Kafka.Brokers[0], cfg.Registry.URL,
		topics.Orders+"=../../schemas/avro/order.avsc",
		topics.Email+"=../../schemas/avro/email_event.avsc",
		topics.Support+"=../../schemas/avro/support_event.avsc")
}

// consumeKafkaJS reads the first n triggers with client.js consume (a
// KafkaJS consumer, read_committed, values decoded by avsc with the
// writer schema from the registry) and returns their jsonTrigger lines.
func consumeKafkaJS(ctx context.Context, t *testing.T, cfg *config.Config, n int) []string {
	t.Helper()
	out := kafkaJS(ctx, t, nil, "consume", cfg.Kafka.Brokers[0], cfg.Registry.URL, cfg.Topics.Triggers, fmt.Sprint(n))
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec struct {
			Value jsonTrigger `json:"value"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("client.js consume printed %q: %v", sc.Text(), err)
		}
		lines = append(lines, rec.Value.line())
	}
	if len(lines) != n {
		t.Fatalf("client.js consume read %d triggers, want %d", len(lines), n)
	}
	return lines
}
