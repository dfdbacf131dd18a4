package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/event"
)

// streamInfo describes the generated stream, as produced.
type streamInfo struct {
	Customers int       `json:"customers"`
	Days      int       `json:"days"`
	Seed      int64     `json:"seed"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	// EmailEvery: only every EmailEvery-th customer (by id) receives
	// marketing e-mail; the e-mail records of the others are left out.
	EmailEvery int            `json:"email_every"`
	Records    int            `json:"records"` // per encoding
	Malformed  int            `json:"malformed"`
	Duplicates int            `json:"duplicates"`
	ByKind     map[string]int `json:"by_kind"`
	Encodings  []string       `json:"encodings"`
	ProduceS   float64        `json:"produce_s"` // generating and producing every copy
}

// benchStart is where the bench stream's event time begins: a year that is
// over by the time of the run, so that no event_time lies in the future of
// the wall clock (winback dead-letters those) whatever -days is, up to
// the years before.
var benchStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// streamStart returns the first day of a stream of days days that ends by
// 2026-01-01 (benchStart for a year or less).
func streamStart(days int) time.Time {
	if days <= 365 {
		return benchStart
	}
	return benchStart.AddDate(0, 0, 365-days)
}

// genConfig is the generator's configuration for the bench stream.
func genConfig(customers, days int, seed int64) gen.Config {
	return gen.Config{Customers: customers, Days: days, Seed: seed, Start: streamStart(days)}
}

// emailReceiver reports whether the customer with id (c000001 …) receives
// marketing e-mail when only every every-th customer does.
func emailReceiver(id string, every int) bool {
	if every <= 1 {
		return true
	}
	n, err := strconv.Atoi(strings.TrimPrefix(id, "c"))
	return err == nil && n%every == 0
}

// keepRecord reports whether the bench stream keeps a generated record:
// everything but the e-mail records (valid, duplicate or malformed) of
// customers who receive no marketing e-mail.
func keepRecord(r *gen.Record, emailEvery int) bool {
	return r.Kind != event.KindEmail || emailReceiver(r.Event.CustomerID, emailEvery)
}

// planEmail picks how many customers receive marketing e-mail, so that a
// stream of days days for customers customers has about events records:
// e-mail is most of the generator's records (two campaigns a week to
// every subscriber, about 240 records per customer and year, against
// about 30 orders and tickets), so a year of 100k customers would be
// about 27M records. It measures the records per customer on a sample,
// and returns every, the share 1/every of customers who get e-mail (1:
// all), and the estimated records. When the orders and tickets alone
// exceed events, at least 1% of customers still get e-mail.
func planEmail(events, customers, days int, seed int64) (every int, estimate int, err error) {
	sample := min(customers, 2000)
	g, err := gen.New(genConfig(sample, days, seed))
	if err != nil {
		return 0, 0, err
	}
	var email, other float64
	if err := g.Each(func(r *gen.Record) error {
		if r.Kind == event.KindEmail {
			email++
		} else {
			other++
		}
		return nil
	}); err != nil {
		return 0, 0, err
	}
	scale := float64(customers) / float64(sample)
	email, other = email*scale, other*scale
	switch room := float64(events) - other; {
	case room >= email:
		every = 1
	case room <= email/100:
		every = 100
	default:
		every = int(math.Ceil(email / room))
	}
	return every, int(other + email/float64(every)), nil
}

// produceStream generates the stream once per encoding and produces it to
// the broker: JSON to jsonTopics, and, if avroTopics is set, the same
// records as Confluent-framed Avro to avroTopics (schemas registered in
// the broker child's srfake). Only every emailEvery-th customer's e-mail
// records are kept.
func produceStream(ctx context.Context, b *broker, g *gen.Generator, emailEvery int, jsonTopics gen.Topics, avroTopics *gen.Topics, log *slog.Logger) (streamInfo, error) {
	cfg := g.Config()
	from, to := g.Range()
	info := streamInfo{Customers: cfg.Customers, Days: cfg.Days, Seed: cfg.Seed, From: from, To: to, EmailEvery: emailEvery}
	began := time.Now()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(b.Kafka),
		// Uncompressed, so that every contender measures processing, not
		// decompression; murmur2 key partitioning like Kafka's Java client.
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)),
		kgo.MaxBufferedRecords(200_000),
		kgo.ProducerBatchMaxBytes(1<<20),
	)
	if err != nil {
		return info, err
	}
	defer cl.Close()
	progress := func(what string) func(int) {
		last := time.Now()
		return func(n int) {
			if time.Since(last) > 5*time.Second {
				log.Info("producing", "encoding", what, "records", n)
				last = time.Now()
			}
		}
	}
	src := emailFilter{g, emailEvery}
	st, err := gen.Produce(ctx, src, cl, jsonTopics, nil, gen.EncodingJSON, progress("json"))
	if err != nil {
		return info, fmt.Errorf("produce JSON stream: %w", err)
	}
	info.Records, info.Malformed, info.Duplicates, info.ByKind = st.Records, st.Malformed, st.Duplicates, st.ByKind
	info.Encodings = append(info.Encodings, "json")
	if avroTopics != nil {
		rc, err := sr.NewClient(sr.URLs(b.Registry))
		if err != nil {
			return info, err
		}
		enc, err := codec.NewEventEncoder(ctx, rc, avroTopics.Kinds())
		if err != nil {
			return info, err
		}
		ast, err := gen.Produce(ctx, src, cl, *avroTopics, enc, gen.EncodingAvro, progress("avro"))
		if err != nil {
			return info, fmt.Errorf("produce Avro stream: %w", err)
		}
		if ast.Records != st.Records {
			return info, fmt.Errorf("the Avro copy has %d records, the JSON stream %d", ast.Records, st.Records)
		}
		info.Encodings = append(info.Encodings, "avro")
	}
	info.ProduceS = time.Since(began).Seconds()
	return info, nil
}

// emailFilter is g's stream without the e-mail records (valid,
// duplicate or malformed) of customers who receive no marketing e-mail
// (keepRecord).
type emailFilter struct {
	g     *gen.Generator
	every int
}

func (f emailFilter) Each(fn func(r *gen.Record) error) error {
	return f.g.Each(func(r *gen.Record) error {
		if !keepRecord(r, f.every) {
			return nil
		}
		return fn(r)
	})
}
