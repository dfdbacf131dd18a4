package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/winback/winback/config"
	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
	"github.com/winback/winback/pipeline/replay"
)

// winback backtest replays history through the signal engine with no side
// effects (pipeline/replay): no trigger topic, no ClickHouse, no
// changelog, no consumer group. It reads a JSON-lines file
// (gen.WriteJSONL's format, jsonl.go) or the three input topics,
// read_committed, from their start to the last stable offsets they had
// when it started, applies the events with the pipeline's own code
// (pipeline/decode, the pipeline's merge order, one lapse.Engine per task,
// customers assigned to tasks as the input partitions place them) and
// reports, per trigger reason, how many customers came back on their own
// (lapse.Backtest). Bad records are counted by decode reason; a registry
// that stays unreachable stops the backtest. With --partitions equal to
// the topics' partition count (the default) a task's streams are exactly
// the pipeline's; a file has one stream per source, in line order.

// backtestOptions are backtest's own flags.
type backtestOptions struct {
	file        string
	partitions  int
	horizonDays int
	format      string
	now         string
}

func (o *backtestOptions) bind(fs *flag.FlagSet) {
	fs.StringVar(&o.file, "file", "", "replay the JSON-lines file `PATH` (- for standard input; one JSON object per event with its \"topic\", as 'winback gen --out PATH' writes it) instead of the input topics")
	fs.IntVar(&o.partitions, "partitions", 0, "number of tasks customers are spread over, as the pipeline's partitions (default: the orders topic's partition count, or 1 for a file)")
	fs.IntVar(&o.horizonDays, "horizon-days", 30, "a customer who orders within this many days after a trigger counts as returned")
	fs.StringVar(&o.format, "format", "text", "report format: text or json")
	fs.StringVar(&o.now, "now", "", "clock the decoder checks event_time against (events later than it plus decode.max_future_skew are rejected), RFC 3339 or YYYY-MM-DD (default: the current time)")
}

// check validates the flags; errors name the flag.
func (o *backtestOptions) check() (time.Time, error) {
	if o.horizonDays < 1 || o.horizonDays > 3650 {
		return time.Time{}, fmt.Errorf("--horizon-days: %d; use 1 to 3650 days", o.horizonDays)
	}
	if o.format != "text" && o.format != "json" {
		return time.Time{}, fmt.Errorf("--format: %s", oneOf(o.format, "text", "json"))
	}
	if o.partitions < 0 || o.partitions > 10000 {
		return time.Time{}, fmt.Errorf("--partitions: %d; use 1 to 10000, or 0 for the default", o.partitions)
	}
	if o.now == "" {
		return time.Now(), nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.DateOnly} {
		if t, err := time.Parse(layout, o.now); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--now: %q is neither RFC 3339 (2026-03-01T12:00:00Z) nor YYYY-MM-DD", o.now)
}

func cmdBacktest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := config.Default()
	cfg.StartupTimeout = 10 * time.Second // a one-shot command: fail soon
	fs := newFlagSet("backtest", "Replay history (the input topics from the start, or a JSON-lines file) through the\nsignal engine with no side effects, and report per reason how many triggers fired,\nhow many of those customers ordered again within --horizon-days on their own, how\nmany never did, and the priority distribution.", stderr)
	var o backtestOptions
	o.bind(fs)
	if err := loadConfig(fs, args, &cfg); err != nil {
		return err
	}
	if err := noArgs(fs, "give the file with --file"); err != nil {
		return err
	}
	now, err := o.check()
	if err != nil {
		return usageError{err}
	}
	log := newLogger(&cfg, stderr)
	tuneRuntime(cfg.Runtime, log, memlimit.FromCgroup)
	began := time.Now()

	in, err := readInput(ctx, &cfg, &o, now, log)
	if err != nil {
		return err
	}
	log.Info("backtest: input read", "records", in.Total(), "bad", in.BadTotal(), "partitions", in.Parts, "took", time.Since(began).Round(time.Millisecond))
	results, err := in.Replay(ctx, cfg.Lapse, math.MaxInt64, nil)
	if err != nil {
		return err
	}
	out := newBacktestOutput(in, results, o.horizonDays)
	log.Info("backtest: done", "events", out.Events, "customers", out.Customers, "triggers", out.Triggers, "took", time.Since(began).Round(time.Millisecond))
	if o.format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	_, err = io.WriteString(stdout, out.text())
	return err
}

// readInput reads the history to replay: the file of --file, or the input
// topics.
func readInput(ctx context.Context, cfg *config.Config, o *backtestOptions, now time.Time, log *slog.Logger) (*replay.Input, error) {
	if o.file != "" {
		return backtestFile(ctx, cfg, o, now, log)
	}
	return backtestTopics(ctx, cfg, o, now, log)
}

// reasonUnroutable counts file lines that name no input topic.
const reasonUnroutable = "jsonl.unroutable"

func backtestFile(ctx context.Context, cfg *config.Config, o *backtestOptions, now time.Time, log *slog.Logger) (*replay.Input, error) {
	parts := o.partitions
	if parts == 0 {
		parts = 1
	}
	in := replay.NewInput("file:"+o.file, parts)
	dec := decode.NewDecoder(nil, decode.Options{Now: func() time.Time { return now }, MaxValueBytes: cfg.MaxValueBytes, MaxFutureSkew: cfg.Decode.MaxFutureSkew})
	topics := gen.Topics{Orders: cfg.Topics.Orders, Email: cfg.Topics.Email, Support: cfg.Topics.Support}
	names := topics.Kinds()
	var ev event.Event
	record := 0
	var first string // the first bad record, for a file with no good one
	// Lines dated before an earlier line of the same topic, and the
	// first of them: the file is not in time order.
	var latest [event.KindSupport + 1]int64
	behind, firstBehind := 0, 0
	err := readJSONLFile(o.file, topics, func(k event.Kind, key, value []byte) error {
		record++
		if record%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		in.Records[names[k]]++
		if err := dec.Decode(ctx, k, key, value, &ev); err != nil {
			if first == "" {
				first = fmt.Sprintf("record %d: %v", record, err)
			}
			return in.Reject(fmt.Sprintf("%s: record %d", o.file, record), err)
		}
		if ev.Time < latest[k] {
			if behind++; behind == 1 {
				firstBehind = record
			}
		}
		latest[k] = max(latest[k], ev.Time)
		in.Add(lapse.SourceOf(k), 0, &ev)
		return nil
	}, func(je *gen.JSONLError) {
		if first == "" {
			first = fmt.Sprintf("line %d: %s", je.Line, je.Msg)
		}
		in.Records["(unroutable)"]++
		in.Bad[reasonUnroutable]++
	})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, usageError{fmt.Errorf("--file: %w", err)}
		}
		return nil, err
	}
	if behind > 0 {
		log.Warn("the file is not in time order: the replay applies each topic's lines in file order, as the pipeline applies a topic's records, so an event dated before what its partition's replay has reached (less lapse.allowed_lateness) counts as late and fires no trigger the engine has moved past; sort the lines by event_time to replay history as it happened",
			"file", o.file, "lines_out_of_order", behind, "first_at_record", firstBehind) // lines dated before an earlier line of their topic
	}
	switch {
	case in.Total() == 0:
		return nil, fmt.Errorf("%s has no events (one JSON object per event, with its \"topic\", as 'winback gen --out FILE' writes)", o.file)
	case in.Events == 0:
		return nil, fmt.Errorf("%s: none of its %d records is a valid event; the first: %s", o.file, in.Total(), first)
	}
	return in, nil
}

// stallTimeout is how long the topic reader waits for any record before it
// gives up on partitions short of their end offset.
const stallTimeout = 30 * time.Second

func backtestTopics(ctx context.Context, cfg *config.Config, o *backtestOptions, now time.Time, log *slog.Logger) (*replay.Input, error) {
	kopts, err := kafkaOpts(cfg, log)
	if err != nil {
		return nil, usageError{err}
	}
	if err := checkKafka(ctx, cfg, kopts); err != nil {
		return nil, err
	}
	src, err := registryClient(cfg)
	if err != nil {
		return nil, usageError{fmt.Errorf("--registry-url: %w", err)}
	}
	dec := decode.NewDecoder(decode.SchemaRegistry(src), decode.Options{
		Now:           func() time.Time { return now },
		MaxValueBytes: cfg.MaxValueBytes,
		MaxFutureSkew: cfg.Decode.MaxFutureSkew,
		RegistryRetry: cfg.Registry.Retry,
		Logger:        log.With("component", "decode"),
	})
	t := cfg.Topics
	topics := []replay.Topic{{Name: t.Orders, Kind: event.KindOrder}, {Name: t.Email, Kind: event.KindEmail}, {Name: t.Support, Kind: event.KindSupport}}
	return replay.ReadTopics(ctx, kopts, topics, dec, o.partitions, stallTimeout, log)
}

// newBacktestOutput builds the report from the replay's results.
func newBacktestOutput(in *replay.Input, results []replay.Result, horizonDays int) *backtestOutput {
	var bt lapse.Backtest
	out := &backtestOutput{
		Source:      in.Source,
		Partitions:  in.Parts,
		HorizonDays: horizonDays,
		Records:     in.Records,
		BadRecords:  in.Bad,
		BadTotal:    in.BadTotal(),
	}
	if in.Events > 0 {
		out.From, out.To = isoMs(in.First), isoMs(in.Last)
	}
	for i := range results {
		r := &results[i]
		for j := range r.Triggers {
			bt.ObserveTrigger(&r.Triggers[j])
		}
		for _, ev := range r.Orders {
			bt.ObserveOrder(ev)
		}
		out.Events += r.Stats.Events
		out.Duplicates += r.Stats.Duplicates
		out.Late += r.Stats.Late
		out.Customers += r.Stats.Customers
	}
	rep := bt.Report(horizonDays)
	out.Triggers, out.Recovered = rep.All.Fired, rep.Recovered
	out.Reasons = []btReason{}
	for _, r := range rep.Reasons {
		out.Reasons = append(out.Reasons, newBTReason(r))
	}
	out.All = newBTReason(rep.All)
	for i, n := range rep.Priority {
		p := btPriority{From: 10*i + 1, To: 10*i + 10, Triggers: n}
		if rep.All.Fired > 0 {
			p.Share = float64(n) / float64(rep.All.Fired)
		}
		out.Priority = append(out.Priority, p)
	}
	out.report = rep
	return out
}

// backtestOutput is the report, as --format json prints it.
type backtestOutput struct {
	Source      string `json:"source"`
	Partitions  int    `json:"partitions"`
	HorizonDays int    `json:"horizon_days"`
	// From and To bound the event times of the valid events.
	From string `json:"from"`
	To   string `json:"to"`
	// Records counts the input records read, by topic.
	Records map[string]int `json:"records"`
	// Events counts the valid events applied (duplicates included).
	Events     uint64 `json:"events"`
	Duplicates uint64 `json:"duplicates"`
	Late       uint64 `json:"late"`
	Customers  int    `json:"customers"`
	// BadRecords counts records that failed to decode, by reason.
	BadRecords map[string]int `json:"bad_records"`
	BadTotal   int            `json:"bad_records_total"`
	// Triggers counts WINBACK triggers; Recovered RECOVERED ones.
	Triggers  int          `json:"triggers"`
	Recovered int          `json:"recovered"`
	Reasons   []btReason   `json:"reasons"`
	All       btReason     `json:"all"`
	Priority  []btPriority `json:"priority"`

	report lapse.BacktestReport
}

// btReason is one row of the report: the WINBACK triggers whose primary
// reason is Reason ("" for all of them).
type btReason struct {
	Reason string `json:"reason,omitempty"`
	Fired  int    `json:"fired"`
	// Returned counts triggers followed by an order within the horizon.
	Returned      int     `json:"returned"`
	ReturnedShare float64 `json:"returned_share"`
	// NeverReturned counts triggers with no order after them at all.
	NeverReturned      int     `json:"never_returned"`
	NeverReturnedShare float64 `json:"never_returned_share"`
	MedianDaysToReturn float64 `json:"median_days_to_return"`
	// NotYetJudged counts never-returned triggers whose horizon runs past
	// the end of the data.
	NotYetJudged int `json:"not_yet_judged"`
}

func newBTReason(r lapse.ReasonReport) btReason {
	return btReason{
		Reason:             string(r.Reason),
		Fired:              r.Fired,
		Returned:           r.Returned,
		ReturnedShare:      r.ReturnedShare,
		NeverReturned:      r.NeverReturned,
		NeverReturnedShare: r.NeverReturnedShare,
		MedianDaysToReturn: r.MedianDaysToReturn,
		NotYetJudged:       r.Open,
	}
}

// btPriority counts WINBACK triggers with a priority in [From, To].
type btPriority struct {
	From     int     `json:"from"`
	To       int     `json:"to"`
	Triggers int     `json:"triggers"`
	Share    float64 `json:"share"`
}

func (o *backtestOutput) text() string {
	var b strings.Builder
	span := "no events"
	if o.From != "" {
		span = "events " + o.From + " to " + o.To
	}
	fmt.Fprintf(&b, "Input: %s, %d partitions, %s\n", o.Source, o.Partitions, span)
	fmt.Fprintf(&b, "Records read: %s\n", countList(o.Records))
	fmt.Fprintf(&b, "Events applied: %d (%d duplicates, %d late); customers: %d\n", o.Events, o.Duplicates, o.Late, o.Customers)
	fmt.Fprintf(&b, "Bad records: %d", o.BadTotal)
	if o.BadTotal > 0 {
		fmt.Fprintf(&b, " (%s)", countList(o.BadRecords))
	}
	fmt.Fprintf(&b, "\nTriggers: %d WINBACK, %d RECOVERED\n\n", o.Triggers, o.Recovered)
	b.WriteString(o.report.String())
	return b.String()
}

// countList renders counts as "a 3, b 1", by name.
func countList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func isoMs(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano) }
