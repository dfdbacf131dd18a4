package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/codec"
)

// streamInfo describes the generated stream, as produced.
type streamInfo struct {
	Customers  int            `json:"customers"`
	Days       int            `json:"days"`
	Seed       int64          `json:"seed"`
	From       time.Time      `json:"from"`
	To         time.Time      `json:"to"`
	Records    int            `json:"records"` // per encoding
	Malformed  int            `json:"malformed"`
	Duplicates int            `json:"duplicates"`
	ByKind     map[string]int `json:"by_kind"`
	Encodings  []string       `json:"encodings"`
	ProduceS   float64        `json:"produce_s"` // generating and producing every copy
}

// planDays picks the number of days of history that gives about events
// records for customers customers. The generator's records per
// customer-day depend a little on the length of the history, so it
// measures the rate on a sample of customers and iterates.
func planDays(events, customers int, seed int64) (int, error) {
	sample := min(customers, 2000)
	days := max(1, int(math.Ceil(float64(events)/(0.8*float64(customers)))))
	for range 4 {
		g, err := gen.New(gen.Config{Customers: sample, Days: days, Seed: seed})
		if err != nil {
			return 0, err
		}
		n := 0
		if err := g.Each(func(*gen.Record) error { n++; return nil }); err != nil {
			return 0, err
		}
		rate := float64(n) / float64(sample*days)
		next := max(1, int(math.Ceil(float64(events)/(rate*float64(customers)))))
		if next == days {
			break
		}
		days = next
	}
	return days, nil
}

// produceStream generates the stream once per encoding and produces it to
// the broker: JSON to jsonTopics, and, if avroTopics is set, the same
// records as Confluent-framed Avro to avroTopics (schemas registered in
// the broker child's srfake).
func produceStream(ctx context.Context, b *broker, g *gen.Generator, jsonTopics gen.Topics, avroTopics *gen.Topics, log *slog.Logger) (streamInfo, error) {
	cfg := g.Config()
	from, to := g.Range()
	info := streamInfo{Customers: cfg.Customers, Days: cfg.Days, Seed: cfg.Seed, From: from, To: to}
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
	st, err := gen.Produce(ctx, g, cl, jsonTopics, nil, gen.EncodingJSON, progress("json"))
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
		ast, err := gen.Produce(ctx, g, cl, *avroTopics, enc, gen.EncodingAvro, progress("avro"))
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
