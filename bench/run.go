package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/gen"
	"github.com/winback/winback/testenv"
)

// allContenders in the order they run. winback (JSON) runs last: its
// latency probe adds live events to the JSON topics.
var allContenders = []string{"ceiling", "goka-memory", "goka-leveldb", "clickhouse", "winback-avro", "winback"}

var descriptions = map[string]string{
	"ceiling":      "franz-go group consumer, read and discard",
	"goka-memory":  "goka v1.1.12, same aggregation, memory storage",
	"goka-leveldb": "goka v1.1.12, same aggregation, LevelDB storage (default)",
	"clickhouse":   "ClickHouse-only: consume, decode, insert raw rows (100k-row batches)",
	"winback-avro": "winback run, end to end, exactly-once, Avro input",
	"winback":      "winback run, end to end, exactly-once, JSON input",
}

type orchestrator struct {
	log         *slog.Logger
	dir         string
	broker      *broker
	admin       *kgo.Client
	ch          *testenv.ClickHouse
	chPID       int
	gen         *gen.Generator
	winbackBin  string
	rep         *report
	timeout     time.Duration
	stopTimeout time.Duration
	probes      int
	probeRate   float64
	// a CPU profile of each winback run: its first profileSeconds, into profileDir
	profileDir     string
	profileSeconds int
	mu             sync.Mutex
}

func runBench(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	events := fs.Int("events", 1_000_000, "records to generate (about; the generator's days are sized to reach it)")
	customers := fs.Int("customers", 100_000, "customers in the generated stream (at most 999999)")
	out := fs.String("out", "results.json", "JSON results file; the Markdown table goes next to it (.md)")
	seed := fs.Int64("seed", 1, "generator seed")
	partitions := fs.Int("partitions", 6, "partitions of every topic")
	only := fs.String("contenders", strings.Join(allContenders, ","), "comma-separated contenders to run: "+strings.Join(allContenders, ","))
	repo := fs.String("repo", "..", "the winback repository (to build ./cmd/winback)")
	engineSizes := fs.String("engine-customers", "", "customer counts for the in-process engine heap measurement (default: -customers and 10× that, at most 999999; \"none\" to skip)")
	engineDays := fs.Int("engine-days", 28, "days of history fed to the engine per customer in the heap measurement")
	profiles := fs.String("profiles", "", "directory for CPU profiles (default: profiles/ next to -out)")
	probes := fs.Int("latency-probes", 200, "live events sent to winback to measure trigger latency (0: skip)")
	probeRate := fs.Float64("latency-rate", 50, "live events per second in the latency probe")
	restoreLarge := fs.Bool("restore-large", true, "with winback: write the largest engine measurement's customers to a changelog and time a winback restore of them")
	growth := fs.Int64("clickhouse-history", 8, "the ClickHouse peer also times its query over this many copies of the stream's history (1, 2, 4, … up to it), made on the server with INSERT … SELECT")
	profileSeconds := fs.Int("winback-profile-seconds", 8, "seconds of each winback run's CPU profile (profiles/NAME.cpu.pprof; 0: none)")
	keep := fs.Bool("keep", false, "keep the scratch directory (broker data, logs)")
	timeout := fs.Duration("timeout", 15*time.Minute, "longest time one contender may take")
	if err := fs.Parse(args); err != nil {
		return err
	}
	selected := splitList(*only)
	for _, c := range selected {
		if !slices.Contains(allContenders, c) {
			return fmt.Errorf("-contenders: unknown %q; known: %s", c, strings.Join(allContenders, ","))
		}
	}
	want := func(name string) bool { return slices.Contains(selected, name) }
	if *profiles == "" {
		*profiles = filepath.Join(filepath.Dir(*out), "profiles")
	}
	if *probeRate <= 0 {
		return errors.New("-latency-rate must be positive")
	}
	sizes, err := engineCustomerCounts(*engineSizes, *customers)
	if err != nil {
		return err
	}

	dir, err := os.MkdirTemp("", "winback-bench-")
	if err != nil {
		return err
	}
	if *keep {
		log.Info("scratch directory kept", "dir", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	rep := &report{Date: time.Now().UTC(), Machine: describeMachine(), Args: args, Commit: gitCommit(*repo)}
	o := &orchestrator{log: log, dir: dir, rep: rep, timeout: *timeout, stopTimeout: time.Minute, probes: *probes, probeRate: *probeRate,
		profileDir: *profiles, profileSeconds: *profileSeconds}

	jsonTopics := gen.Topics{Orders: "orders", Email: "email-events", Support: "support-events"}
	avroTopics := gen.Topics{Orders: "orders-avro", Email: "email-events-avro", Support: "support-events-avro"}
	wbJSON, wbAvro := outputTopics("json"), outputTopics("avro")
	wbJSON.In, wbAvro.In = jsonTopics, avroTopics
	topics := []string{jsonTopics.Orders, jsonTopics.Email, jsonTopics.Support}
	var compacted []string
	if want("winback-avro") {
		topics = append(topics, avroTopics.Orders, avroTopics.Email, avroTopics.Support, wbAvro.Triggers, wbAvro.DLQ)
		compacted = append(compacted, wbAvro.State)
	}
	if want("winback") {
		topics = append(topics, wbJSON.Triggers, wbJSON.DLQ)
		compacted = append(compacted, wbJSON.State)
	}
	// A synthetic changelog of the largest engine measurement's customers,
	// behind empty input topics, for a restore at that size.
	wbRestore := outputTopics("restore")
	wbRestore.In = gen.Topics{Orders: "orders-restore", Email: "email-events-restore", Support: "support-events-restore"}
	if *restoreLarge && want("winback") {
		topics = append(topics, wbRestore.In.Orders, wbRestore.In.Email, wbRestore.In.Support, wbRestore.Triggers, wbRestore.DLQ)
		compacted = append(compacted, wbRestore.State)
	}

	// Build winback first: a broken build fails fast.
	needCH := want("clickhouse") || want("winback") || want("winback-avro")
	if want("winback") || want("winback-avro") {
		if o.winbackBin, err = buildWinback(ctx, *repo, dir, log); err != nil {
			return err
		}
	}

	b, err := startBroker(ctx, filepath.Join(dir, "kafka"), *partitions, topics, compacted)
	if err != nil {
		return err
	}
	defer b.Close()
	o.broker = b
	if o.admin, err = kgo.NewClient(kgo.SeedBrokers(b.Kafka)); err != nil {
		return err
	}
	defer o.admin.Close()

	days, err := planDays(*events, *customers, *seed)
	if err != nil {
		return err
	}
	if o.gen, err = gen.New(gen.Config{Customers: *customers, Days: days, Seed: *seed}); err != nil {
		return err
	}
	log.Info("producing the stream", "customers", *customers, "days", days)
	var avro *gen.Topics
	if want("winback-avro") {
		avro = &avroTopics
	}
	if rep.Stream, err = produceStream(ctx, b, o.gen, jsonTopics, avro, log); err != nil {
		return err
	}
	log.Info("stream produced", "records", rep.Stream.Records, "took", time.Duration(rep.Stream.ProduceS*float64(time.Second)).Round(time.Millisecond))
	ends, err := endOffsets(ctx, o.admin, jsonTopics.Orders, jsonTopics.Email, jsonTopics.Support)
	if err != nil {
		return err
	}
	expect := sumOffsets(ends)
	if expect != int64(rep.Stream.Records) {
		return fmt.Errorf("the broker holds %d records, the generator produced %d", expect, rep.Stream.Records)
	}

	if needCH {
		if o.ch, err = testenv.StartClickHouse(ctx, testenv.ClickHouseOptions{Dir: filepath.Join(dir, "clickhouse")}); err != nil {
			return err
		}
		defer o.ch.Close()
		o.chPID = childNamed(os.Getpid(), "clickhouse-server")
	}

	fail := func(name string, err error) {
		log.Error("contender failed", "contender", name, "err", err)
		rep.Lines = append(rep.Lines, line{Name: name, What: descriptions[name], Error: firstLine(err.Error())})
		rep.Failures = append(rep.Failures, fmt.Sprintf("%s: %v", name, err))
	}
	from, to := o.gen.Range()
	for _, name := range allContenders {
		if !want(name) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		o.settle(ctx)
		log.Info("running", "contender", name)
		switch name {
		case "winback", "winback-avro":
			t := wbJSON
			if name == "winback-avro" {
				t = wbAvro
			}
			run, err := o.runWinbackE2E(ctx, name, t, name == "winback" && o.probes > 0)
			if err != nil {
				fail(name, err)
				continue
			}
			run.line.What = descriptions[name]
			rep.Lines = append(rep.Lines, run.line)
			rep.Work = append(rep.Work, run.work)
			if name == "winback" {
				r, err := o.measureRestore(ctx, name, "after the end-to-end run", t)
				if err != nil {
					fail(name+" restore", err)
				} else {
					rep.Restores = append(rep.Restores, *r)
				}
			}
		default:
			spec := contenderSpec{
				Name: name, Brokers: b.Kafka, Topics: jsonTopics, Expect: expect, Partitions: *partitions,
				Group: "bench-" + name, Dir: filepath.Join(dir, name),
			}
			if name == "clickhouse" {
				spec.ClickHouseDSN, spec.ClickHousePID, spec.Database, spec.BatchRows = o.ch.DSN(), o.chPID, "bench_peer", 100_000
				spec.HistoryFrom, spec.HistoryTo = from.UnixMilli(), to.UnixMilli()
				spec.Fractions = []float64{0.25, 0.5, 0.75, 1}
				spec.HistoryGrowth = *growth
			}
			b0, s0 := b.CPU(), procCPU(o.chPID)
			cctx, cancel := context.WithTimeout(ctx, *timeout)
			res, u, err := runContenderChild(cctx, spec)
			cancel()
			if err != nil {
				fail(name, err)
				continue
			}
			l := line{Name: name, What: descriptions[name], Events: res.Records, Wall: res.Wall,
				CPU: u.CPU.Seconds(), PeakRSS: res.PeakRSS,
				BrokerCPU: (b.CPU() - b0).Seconds(), ServerCPU: (procCPU(o.chPID) - s0).Seconds()}
			if name == "clickhouse" {
				// The ingest phase only; the queries are reported apart.
				l.Wall, l.CPU, l.ServerCPU = res.IngestWall, res.IngestCPU, res.IngestServerCPU
				rep.Queries = res.Queries
			}
			rep.Lines = append(rep.Lines, l)
		}
	}
	for i := range rep.Lines {
		l := &rep.Lines[i]
		if l.Error == "" && l.Wall > 0 && l.CPU > 0 {
			l.PerSecond, l.PerCore = float64(l.Events)/l.Wall, float64(l.Events)/l.CPU
			l.PerCoreAll = float64(l.Events) / (l.CPU + l.BrokerCPU + l.ServerCPU)
		}
	}
	ratios(rep.Lines)
	rep.Budgets = budgets(rep.Lines, rep.Machine.Cores)

	// The engine alone, in a child process per size.
	for i, n := range sizes {
		spec := contenderSpec{Name: "engine", Customers: n, Days: *engineDays, Seed: *seed, Brokers: b.Kafka, Partitions: *partitions}
		if i == 0 {
			spec.Profile = filepath.Join(*profiles, "engine.cpu.pprof")
		}
		large := i == len(sizes)-1 && *restoreLarge && want("winback") && o.winbackBin != ""
		if large {
			spec.StateTopic = wbRestore.State
		}
		log.Info("measuring the engine", "customers", n, "days", *engineDays)
		res, _, err := runContenderChild(ctx, spec)
		if err != nil {
			rep.Failures = append(rep.Failures, fmt.Sprintf("engine heap at %d customers: %v", n, err))
			continue
		}
		rep.Engine = append(rep.Engine, *res.Engine)
		if large {
			r, err := o.measureRestore(ctx, "restore-synthetic", fmt.Sprintf("synthetic changelog of %d customers (%d days of history each)", res.Customers, *engineDays), wbRestore)
			if err != nil {
				rep.Failures = append(rep.Failures, fmt.Sprintf("restore of %d customers: %v", n, err))
				continue
			}
			rep.Restores = append(rep.Restores, *r)
		}
	}

	rep.Notes = append(rep.Notes,
		"every contender reads the same records from the same broker; the JSON stream is the common input (goka and the ClickHouse peer decode it with encoding/json, winback with its own decoder); winback-avro reads a Confluent-framed Avro copy of the same records",
		"wall s runs from the contender's process start to done (every record processed, state flushed, offsets committed), so it includes the group join; for winback, done is its committed offsets reaching the end offsets (polled every 50 ms), and CPU and peak RSS are read from /proc at that moment",
		"the ClickHouse-only line is its ingest only (consume, decode, insert); its answer costs the query below, each time it is scheduled",
		"goka and the ClickHouse peer count duplicate records twice; winback drops them by event_id",
	)
	return o.finish(*out)
}

// settle waits (at most 30 s) until the broker and ClickHouse are idle,
// below 5% of a core over half a second, so that the work one contender
// left behind (background merges, compaction) is not charged to the next.
func (o *orchestrator) settle(ctx context.Context) {
	busy := func() time.Duration { return o.broker.CPU() + procCPU(o.chPID) }
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c0 := busy()
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
		if d := busy() - c0; d <= 25*time.Millisecond {
			return
		} else {
			o.log.Debug("waiting for the broker and ClickHouse to settle", "cpu_last_500ms", d)
		}
	}
	o.log.Warn("the broker and ClickHouse are still busy after 30 s; going on")
}

// finish prints the report and writes the JSON and Markdown files; it
// returns an error if anything failed.
func (o *orchestrator) finish(out string) error {
	rep := o.rep
	rep.printText(os.Stdout)
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		return err
	}
	md := strings.TrimSuffix(out, filepath.Ext(out)) + ".md"
	if err := os.WriteFile(md, []byte(rep.markdown()), 0o644); err != nil {
		return err
	}
	o.log.Info("wrote results", "json", out, "markdown", md)
	if len(rep.Failures) > 0 {
		return fmt.Errorf("%d failure(s): %s", len(rep.Failures), strings.Join(rep.Failures, "; "))
	}
	return nil
}

func engineCustomerCounts(flagValue string, customers int) ([]int, error) {
	switch flagValue {
	case "none":
		return nil, nil
	case "":
		return []int{customers, min(10*customers, 999_999)}, nil
	}
	var out []int
	for _, s := range splitList(flagValue) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 999_999 {
			return nil, fmt.Errorf("-engine-customers: %q; use counts from 1 to 999999", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
