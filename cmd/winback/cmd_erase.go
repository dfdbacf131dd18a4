package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/config"
)

// maxErasureID matches what the pipeline accepts as an erasure key
// (pipeline/consume erase.go).
const maxErasureID = 4 << 10

func cmdErase(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := config.Default()
	cfg.StartupTimeout = 10 * time.Second // a one-shot command: fail soon
	cfg.LogLevel = "warn"                 // and quiet: the Kafka client's INFO lines are noise here
	fs := newFlagSet("erase", "Request the erasure (GDPR, CCPA) of customers: produce one record per CUSTOMER_ID to the\nerasures topic (topics.erasures), keyed by the id with Kafka's murmur2 partitioner. The\npipeline removes each customer from its state, the changelog and every ClickHouse table,\nexactly once. Give the ids as arguments, or - to read them from standard input, one per line.\n\nUsage: winback erase [flags] CUSTOMER_ID... | -", stderr)
	if err := loadConfig(fs, args, &cfg); err != nil {
		return err
	}
	ids, err := erasureIDs(fs.Args(), os.Stdin)
	if err != nil {
		return usageError{err}
	}
	log := newLogger(&cfg, stderr)
	n, err := requestErasures(ctx, &cfg, ids, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "requested the erasure of %d customers on %s\n", n, cfg.Topics.Erasures)
	return nil
}

// erasureIDs returns the customer ids of the arguments, reading them one
// per line from stdin for "-"; repeated ids are requested once.
func erasureIDs(args []string, stdin io.Reader) ([]string, error) {
	if len(args) == 0 {
		return nil, errors.New("no CUSTOMER_ID; give the ids as arguments, or - to read them from standard input")
	}
	var ids []string
	seen := map[string]bool{}
	add := func(id, where string) error {
		switch {
		case id == "":
			return fmt.Errorf("%s: empty customer id", where)
		case len(id) > maxErasureID:
			return fmt.Errorf("%s: customer id of %d bytes, more than %d", where, len(id), maxErasureID)
		case strings.HasPrefix(id, "\x00"):
			return fmt.Errorf("%s: a customer id cannot start with a NUL byte", where)
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
		return nil
	}
	for i, a := range args {
		if strings.HasPrefix(a, "-") && a != "-" {
			// The flag package stops at the first id: a flag after it is
			// taken for an id. (An id that starts with - goes on stdin.)
			return nil, fmt.Errorf("argument %d: %q after the first customer id; give the flags before the ids (an id starting with - goes on standard input)", i+1, a)
		}
		if a != "-" {
			if err := add(a, fmt.Sprintf("argument %d", i+1)); err != nil {
				return nil, err
			}
			continue
		}
		sc := bufio.NewScanner(stdin)
		sc.Buffer(make([]byte, 64<<10), maxErasureID+2)
		for line := 1; sc.Scan(); line++ {
			id := strings.TrimSpace(sc.Text())
			if id == "" {
				continue // blank lines are allowed
			}
			if err := add(id, fmt.Sprintf("standard input line %d", line)); err != nil {
				return nil, err
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("standard input: %w", err)
		}
	}
	if len(ids) == 0 {
		return nil, errors.New("no customer id on standard input")
	}
	return ids, nil
}

// erasureValue is the value of an erasure record, for the audit trail;
// the pipeline reads only the key and the record timestamp.
type erasureValue struct {
	CustomerID  string `json:"customer_id"`
	RequestedAt string `json:"requested_at"`
}

// requestErasures produces one erasure record per id and returns how many
// were acknowledged.
func requestErasures(ctx context.Context, cfg *config.Config, ids []string, log *slog.Logger) (int, error) {
	kopts, err := kafkaOpts(cfg, log)
	if err != nil {
		return 0, err
	}
	if err := checkKafka(ctx, cfg, kopts); err != nil {
		return 0, err
	}
	cl, err := kgo.NewClient(append(kopts, kgo.DefaultProduceTopic(cfg.Topics.Erasures))...)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	topic := cfg.Topics.Erasures
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("kafka: describe %s: %w", topic, err)
	}
	if d, ok := td[topic]; !ok || d.Err != nil {
		return 0, fmt.Errorf("the erasures topic %s does not exist: start winback once (it creates it with the inputs' partition count) or create it co-partitioned with the inputs", topic)
	}
	now := time.Now().UTC()
	recs := make([]*kgo.Record, len(ids))
	for i, id := range ids {
		v, _ := json.Marshal(erasureValue{CustomerID: id, RequestedAt: now.Format(time.RFC3339Nano)})
		recs[i] = &kgo.Record{Key: []byte(id), Value: v, Timestamp: now}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return 0, fmt.Errorf("produce to %s: %w", topic, err)
	}
	return len(recs), nil
}
