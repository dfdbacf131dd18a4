package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/winback/winback/config"
	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/consume"
	"github.com/winback/winback/pipeline/event"
)

// TestProducerStyles puts one generated stream through the pipeline three
// ways, as data platforms produce it:
//
//   - plain: every input keyed by customer_id, murmur2 (Java, franz-go);
//   - mixed: orders murmur2, emails placed by librdkafka's default
//     partitioner (CRC32, as kcat and confluent-kafka-python do), support
//     events with no key at all;
//   - transactional: murmur2 through a transactional producer, with one
//     aborted transaction across every input partition half-way;
//   - connect: as Kafka Connect sources write them: orders through the
//     AvroConverter (a record named ConnectDefault, strings for the enums,
//     the amount a Connect Decimal), every third order through the
//     JsonConverter instead (the amount a Decimal in its default base64,
//     the scale in the schema), e-mails and tickets through the
//     JsonConverter with schemas.enable=true ({"schema", "payload"}), the
//     tickets keyed by the JsonConverter too (so not by the bare
//     customer id);
//   - kafkajs: an outside Node.js program (testenv/kafkajs/client.js):
//     KafkaJS's transactional producer and default partitioner (support
//     events with no key), gzip-compressed batches, values in Confluent
//     Avro written by avsc with schemas its own registry client
//     registered, one aborted transaction; winback writes gzip batches
//     (kafka.compression) and Avro triggers, which a KafkaJS consumer
//     reads read_committed and decodes through the registry.
//
// Every run must equal the plain one exactly: the same triggers (id,
// customer, kind, reasons, priority, action, evidence), the same
// customer_aggregates FINAL rows and the same dead letters. The mixed run
// routes most e-mails and every ticket through the repartition topic, and
// the forwarding barrier applies them in the order the inputs would have.
func TestProducerStyles(t *testing.T) {
	o := genOptions{customers: 300, days: 240, seed: 23, encoding: "json"}
	plain := runStyle(t, "plain", o)
	for _, style := range []string{"transactional", "mixed", "connect", "kafkajs"} {
		got := runStyle(t, style, o)
		for _, c := range []struct {
			what       string
			plain, got []string
		}{{"triggers", plain.triggers, got.triggers}, {"dead letters", plain.dead, got.dead}} {
			if !slices.Equal(c.plain, c.got) {
				m, x := diff(c.plain, c.got)
				t.Errorf("%s: %d %s, plain %d: %d missing, %d extra (first: %q, %q)", style, len(c.got), c.what, len(c.plain), len(m), len(x), first(m), first(x))
			}
		}
		if d := diffRows(plain.rows, got.rows); d != "" {
			t.Errorf("%s: customer_aggregates FINAL differs from the plain run: %s", style, d)
		}
		if got.late != plain.late {
			// A forwarded record applied after its task's later
			// events: the barrier let them through too early.
			t.Errorf("%s: %.0f late events, plain %.0f", style, got.late, plain.late)
		}
		t.Logf("%s: %d triggers and %d customers as in the plain run; %.0f records repartitioned", style, len(got.triggers), len(got.rows), got.repartitioned)
		if style == "mixed" && got.repartitioned == 0 {
			t.Error("mixed producers: nothing was repartitioned")
		}
	}
}

type styleOutcome struct {
	triggers      []string // sorted jsonTrigger.line()s
	dead          []string // sorted "source topic|reason" of the dead letters
	rows          []string // customer_aggregates FINAL, all columns but updated_at
	repartitioned float64
	late          float64 // events applied behind their task's watermark
}

// runStyle produces o's stream in the given style to a fresh stack, runs
// the pipeline until it has read everything, and collects its outputs.
func runStyle(t *testing.T, style string, o genOptions) styleOutcome {
	t.Helper()
	const partitions = 4
	s := newStack(t, partitions)
	s.cfg.TriggerFormat = "json"
	s.cfg.ClickHouse.Database = "wb_style_" + style
	gcfg, err := o.config()
	if err != nil {
		t.Fatal(err)
	}
	g, err := gen.New(gcfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if style == "kafkajs" {
		s.cfg.TriggerFormat = "avro"
		s.cfg.Kafka.Compression = "gzip" // KafkaJS reads no snappy without a plug-in
		produceKafkaJS(ctx, t, &s.cfg, g)
	} else {
		produceStyled(ctx, t, &s.cfg, g, style, partitions)
	}

	httpAddr, reg := s.serveInProcess(t, s.cfg)
	topics := append(inputs(s.cfg), s.cfg.RepartitionTopic())
	waitCaughtUp(t, s.cfg.Kafka.Brokers, s.cfg.Kafka.Group, 3*time.Minute, topics...)
	// Forwarded records are applied a transaction later: wait until the
	// repartition topic, written last, is read too.
	waitCaughtUp(t, s.cfg.Kafka.Brokers, s.cfg.Kafka.Group, time.Minute, topics...)
	waitConfirmed(t, reg)

	var out styleOutcome
	records := consumeAll(t, s.cfg.Kafka.Brokers, s.cfg.Topics.Triggers)
	if style == "kafkajs" {
		cctx, ccancel := context.WithTimeout(context.Background(), 2*time.Minute)
		out.triggers = consumeKafkaJS(cctx, t, &s.cfg, len(records))
		ccancel()
	} else {
		for _, r := range records {
			var tr jsonTrigger
			if err := json.Unmarshal(r.Value, &tr); err != nil {
				t.Fatalf("%s: trigger is not JSON: %v", style, err)
			}
			out.triggers = append(out.triggers, tr.line())
		}
	}
	slices.Sort(out.triggers)
	for _, r := range consumeAll(t, s.cfg.Kafka.Brokers, s.cfg.Topics.DLQ) {
		h := map[string]string{}
		for _, kv := range r.Headers {
			h[kv.Key] = string(kv.Value)
		}
		out.dead = append(out.dead, h["winback.source.topic"]+"|"+h["winback.reason"])
	}
	slices.Sort(out.dead)
	db := openCH(t, s.cfg.ClickHouse.DSN)
	cols := queryRows(t, db, fmt.Sprintf(`SELECT name FROM system.columns WHERE database = '%s' AND table = 'customer_aggregates' AND name != 'updated_at'`, s.cfg.ClickHouse.Database))
	// Each run starts its state in its own epoch (the high 32 bits of
	// version); the customer's change count is what a run reproduces.
	for i, c := range cols {
		if c == "version" {
			cols[i] = "bitAnd(version, 4294967295)"
		}
	}
	out.rows = queryRows(t, db, fmt.Sprintf(`SELECT %s FROM %s.customer_aggregates FINAL ORDER BY customer_id`, strings.Join(cols, ", "), s.cfg.ClickHouse.Database))
	out.repartitioned = metricSum(t, httpAddr, "winback_repartitioned_records_total")
	out.late = metricSum(t, httpAddr, "winback_late_events_total")
	if len(out.rows) < 100 || len(out.triggers) == 0 || len(out.dead) == 0 {
		t.Fatalf("%s: %d customers, %d triggers and %d dead letters: too few to compare", style, len(out.rows), len(out.triggers), len(out.dead))
	}
	return out
}

// produceStyled produces g's stream as JSON, placed as style says.
func produceStyled(ctx context.Context, t *testing.T, cfg *config.Config, g *gen.Generator, style string, partitions int) {
	t.Helper()
	opts := []kgo.Opt{kgo.SeedBrokers(cfg.Kafka.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner())}
	if style == "transactional" {
		opts = append(opts, kgo.TransactionalID("upstream-"+style))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	topics := gen.Topics{Orders: cfg.Topics.Orders, Email: cfg.Topics.Email, Support: cfg.Topics.Support}
	var connect func(r *gen.Record) (key, value []byte)
	if style == "connect" {
		connect = connectStyle(ctx, t, cfg)
	}
	txn := func(commit bool) {
		if err := cl.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	begin := func() {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
	}
	if style == "transactional" {
		begin()
	}
	var n, total int
	_ = g.Each(func(*gen.Record) error { total++; return nil })
	var last, lastKey []byte
	err = g.Each(func(r *gen.Record) error {
		rec := &kgo.Record{Topic: topics.For(r.Kind), Key: []byte(r.Event.CustomerID)}
		switch {
		case r.Malformed != nil:
			rec.Value = append([]byte(nil), r.Malformed...) // the generator reuses its buffer
		case r.Duplicate && connect != nil: // a retry: the same key and value
			rec.Key, rec.Value = lastKey, last
		case r.Duplicate:
			rec.Value = last
		case connect != nil:
			rec.Key, rec.Value = connect(r)
			last, lastKey = rec.Value, rec.Key
		default:
			rec.Value = codec.AppendEventJSON(nil, &r.Event)
			last = rec.Value
		}
		rec.Partition = consume.PartitionOf(string(rec.Key), partitions)
		if style == "mixed" {
			switch r.Kind {
			case event.KindEmail:
				rec.Partition = librdkafkaPartition(rec.Key, partitions)
			case event.KindSupport:
				rec.Key, rec.Partition = nil, int32(n%partitions)
			}
		}
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
		n++
		if style == "transactional" && n%5000 == 0 {
			txn(true)
			begin()
		}
		if style == "transactional" && n == total/2 {
			// An aborted transaction on every input partition: its
			// records must never be applied.
			txn(true)
			begin()
			for _, topic := range []string{topics.Orders, topics.Email, topics.Support} {
				for p := range partitions {
					ev := event.Event{Kind: event.KindOrder, EventID: fmt.Sprintf("aborted-%s-%d", topic, p), CustomerID: "aborted-customer",
						Time: r.Event.Time, OrderType: event.OrderPlaced, OrderID: "aborted", Amount: 1, Currency: "EUR", Items: 1}
					cl.Produce(ctx, &kgo.Record{Topic: topic, Partition: int32(p), Key: []byte(ev.CustomerID), Value: codec.AppendEventJSON(nil, &ev)}, nil)
				}
			}
			txn(false)
			begin()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if style == "transactional" {
		txn(true)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// connectStyle returns what Kafka Connect's converters make of a record:
// the key and value of an order through the AvroConverter (the schema of
// testdata/connect_order.avsc, registered under <orders>-value) or, one in
// three, through the JsonConverter with a base64 Decimal amount, of an
// e-mail through the JsonConverter with schemas.enable=true (key a plain
// string), and of a ticket with both key and value through it.
func connectStyle(ctx context.Context, t *testing.T, cfg *config.Config) func(r *gen.Record) (key, value []byte) {
	t.Helper()
	text, err := os.ReadFile("testdata/connect_order.avsc")
	if err != nil {
		t.Fatal(err)
	}
	avroCodec, err := goavro.NewCodec(string(text))
	if err != nil {
		t.Fatal(err)
	}
	reg, err := sr.NewClient(sr.URLs(cfg.Registry.URL))
	if err != nil {
		t.Fatal(err)
	}
	ss, err := reg.CreateSchema(ctx, cfg.Topics.Orders+"-value", sr.Schema{Schema: string(text)})
	if err != nil {
		t.Fatal(err)
	}
	var hdr sr.ConfluentHeader
	const (
		orderSchema  = `{"type":"struct","fields":[{"type":"string","optional":false,"field":"event_id"},{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2","connect.decimal.precision":"12"},"field":"amount"}],"optional":false,"name":"shop.public.orders.Value"}`
		ticketSchema = `{"type":"struct","fields":[{"type":"string","optional":false,"field":"event_id"},{"type":"string","optional":false,"field":"customer_id"},{"type":"int64","optional":false,"name":"org.apache.kafka.connect.data.Timestamp","version":1,"field":"event_time"},{"type":"string","optional":false,"field":"type"}],"optional":false,"name":"tickets"}`
		keySchema    = `{"type":"string","optional":false}`
	)
	orders := 0
	return func(r *gen.Record) ([]byte, []byte) {
		ev := &r.Event
		key := []byte(ev.CustomerID)
		switch r.Kind {
		case event.KindOrder:
			if orders++; orders%3 == 0 {
				// Java's BigInteger.toByteArray: two's complement,
				// big-endian, as short as the sign allows.
				cents := big.NewInt(int64(math.Round(ev.Amount * 100)))
				b := cents.Bytes()
				if len(b) == 0 || b[0]&0x80 != 0 {
					b = append([]byte{0}, b...)
				}
				payload := codec.AppendEventJSON(nil, ev)
				payload = bytes.Replace(payload, strconv.AppendFloat([]byte(`"amount":`), ev.Amount, 'g', -1, 64),
					fmt.Appendf(nil, `"amount":%q`, base64.StdEncoding.EncodeToString(b)), 1)
				if !bytes.Contains(payload, []byte(`"amount":"`)) {
					t.Fatalf("no amount to replace in %s", payload)
				}
				return key, fmt.Appendf(nil, `{"schema":%s,"payload":%s}`, orderSchema, payload)
			}
			body, err := avroCodec.BinaryFromNative(nil, map[string]any{
				"event_id": ev.EventID, "customer_id": ev.CustomerID, "event_time": time.UnixMilli(ev.Time).UTC(),
				"type": ev.OrderType.String(), "order_id": ev.OrderID, "amount": big.NewRat(int64(math.Round(ev.Amount*100)), 100),
				"currency": ev.Currency, "items": ev.Items, "updated_by": goavro.Union("string", "jdbc-source"),
			})
			if err != nil {
				t.Fatal(err)
			}
			value, err := hdr.AppendEncode(nil, ss.ID, nil)
			if err != nil {
				t.Fatal(err)
			}
			return key, append(value, body...)
		case event.KindSupport:
			key = fmt.Appendf(nil, `{"schema":%s,"payload":%q}`, keySchema, ev.CustomerID)
			return key, fmt.Appendf(nil, `{"schema":%s,"payload":%s}`, ticketSchema, codec.AppendEventJSON(nil, ev))
		}
		return key, fmt.Appendf(nil, `{"schema":{"type":"struct","optional":false,"name":"emails"},"payload":%s}`, codec.AppendEventJSON(nil, ev))
	}
}

// queryRows returns each row of query as one string.
func queryRows(t *testing.T, db *sql.DB, query string) []string {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for i, v := range vals {
			if i > 0 {
				b.WriteByte('|')
			}
			fmt.Fprint(&b, deref(v))
		}
		out = append(out, b.String())
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func deref(v any) any {
	switch p := v.(type) {
	case *time.Time:
		if p == nil {
			return "NULL"
		}
		return p.UTC()
	case *uint8:
		if p == nil {
			return "NULL"
		}
		return *p
	}
	return v
}

// diffRows describes the first differences between two row lists, or "".
func diffRows(a, b []string) string {
	if slices.Equal(a, b) {
		return ""
	}
	var d []string
	for i := 0; i < max(len(a), len(b)) && len(d) < 5; i++ {
		var x, y string
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if x != y {
			d = append(d, fmt.Sprintf("\n  row %d: %q\n      vs %q", i, x, y))
		}
	}
	return fmt.Sprintf("%d vs %d rows;%s", len(a), len(b), strings.Join(d, ""))
}

// TestStrictPartitioning: with --input-partitioning=strict, records that
// are not keyed by customer_id and placed by murmur2 go to the dead-letter
// topic with the reason that names the problem; the others are applied.
func TestStrictPartitioning(t *testing.T) {
	const partitions = 3
	s := newStack(t, partitions)
	s.cfg.InputPartitioning = "strict"
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.cfg.Kafka.Brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	at := time.Now().Add(-time.Hour).UnixMilli()
	rec := func(cust string, key []byte, wrong bool) *kgo.Record {
		ev := event.Event{Kind: event.KindOrder, EventID: "e-" + cust, CustomerID: cust, Time: at,
			OrderType: event.OrderPlaced, OrderID: "o-" + cust, Amount: 10, Currency: "EUR", Items: 1}
		p := consume.PartitionOf(cust, partitions)
		if wrong {
			p = (p + 1) % partitions
		}
		return &kgo.Record{Topic: s.cfg.Topics.Orders, Partition: p, Key: key, Value: codec.AppendEventJSON(nil, &ev)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx,
		rec("placed-right", []byte("placed-right"), false),
		rec("placed-wrong", []byte("placed-wrong"), true),
		rec("no-key", nil, false),
		rec("order-keyed", []byte("o-123"), false),
	).FirstErr(); err != nil {
		t.Fatal(err)
	}
	_, reg := s.serveInProcess(t, s.cfg)
	waitCaughtUp(t, s.cfg.Kafka.Brokers, s.cfg.Kafka.Group, time.Minute, inputs(s.cfg)...)
	waitConfirmed(t, reg)
	got := map[string]string{}
	for _, r := range consumeAll(t, s.cfg.Kafka.Brokers, s.cfg.Topics.DLQ) {
		var ev struct {
			CustomerID string `json:"customer_id"`
		}
		_ = json.Unmarshal(r.Value, &ev)
		got[ev.CustomerID] = headerValue(r, "winback.reason")
	}
	want := map[string]string{"placed-wrong": "key.partition_mismatch", "no-key": "key.missing", "order-keyed": "key.mismatch"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("dead letters by customer: %v, want %v", got, want)
	}
	rows := queryRows(t, openCH(t, s.cfg.ClickHouse.DSN), fmt.Sprintf("SELECT customer_id FROM %s.customer_aggregates FINAL", s.cfg.ClickHouse.Database))
	if !slices.Equal(rows, []string{"placed-right"}) {
		t.Errorf("customers in ClickHouse: %v, want only placed-right", rows)
	}
}
