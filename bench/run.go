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
	"clickhouse":   "ClickHouse-only: consume, decode, insert raw rows (100k-row batches), and the lapse query every minute of ingest (at least once)",
	"winback-avro": "winback run, end to end, exactly-once, Avro input, one run per commit interval",
	"winback":      "winback run, end to end, exactly-once, JSON input, default commit interval",
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
	// winback settings of the end-to-end runs (0: winback's defaults)
	maxPollRecords, batchRows int
	// probesUsed counts the probe customers used so far: each run's
	// probes go to customers no earlier probe touched.
	probesUsed int
	// emailEvery: only every emailEvery-th customer receives e-mail
	emailEvery int
	mu         sync.Mutex
}

func runBench(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	events := fs.Int("events", 4_000_000, "records to generate, about: the share of customers who receive marketing e-mail is sized to reach it (orders and tickets are all kept)")
	customers := fs.Int("customers", 100_000, "customers in the generated stream (at most 999999)")
	days := fs.Int("days", 365, "days of event time the stream spans")
	emailEvery := fs.Int("email-every", 0, "only every Nth customer receives marketing e-mail (0: sized from -events; 1: everyone)")
	intervals := fs.String("commit-intervals", "100ms,1s,10s", "commit intervals of the winback-avro runs, one end-to-end run each (comma-separated durations)")
	maxPoll := fs.Int("max-poll-records", 0, "winback's max_poll_records in the end-to-end runs (0: winback's default)")
	batchRows := fs.Int("clickhouse-batch-rows", 0, "winback's clickhouse batch_rows in the end-to-end runs (0: winback's default)")
	schedule := fs.Duration("clickhouse-schedule", time.Minute, "the ClickHouse-only peer runs its lapse query this often during its ingest (wall time), and once at the end")
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
	growth := fs.Int64("clickhouse-history", 4, "the ClickHouse peer also times its query over this many copies of the stream's history (1, 2, 4, … up to it), made on the server with INSERT … SELECT")
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
	sweep, err := parseIntervals(*intervals)
	if err != nil {
		return err
	}
	if *days < 1 || *emailEvery < 0 || *maxPoll < 0 || *batchRows < 0 || *schedule <= 0 {
		return errors.New("-days and -clickhouse-schedule must be positive; -email-every, -max-poll-records and -clickhouse-batch-rows at least 0")
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
		profileDir: *profiles, profileSeconds: *profileSeconds, maxPollRecords: *maxPoll, batchRows: *batchRows}

	jsonTopics := gen.Topics{Orders: "orders", Email: "email-events", Support: "support-events"}
	avroTopics := gen.Topics{Orders: "orders-avro", Email: "email-events-avro", Support: "support-events-avro"}
	wbJSON := outputTopics("json")
	wbJSON.In = jsonTopics
	// One set of output topics per commit interval, so that no run
	// restores another's state.
	wbAvro := make([]winbackTopics, len(sweep))
	topics := []string{jsonTopics.Orders, jsonTopics.Email, jsonTopics.Support}
	var compacted []string
	if want("winback-avro") {
		topics = append(topics, avroTopics.Orders, avroTopics.Email, avroTopics.Support)
		for i, d := range sweep {
			wbAvro[i] = outputTopics("avro-" + d.String())
			wbAvro[i].In = avroTopics
			topics = append(topics, wbAvro[i].Triggers, wbAvro[i].DLQ)
			compacted = append(compacted, wbAvro[i].State)
		}
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

	every, estimate := *emailEvery, 0
	if every == 0 {
		if every, estimate, err = planEmail(*events, *customers, *days, *seed); err != nil {
			return err
		}
	}
	o.emailEvery = every
	if o.gen, err = gen.New(genConfig(*customers, *days, *seed)); err != nil {
		return err
	}
	log.Info("producing the stream", "customers", *customers, "days", *days, "email_every", every, "estimated_records", estimate)
	var avro *gen.Topics
	if want("winback-avro") {
		avro = &avroTopics
	}
	if rep.Stream, err = produceStream(ctx, b, o.gen, every, jsonTopics, avro, log); err != nil {
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
		base, _, _ := strings.Cut(name, "@")
		rep.Lines = append(rep.Lines, line{Name: name, What: descriptions[base], Error: firstLine(err.Error())})
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
		case "winback-avro":
			for i, d := range sweep {
				run := name + "@" + d.String()
				if i > 0 {
					o.settle(ctx)
				}
				log.Info("running", "contender", run, "commit_interval", d)
				r, err := o.runWinbackE2E(ctx, run, wbAvro[i], d, o.probes > 0)
				if err != nil {
					fail(run, err)
					continue
				}
				r.line.What = descriptions[name]
				rep.Lines = append(rep.Lines, r.line)
				rep.Work = append(rep.Work, r.work)
			}
		case "winback":
			t := wbJSON
			run, err := o.runWinbackE2E(ctx, name, t, 0, o.probes > 0)
			if err != nil {
				fail(name, err)
				continue
			}
			run.line.What = descriptions[name]
			rep.Lines = append(rep.Lines, run.line)
			rep.Work = append(rep.Work, run.work)
			rep.Latency = run.work.Latency
			r, err := o.measureRestore(ctx, name, "after the end-to-end run", t)
			if err != nil {
				fail(name+" restore", err)
			} else {
				rep.Restores = append(rep.Restores, *r)
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
				spec.Schedule = *schedule
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
				// The ingest phase with its scheduled lapse queries; the
				// queries over a growing history are reported apart.
				l.Wall, l.CPU, l.ServerCPU = res.IngestWall, res.IngestCPU, res.IngestServerCPU
				rep.Queries, rep.Scheduled, rep.ScheduleS = res.Queries, res.Scheduled, schedule.Seconds()
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
		"wall s runs from the contender's process start to done (every record processed, state flushed, offsets committed), so it includes the group join; for winback, done is its committed offsets reaching the end offsets (polled every 50 ms) and then ClickHouse having confirmed its rows (no rows pending or unconfirmed in /metrics), and CPU and peak RSS are read from /proc at that moment",
		fmt.Sprintf("the ClickHouse-only line is its ingest (consume, decode, insert) plus its lapse query, run every %s of the ingest's wall time and once at the end, as a BI job on a schedule would; the queries over a growing history below are not charged to it", *schedule),
		fmt.Sprintf("the stream spans %d days of event time; marketing e-mail goes to 1 in %d customers (by id), so that a year of %d customers is about %d records (the generator mails every subscriber twice a week: e-mail would otherwise be 9 of every 10 records)", *days, every, *customers, rep.Stream.Records),
		"each winback-avro@INTERVAL line is a fresh winback run (own group, output topics and ClickHouse database) over the same Avro records with that commit_interval; the latency probes of earlier runs (e-mail unsubscribes, a few hundred records with event times up to a few minutes after the stream's end) are in the input of later ones, and by moving event time on they can let a later run fire a few more triggers",
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

// parseIntervals parses the -commit-intervals list.
func parseIntervals(s string) ([]time.Duration, error) {
	var out []time.Duration
	for _, f := range splitList(s) {
		d, err := time.ParseDuration(f)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("-commit-intervals: %q; use positive durations such as 100ms,1s,10s", f)
		}
		if slices.Contains(out, d) {
			return nil, fmt.Errorf("-commit-intervals: %s twice", d)
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, errors.New("-commit-intervals: none given")
	}
	return out, nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
