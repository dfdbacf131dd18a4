package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
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
	st, err := produceRecords(ctx, g, cl, jsonTopics, nil, emailEvery, progress("json"))
	if err != nil {
		return info, fmt.Errorf("produce JSON stream: %w", err)
	}
	info.Records, info.Malformed, info.Duplicates, info.ByKind = st.Records, st.Malformed, st.Duplicates, st.ByKind
	info.Encodings = append(info.Encodings, "json")
	if avroTopics != nil {
		src, err := sr.NewClient(sr.URLs(b.Registry))
		if err != nil {
			return info, err
		}
		enc, err := codec.NewEventEncoder(ctx, src, avroTopics.Kinds())
		if err != nil {
			return info, err
		}
		ast, err := produceRecords(ctx, g, cl, *avroTopics, enc, emailEvery, progress("avro"))
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

// produceStats counts the records produceRecords sent.
type produceStats struct {
	Records, Malformed, Duplicates int
	ByKind                         map[string]int
}

// produceRecords is gen.Produce with a filter: it writes the records of g
// that keepRecord keeps to topics, keyed by customer id, valid records
// (and duplicates) as Avro with enc or, if enc is nil, as JSON
// (codec.AppendEventJSON), malformed records raw. It returns once every
// record is acknowledged, or at the first error.
func produceRecords(ctx context.Context, g *gen.Generator, cl *kgo.Client, topics gen.Topics, enc gen.AvroEncoder, emailEvery int, progress func(int)) (produceStats, error) {
	st := produceStats{ByKind: map[string]int{}}
	var (
		mu       sync.Mutex
		firstErr error
	)
	promise := func(r *kgo.Record, err error) {
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = fmt.Errorf("producing to %s: %w", r.Topic, err)
			}
			mu.Unlock()
		}
	}
	failed := func() error {
		mu.Lock()
		defer mu.Unlock()
		return firstErr
	}
	var last []byte
	err := g.Each(func(r *gen.Record) error {
		if !keepRecord(r, emailEvery) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rec := &kgo.Record{Topic: topics.For(r.Kind), Key: []byte(r.Event.CustomerID)}
		switch {
		case r.Malformed != nil:
			rec.Value = rawValue(r.Malformed)
			st.Malformed++
		case r.Duplicate:
			rec.Value = last // the same bytes again, as a retrying producer sends them
			st.Duplicates++
		case enc != nil:
			v, err := enc.Avro(nil, &r.Event)
			if err != nil {
				return fmt.Errorf("encoding %s as Avro: %w", r.Event.EventID, err)
			}
			rec.Value, last = v, v
		default:
			rec.Value = codec.AppendEventJSON(nil, &r.Event)
			last = rec.Value
		}
		cl.Produce(ctx, rec, promise)
		st.Records++
		st.ByKind[r.Kind.String()]++
		if st.Records%10_000 == 0 {
			if err := failed(); err != nil {
				return err
			}
			if progress != nil {
				progress(st.Records)
			}
		}
		return nil
	})
	if ferr := cl.Flush(ctx); ferr != nil && err == nil {
		err = fmt.Errorf("flushing: %w", ferr)
	}
	if perr := failed(); perr != nil && err == nil {
		err = perr
	}
	return st, err
}

// rawValue copies a malformed record's bytes, never to nil: an empty value
// is not a null value (a tombstone, which goka's consumer skips).
func rawValue(b []byte) []byte { return append(make([]byte, 0, len(b)), b...) }
