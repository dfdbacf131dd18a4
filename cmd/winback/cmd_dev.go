package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"path/filepath"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/winback/winback/config"
	"github.com/winback/winback/testenv"
)

const devSynopsis = `Run the pipeline on the embedded default: franz-go's kfake broker on
--kafka-addr, srfake (the Confluent schema-registry API) on --registry-addr,
and ClickHouse (--clickhouse DSN, or a clickhouse-server started as a child
process in a temp dir). Outside clients (kcat, any Kafka client, BI tools)
can use all three while it runs. --generate adds synthetic traffic.
Every 'winback run' flag works here too.`

func cmdDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := config.Default()
	cfg.LogFormat = "text"
	cfg.LogLevel = "warn"
	fs := newFlagSet("dev", devSynopsis, stderr)
	kafkaAddr := fs.String("kafka-addr", "127.0.0.1:9092", "address of the embedded Kafka broker (kfake)")
	dataDir := fs.String("data-dir", "", "directory where kfake (DIR/kafka), the local ClickHouse (DIR/clickhouse) and the schema registry (DIR/registry.json) keep their data across restarts (default: memory and a temp dir); --generate does not produce again into inputs that hold records")
	registryAddr := fs.String("registry-addr", "127.0.0.1:8081", "address of the embedded schema registry (srfake)")
	chDSN := fs.String("clickhouse", "", "DSN of an existing ClickHouse (default: start clickhouse-server in a temp dir)")
	partitions := fs.Int("partitions", 6, "partitions of each topic the embedded broker creates")
	var gopts genOptions
	gopts.bind(fs)
	generate := fs.Bool("generate", false, "produce synthetic traffic while the pipeline runs")
	if err := loadConfig(fs, args, &cfg); err != nil {
		return err
	}
	if err := noArgs(fs, ""); err != nil {
		return err
	}
	log := newLogger(&cfg, stderr)
	tuneRuntime(cfg.Runtime, log, memlimit.FromCgroup)

	t := cfg.Topics
	kafkaDir, chDir := "", ""
	if *dataDir != "" {
		kafkaDir, chDir = filepath.Join(*dataDir, "kafka"), filepath.Join(*dataDir, "clickhouse")
	}
	k, err := testenv.StartKafka(ctx, testenv.KafkaOptions{
		Addr:            *kafkaAddr,
		DataDir:         kafkaDir,
		Partitions:      int32(*partitions),
		Topics:          []string{t.Orders, t.Email, t.Support, t.Triggers, t.DLQ},
		CompactedTopics: []string{t.State},
		Logger:          log.With("component", "kfake"),
	})
	if err != nil {
		return fmt.Errorf("embedded kafka: %w", err)
	}
	defer k.Close()
	regFile := ""
	if *dataDir != "" {
		regFile = filepath.Join(*dataDir, "registry.json")
	}
	reg, err := testenv.StartRegistryIn(*registryAddr, regFile)
	if err != nil {
		return fmt.Errorf("embedded schema registry: %w", err)
	}
	defer reg.Close()
	dsn := *chDSN
	var ch *testenv.ClickHouse
	if dsn == "" {
		fmt.Fprintln(stdout, "starting clickhouse-server as a child process…")
		ch, err = testenv.StartClickHouse(ctx, testenv.ClickHouseOptions{Dir: chDir, Logger: log.With("component", "clickhouse-server")})
		if err != nil {
			return fmt.Errorf("local clickhouse: %w", err)
		}
		defer ch.Close()
		dsn = ch.DSN()
	}
	cfg.Kafka.Brokers = []string{k.Addr()}
	cfg.Registry.URL = reg.URL()
	cfg.ClickHouse.DSN = dsn
	if err := cfg.Validate(); err != nil {
		return usageError{err}
	}

	fmt.Fprintf(stdout, "\nwinback dev\n  Kafka (kfake)       %s\n  schema registry     %s\n  ClickHouse          %s\n",
		k.Addr(), reg.URL(), dsn)
	held, err := topicRecords(ctx, cfg.Kafka.Brokers, t.Orders, t.Email, t.Support)
	if err != nil {
		return fmt.Errorf("embedded kafka: %w", err)
	}
	if *generate && held > 0 {
		// A restart on a --data-dir: the history is there already, and
		// producing it again would apply every event a second time as
		// late data (new records, new offsets) on top of the first.
		fmt.Fprintf(stdout, "generator: the inputs already hold %d records (kept in --data-dir); not generating them again\n\n", held)
		*generate = false
	}
	if *generate {
		// The history is produced before the pipeline starts: a generator
		// that writes a year of events in a second, racing the consumer,
		// would deliver a task's three topics far out of step in event
		// time, which real producers do not.
		st, err := produceTraffic(ctx, &cfg, &gopts, log, nil)
		if err != nil {
			return fmt.Errorf("generator: %w", err)
		}
		fmt.Fprintf(stdout, "generator: produced %d records (%d malformed, %d duplicates) for %d customers over %d days\n\n",
			st.Records, st.Malformed, st.Duplicates, gopts.customers, gopts.days)
	}
	preg := prometheus.NewRegistry()
	g, gctx := errgroup.WithContext(ctx)
	started := make(chan string, 1)
	g.Go(func() error {
		return serve(gctx, &cfg, log, preg, func(addr string) { started <- addr })
	})
	var httpAddr string
	select {
	case httpAddr = <-started:
	case <-gctx.Done():
		return g.Wait()
	}
	fmt.Fprintf(stdout, "  metrics, lookups    http://%s/metrics  http://%s/v1/customers/{id}\n\n", httpAddr, httpAddr)
	printHowTo(stdout, &cfg, k.Addr(), ch)

	g.Go(func() error {
		p := newProgress(preg)
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-gctx.Done():
				fmt.Fprintln(stdout, p.line())
				return nil
			case <-tick.C:
				fmt.Fprintln(stdout, p.line())
			}
		}
	})
	err = g.Wait()
	printStopped(stdout, &cfg, *dataDir, ch)
	return err
}

// printStopped says what still works once dev has stopped: the embedded
// broker and registry are gone, and so is a ClickHouse dev started; one
// given with --clickhouse still answers.
func printStopped(w io.Writer, cfg *config.Config, dataDir string, ch *testenv.ClickHouse) {
	fmt.Fprintln(w, "\nstopped.")
	if ch == nil {
		fmt.Fprintf(w, "The embedded Kafka and schema registry stopped with winback; your ClickHouse (--clickhouse) keeps the results:\n")
		port := ""
		if u, err := url.Parse(cfg.ClickHouse.DSN); err == nil {
			port = u.Port()
			if h := u.Hostname(); h != "" && h != "127.0.0.1" && h != "localhost" {
				port += " --host " + h
			}
		}
		printQueries(w, cfg, port)
	} else {
		fmt.Fprintln(w, "The embedded Kafka, schema registry and ClickHouse stopped with winback, so the commands above no longer work.")
	}
	if dataDir != "" {
		fmt.Fprintf(w, "Their data is in %s: start again with the same --data-dir to query it.\n", dataDir)
	} else {
		fmt.Fprintln(w, "They kept their data in memory and a temp dir, now removed. To keep it across runs: --data-dir DIR (with make: make run ARGS=\"--data-dir DIR\").")
	}
}

// topicRecords counts the records in topics (aborted ones and transaction
// markers too): the sum of their end offsets.
func topicRecords(ctx context.Context, brokers []string, topics ...string) (int64, error) {
	adm, err := kadm.NewOptClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, err
	}
	defer adm.Close()
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	var n int64
	ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n, err
}

func printHowTo(w io.Writer, cfg *config.Config, kafkaAddr string, ch *testenv.ClickHouse) {
	port := "9000"
	if ch != nil {
		if _, p, err := net.SplitHostPort(ch.Addr()); err == nil {
			port = p
		}
	}
	fmt.Fprintf(w, "Query the results (while it runs):\n")
	printQueries(w, cfg, port)
	if cfg.TriggerFormat == "json" {
		fmt.Fprintf(w, "Read the triggers:\n  kcat -b %s -C -t %s -o beginning -e\n", kafkaAddr, cfg.Topics.Triggers)
	} else {
		fmt.Fprintf(w, "Read the triggers (Avro, Confluent framed; kcat has no Avro support, so start with --trigger-format json\nto read them as text; with make: make run ARGS=\"--trigger-format json\"):\n  kcat -b %s -C -t %s -o beginning -e -f '%%k %%h\\n'\n", kafkaAddr, cfg.Topics.Triggers)
	}
	fmt.Fprintf(w, "Dead letters, with the reason in headers:\n  kcat -b %s -C -t %s -o beginning -e -f '%%h\\n'\n\n", kafkaAddr, cfg.Topics.DLQ)
}

// printQueries prints clickhouse-client commands for the results; port ""
// leaves the port to the user (their own server).
func printQueries(w io.Writer, cfg *config.Config, port string) {
	db := cfg.ClickHouse.Database
	cc := "clickhouse-client"
	if port != "" {
		cc += " --port " + port
	}
	fmt.Fprintf(w, "  %s --query \"SELECT customer_id, value_tier, round(risk_score,2) AS risk, active_reasons, last_trigger_reason FROM %s.customer_aggregates FINAL WHERE risk_score > 0 ORDER BY clv * risk_score DESC LIMIT 10\"\n", cc, db)
	fmt.Fprintf(w, "  %s --query \"SELECT primary_reason, kind, count() FROM %s.winback_triggers FINAL GROUP BY primary_reason, kind ORDER BY primary_reason\"\n", cc, db)
	fmt.Fprintf(w, "  %s --query \"SELECT * FROM %s.retention_monthly\"\n", cc, db)
}
