package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/winback/winback/config"
	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/btyd"
	"github.com/winback/winback/pipeline/consume"
	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
)

// winback backtest replays history through the signal engine with no side
// effects: no trigger topic, no ClickHouse, no changelog, no consumer
// group. It reads a JSON-lines file (gen.WriteJSONL's format) or the three
// input topics, read_committed, from their start to the last stable offsets
// they had when it started, applies the events with the pipeline's own code (pipeline/decode,
// one lapse.Engine per task, customers assigned to tasks with
// consume.PartitionOf) and reports, per trigger reason, how many customers
// came back on their own (lapse.Backtest). Bad records are counted by
// decode reason; a registry that stays unreachable stops the backtest.
//
// Order of application. The pipeline merges a task's input partitions by
// event time (consume/merge.go: the head with the smallest event time goes
// first, ties to the lower source, each partition in offset order). The
// backtest reads everything first and then runs the same merge over the
// task's streams, one stream per (source, input partition); a file has one
// stream per source, in line order. With --partitions equal to the topics'
// partition count (the default) a task's streams are exactly the
// pipeline's. The wall clock is the event time of the event being applied
// (never going backwards), so idle timeouts run in event time; after the
// last event each task is advanced with a clock idle_timeout past the
// newest event, so the sources go idle and every timer due by the last
// event (less the allowed lateness) fires.
//
// Memory. Every decoded event is held until its task has run: about 300
// to 400 bytes per event (an event.Event and its strings), plus the
// engines (about 370 bytes per customer). A year of 2000 customers (about
// 550 000 events) needs roughly 250 MB.

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
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q; give the file with --file", fs.Arg(0))}
	}
	now, err := o.check()
	if err != nil {
		return usageError{err}
	}
	log := newLogger(&cfg, stderr)
	began := time.Now()

	var bt *backtestRun
	if o.file != "" {
		bt, err = backtestFile(ctx, &cfg, &o, now)
	} else {
		bt, err = backtestTopics(ctx, &cfg, &o, now, log)
	}
	if err != nil {
		return err
	}
	log.Info("backtest: input read", "records", bt.total(), "bad", bt.badTotal(), "partitions", bt.parts, "took", time.Since(began).Round(time.Millisecond))
	out, err := bt.run(ctx, cfg.Lapse, o.horizonDays)
	if err != nil {
		return err
	}
	log.Info("backtest: done", "events", out.Events, "customers", out.Customers, "triggers", out.Triggers, "took", time.Since(began).Round(time.Millisecond))
	if o.format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	_, err = io.WriteString(stdout, out.text())
	return err
}

// btStream is one input partition's (or a file's source's) events of one
// task, in input order.
type btStream struct {
	src  int
	part int32
	evs  []event.Event
}

type btTask struct {
	streams []*btStream
}

func (t *btTask) stream(src int, part int32) *btStream {
	for _, s := range t.streams {
		if s.src == src && s.part == part {
			return s
		}
	}
	s := &btStream{src: src, part: part}
	t.streams = append(t.streams, s)
	return s
}

// backtestRun holds the input, read and decoded, by task.
type backtestRun struct {
	source  string
	parts   int
	tasks   []btTask
	records map[string]int // input records read, by topic
	bad     map[string]int // bad records, by reason
	first   int64          // event time range of the valid events, Unix ms
	last    int64
	events  int
	// taskOf caches consume.PartitionOf, which builds a partitioner (and
	// seeds a random source) on every call.
	taskOf map[string]int32
	// until stops the replay at this event time (Unix ms; evaluate's
	// cutoff): events at or after it are not applied, and their placed
	// orders are kept in btTaskResult.after. MaxInt64 replays everything.
	until int64
	// model, if set, is handed to every engine before the replay.
	model *btyd.Params
}

func newBacktestRun(source string, partitions int) *backtestRun {
	return &backtestRun{
		source:  source,
		parts:   partitions,
		tasks:   make([]btTask, partitions),
		records: map[string]int{},
		bad:     map[string]int{},
		first:   1<<63 - 1,
		last:    -1 << 63,
		taskOf:  map[string]int32{},
		until:   1<<63 - 1,
	}
}

// add routes a decoded event to its customer's task.
func (b *backtestRun) add(src int, part int32, ev *event.Event) {
	p, ok := b.taskOf[ev.CustomerID]
	if !ok {
		p = consume.PartitionOf(ev.CustomerID, b.parts)
		b.taskOf[ev.CustomerID] = p
	}
	s := b.tasks[p].stream(src, part)
	s.evs = append(s.evs, *ev)
	b.first = min(b.first, ev.Time)
	b.last = max(b.last, ev.Time)
	b.events++
}

// decodeErr counts a bad record; transient failures (the registry is
// down) are returned, since the record may well be fine.
func (b *backtestRun) decodeErr(where string, err error) error {
	reason, ok := decode.ReasonOf(err)
	if !ok {
		return fmt.Errorf("%s: %w", where, err)
	}
	if reason.Transient() {
		return fmt.Errorf("%s: %w (the backtest stops rather than count a possibly good record as bad)", where, err)
	}
	b.bad[string(reason)]++
	return nil
}

func (b *backtestRun) total() int {
	n := 0
	for _, c := range b.records {
		n += c
	}
	return n
}

func (b *backtestRun) badTotal() int {
	n := 0
	for _, c := range b.bad {
		n += c
	}
	return n
}

// reasonUnroutable counts file lines that name no input topic.
const reasonUnroutable = "jsonl.unroutable"

func backtestFile(ctx context.Context, cfg *config.Config, o *backtestOptions, now time.Time) (*backtestRun, error) {
	parts := o.partitions
	if parts == 0 {
		parts = 1
	}
	bt := newBacktestRun("file:"+o.file, parts)
	dec := decode.NewDecoder(nil, decode.Options{Now: func() time.Time { return now }, MaxValueBytes: cfg.MaxValueBytes, MaxFutureSkew: cfg.Decode.MaxFutureSkew})
	topics := gen.Topics{Orders: cfg.Topics.Orders, Email: cfg.Topics.Email, Support: cfg.Topics.Support}
	names := topics.Kinds()
	var ev event.Event
	record := 0
	var first string // the first bad record, for a file with no good one
	err := readJSONLFile(o.file, topics, func(k event.Kind, key, value []byte) error {
		record++
		if record%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		bt.records[names[k]]++
		if err := dec.Decode(ctx, k, key, value, &ev); err != nil {
			if first == "" {
				first = fmt.Sprintf("record %d: %v", record, err)
			}
			return bt.decodeErr(fmt.Sprintf("%s: record %d", o.file, record), err)
		}
		bt.add(lapse.SourceOf(k), 0, &ev)
		return nil
	}, func(je *gen.JSONLError) {
		if first == "" {
			first = fmt.Sprintf("line %d: %s", je.Line, je.Msg)
		}
		bt.records["(unroutable)"]++
		bt.bad[reasonUnroutable]++
	})
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, usageError{fmt.Errorf("--file: %w", err)}
		}
		return nil, err
	}
	switch {
	case bt.total() == 0:
		return nil, fmt.Errorf("%s has no events (one JSON object per event, with its \"topic\", as 'winback gen --out FILE' writes)", o.file)
	case bt.events == 0:
		return nil, fmt.Errorf("%s: none of its %d records is a valid event; the first: %s", o.file, bt.total(), first)
	}
	return bt, nil
}

// readJSONLFile reads the JSON values in path ("-": standard input), one
// event each, and calls fn with each event's kind (from its "topic"
// field), key (its customer_id) and value (the object, compacted), in file
// order. Any valid JSON is read: any spacing, any key order, one value per
// line or pretty-printed over several lines. A value that is not JSON, not
// an object, or names no input topic is passed to unroutable (with the
// line it starts on) and reading goes on after it. fn must not keep key or
// value. backtest and evaluate share it.
func readJSONLFile(path string, topics gen.Topics, fn func(k event.Kind, key, value []byte) error, unroutable func(*gen.JSONLError)) error {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	if err := readJSONL(r, topics, fn, unroutable); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// maxJSONValue bounds one value (a line, or the lines of a pretty-printed
// value).
const maxJSONValue = 1 << 20

// maxJSONValueLines bounds the lines of one value: each new line of an
// unfinished value parses it again from its start.
const maxJSONValueLines = 1000

// readJSONL is readJSONLFile on a reader. It reads line by line and keeps
// the lines of a value that is not complete yet; a value found to be
// broken is reported at its first line and reading resumes on the next
// line, so one bad line costs only itself.
func readJSONL(r io.Reader, topics gen.Topics, fn func(k event.Kind, key, value []byte) error, unroutable func(*gen.JSONLError)) error {
	kinds := map[string]event.Kind{}
	var names []string
	for k, t := range topics.Kinds() {
		kinds[t] = k
		names = append(names, t)
	}
	sort.Strings(names)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxJSONValue)
	var (
		pending   []byte // lines not yet consumed, each ending in \n
		startLine = 1    // line number of pending[0]
		compact   bytes.Buffer
	)
	lineOf := func(off int) int { return startLine + bytes.Count(pending[:off], []byte{'\n'}) }
	// drop removes pending[:off] (which ends at a line start).
	drop := func(off int) {
		startLine = lineOf(off)
		pending = append(pending[:0], pending[off:]...)
	}
	emit := func(line int, raw []byte) error {
		env, ok := envelopeOf(raw)
		switch {
		case !ok:
			unroutable(&gen.JSONLError{Line: line, Msg: fmt.Sprintf("not a JSON object (starts with %q)", truncateBytes(raw, 16))})
			return nil
		case env.topic == nil:
			unroutable(&gen.JSONLError{Line: line, Msg: "no \"topic\" field (a string); each event names its input topic: " + strings.Join(names, ", ")})
			return nil
		}
		k, ok := kinds[string(env.topic)]
		if !ok {
			msg := fmt.Sprintf("unknown topic %q; the input topics are %s", env.topic, strings.Join(names, ", "))
			if s := config.Suggest(string(env.topic), names); s != "" {
				msg += "; did you mean " + s + "?"
			}
			unroutable(&gen.JSONLError{Line: line, Msg: msg})
			return nil
		}
		key := env.customerID
		if bytes.IndexAny(raw, " \t\r\n") < 0 {
			return fn(k, key, raw) // compact already (as gen writes it)
		}
		compact.Reset()
		if err := json.Compact(&compact, raw); err != nil {
			return err // cannot happen: raw was decoded
		}
		return fn(k, key, compact.Bytes())
	}
	// scan consumes every complete value in pending; more tells whether
	// more lines may follow.
	scan := func(more bool) error {
		for {
			off := skipJSONSpace(pending, 0)
			if off == len(pending) {
				pending, startLine = pending[:0], startLine+bytes.Count(pending, []byte{'\n'})
				return nil
			}
			dec := json.NewDecoder(bytes.NewReader(pending[off:]))
			var raw json.RawMessage
			err := dec.Decode(&raw)
			switch {
			case err == nil:
				end := off + int(dec.InputOffset())
				if err := emit(lineOf(off), raw); err != nil {
					return err
				}
				// Keep the rest of the line (another value may follow).
				startLine = lineOf(end)
				pending = append(pending[:0], pending[end:]...)
				continue
			case errors.Is(err, io.ErrUnexpectedEOF) && more && len(pending) < maxJSONValue &&
				bytes.Count(pending[off:], []byte{'\n'}) < maxJSONValueLines:
				drop(lineStart(pending, off))
				return nil // the value goes on on the next line
			}
			// Broken: report it at its first line and resume on the next.
			msg := "not valid JSON: " + err.Error()
			if errors.Is(err, io.ErrUnexpectedEOF) {
				msg = "not valid JSON: the value is not closed"
				if more {
					msg = fmt.Sprintf("not valid JSON: the value is not closed within %d lines or %d bytes", maxJSONValueLines, maxJSONValue)
				}
			}
			unroutable(&gen.JSONLError{Line: lineOf(off), Msg: msg})
			nl := bytes.IndexByte(pending[off:], '\n')
			if nl < 0 {
				pending, startLine = pending[:0], lineOf(len(pending))
				return nil
			}
			drop(off + nl + 1)
		}
	}
	for sc.Scan() {
		// The common case, one whole value on its own line, skips the
		// decoder.
		if line := bytes.TrimSpace(sc.Bytes()); len(pending) == 0 && len(line) > 0 && line[0] == '{' && json.Valid(line) {
			if err := emit(startLine, line); err != nil {
				return err
			}
			startLine++
			continue
		}
		pending = append(pending, sc.Bytes()...)
		pending = append(pending, '\n')
		if err := scan(true); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("line %d is longer than %d bytes", startLine+bytes.Count(pending, []byte{'\n'}), maxJSONValue)
		}
		return err
	}
	return scan(false)
}

// envelope is what routing needs of an event: its top-level "topic" and
// "customer_id" strings (nil when absent or not strings).
type envelope struct {
	topic, customerID []byte
}

// envelopeOf reads the top-level "topic" and "customer_id" of raw, a
// valid JSON value, without decoding the rest; ok is false when raw is not
// an object. A string with escapes is unquoted (allocating); the plain
// ones point into raw.
func envelopeOf(raw []byte) (env envelope, ok bool) {
	i := skipJSONSpace(raw, 0)
	if i == len(raw) || raw[i] != '{' {
		return env, false
	}
	i++
	for {
		i = skipJSONSpace(raw, i)
		if i >= len(raw) || raw[i] == '}' {
			return env, true
		}
		if raw[i] == ',' {
			i++
			continue
		}
		key, next := jsonString(raw, i)
		i = skipJSONSpace(raw, next)
		i = skipJSONSpace(raw, i+1) // the colon
		end := skipJSONValue(raw, i)
		if raw[i] == '"' && (string(key) == "topic" || string(key) == "customer_id") {
			v, _ := jsonString(raw, i)
			if string(key) == "topic" {
				env.topic = v
			} else {
				env.customerID = v
			}
		}
		i = end
	}
}

// jsonString reads the string starting at raw[i] (a '"'), unquoted, and
// returns it with the offset after it.
func jsonString(raw []byte, i int) ([]byte, int) {
	end := skipJSONString(raw, i)
	s := raw[i+1 : end-1]
	if bytes.IndexByte(s, '\\') < 0 {
		return s, end
	}
	var u string
	if err := json.Unmarshal(raw[i:end], &u); err != nil {
		return nil, end
	}
	return []byte(u), end
}

// skipJSONString returns the offset after the string starting at raw[i].
func skipJSONString(raw []byte, i int) int {
	for j := i + 1; j < len(raw); j++ {
		switch raw[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(raw)
}

// skipJSONValue returns the offset after the valid JSON value at raw[i]
// (a scalar ends at the next ',' or '}' of its object).
func skipJSONValue(raw []byte, i int) int {
	depth := 0
	for i < len(raw) {
		switch raw[i] {
		case '"':
			i = skipJSONString(raw, i)
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}

// truncateBytes cuts b to n bytes for a message.
func truncateBytes(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// lineStart is the offset of the start of the line holding off.
func lineStart(b []byte, off int) int {
	return bytes.LastIndexByte(b[:off], '\n') + 1
}

// stallTimeout is how long the topic reader waits for any record before it
// gives up on partitions short of their end offset.
const stallTimeout = 30 * time.Second

func backtestTopics(ctx context.Context, cfg *config.Config, o *backtestOptions, now time.Time, log *slog.Logger) (*backtestRun, error) {
	kopts, err := kafkaOpts(cfg, log)
	if err != nil {
		return nil, usageError{err}
	}
	t := cfg.Topics
	topics := []string{t.Orders, t.Email, t.Support}
	kinds := map[string]event.Kind{t.Orders: event.KindOrder, t.Email: event.KindEmail, t.Support: event.KindSupport}

	if err := checkKafka(ctx, cfg, kopts); err != nil {
		return nil, err
	}
	adm, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	defer adm.Close()
	ka := kadm.NewClient(adm)
	starts, err := ka.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %s: %w", strings.Join(topics, ", "), err)
	}
	// read_committed can read up to the last stable offset (the high
	// watermark when no transaction is open); the end is fixed now.
	ends, err := ka.ListCommittedOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", strings.Join(topics, ", "), err)
	}
	parts := o.partitions
	if parts == 0 {
		parts = len(ends[t.Orders])
		if parts == 0 {
			return nil, fmt.Errorf("topic %s has no partitions (set --topics-orders)", t.Orders)
		}
	}

	type tp struct {
		topic string
		part  int32
	}
	end := map[tp]int64{}
	consumeFrom := map[string]map[int32]kgo.Offset{}
	ends.Each(func(lo kadm.ListedOffset) {
		st, _ := starts.Lookup(lo.Topic, lo.Partition)
		if lo.Offset <= st.Offset {
			return // empty
		}
		end[tp{lo.Topic, lo.Partition}] = lo.Offset
		if consumeFrom[lo.Topic] == nil {
			consumeFrom[lo.Topic] = map[int32]kgo.Offset{}
		}
		consumeFrom[lo.Topic][lo.Partition] = kgo.NewOffset().AtStart()
	})

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
	bt := newBacktestRun("kafka:"+strings.Join(topics, ","), parts)
	if len(end) == 0 {
		return bt, nil
	}
	cl, err := kgo.NewClient(append(kopts,
		kgo.ConsumePartitions(consumeFrom),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records are kept so that a partition whose last offset
		// before the end is a transaction marker is seen to be done.
		kgo.KeepControlRecords(),
	)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	defer cl.Close()

	var ev event.Event
	last := map[tp]int64{}
	read := 0
	for len(end) > 0 {
		pctx, cancel := context.WithTimeout(ctx, stallTimeout)
		fetches := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if pctx.Err() != nil && fetches.NumRecords() == 0 {
			var short []string
			for k, e := range end {
				short = append(short, fmt.Sprintf("%s/%d at %d of %d", k.topic, k.part, last[k], e))
			}
			sort.Strings(short)
			return nil, fmt.Errorf("no records for %s while partitions were short of their end offsets: %s", stallTimeout, strings.Join(short, "; "))
		}
		var ferr error
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) && ferr == nil {
				ferr = fmt.Errorf("fetch %s/%d: %w", topic, p, err)
			}
		})
		if ferr != nil {
			return nil, ferr
		}
		var derr error
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			k := tp{fp.Topic, fp.Partition}
			e, ok := end[k]
			if !ok || derr != nil {
				return
			}
			for _, rec := range fp.Records {
				if rec.Offset >= e {
					break
				}
				last[k] = rec.Offset
				if rec.Attrs.IsControl() {
					continue
				}
				bt.records[rec.Topic]++
				if err := dec.Decode(ctx, kinds[rec.Topic], rec.Key, rec.Value, &ev); err != nil {
					if derr = bt.decodeErr(fmt.Sprintf("%s/%d@%d", rec.Topic, rec.Partition, rec.Offset), err); derr != nil {
						return
					}
					continue
				}
				bt.add(lapse.SourceOf(kinds[rec.Topic]), rec.Partition, &ev)
			}
			if n := len(fp.Records); n > 0 && fp.Records[n-1].Offset >= e-1 {
				delete(end, k)
				cl.PauseFetchPartitions(map[string][]int32{k.topic: {k.part}})
			}
		})
		if derr != nil {
			return nil, derr
		}
		if n := bt.total(); n/100000 != read/100000 {
			log.Info("backtest: reading", "records", n, "partitions_left", len(end))
		}
		read = bt.total()
	}
	return bt, nil
}

// btTaskResult is what one task's replay produced.
type btTaskResult struct {
	triggers []event.Trigger
	orders   []*event.Event // PLACED, CANCELLED and REFUNDED orders applied (not duplicates)
	stats    lapse.Stats
	eng      *lapse.Engine
	after    []*event.Event // PLACED orders at or after the run's until, not applied
}

// replayAll replays every task (in parallel, one engine each) up to the
// run's until; the results do not depend on the parallelism.
func (b *backtestRun) replayAll(ctx context.Context, cfg lapse.Config) ([]btTaskResult, error) {
	start := time.UnixMilli(b.first)
	// Past the newest event applied by the idle timeout: every source is
	// idle, so each task's watermark reaches that event less the lateness.
	end := time.UnixMilli(min(b.last, b.until-1)).Add(cfg.IdleTimeout + time.Second)
	results := make([]btTaskResult, len(b.tasks))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i := range b.tasks {
		if len(b.tasks[i].streams) == 0 {
			continue
		}
		g.Go(func() error {
			return b.tasks[i].replay(gctx, cfg, start, end, b.until, b.model, &results[i])
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return results, nil
}

// run replays every task and builds the report.
func (b *backtestRun) run(ctx context.Context, cfg lapse.Config, horizonDays int) (*backtestOutput, error) {
	results, err := b.replayAll(ctx, cfg)
	if err != nil {
		return nil, err
	}

	var bt lapse.Backtest
	out := &backtestOutput{
		Source:      b.source,
		Partitions:  b.parts,
		HorizonDays: horizonDays,
		Records:     b.records,
		BadRecords:  b.bad,
		BadTotal:    b.badTotal(),
	}
	if b.events > 0 {
		out.From, out.To = isoMs(b.first), isoMs(b.last)
	}
	for i := range results {
		r := &results[i]
		for j := range r.triggers {
			bt.ObserveTrigger(&r.triggers[j])
		}
		for _, ev := range r.orders {
			bt.ObserveOrder(ev)
		}
		out.Events += r.stats.Events
		out.Duplicates += r.stats.Duplicates
		out.Late += r.stats.Late
		out.Customers += r.stats.Customers
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
	return out, nil
}

// replay applies the task's events in the pipeline's merge order: the
// stream head with the smallest event time first, ties to the lower source
// and then the lower input partition, each stream in input order. Events
// at or after until are not applied (their placed orders go to out.after).
func (t *btTask) replay(ctx context.Context, cfg lapse.Config, start, end time.Time, until int64, model *btyd.Params, out *btTaskResult) error {
	slices.SortFunc(t.streams, func(a, b *btStream) int {
		if a.src != b.src {
			return a.src - b.src
		}
		return int(a.part) - int(b.part)
	})
	eng := lapse.NewEngine(cfg, 3, start)
	if model != nil {
		eng.SetPurchaseModel(*model)
	}
	heads := make([]int, len(t.streams))
	var trigs []event.Trigger
	var wall int64 = -1 << 63
	for n := 0; ; n++ {
		if n%65536 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		best := -1
		for i, s := range t.streams {
			if heads[i] < len(s.evs) && (best < 0 || s.evs[heads[i]].Time < t.streams[best].evs[heads[best]].Time) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		s := t.streams[best]
		ev := &s.evs[heads[best]]
		heads[best]++
		if ev.Time >= until {
			if ev.Kind == event.KindOrder && ev.OrderType == event.OrderPlaced {
				out.after = append(out.after, ev)
			}
			continue
		}
		wall = max(wall, ev.Time) // the wall clock never goes back
		var dup bool
		trigs, dup, _ = eng.Apply(trigs, s.src, ev, time.UnixMilli(wall))
		if ev.Kind == event.KindOrder && !dup {
			out.orders = append(out.orders, ev)
		}
	}
	out.triggers = eng.Advance(trigs, end)
	out.stats = eng.Stats()
	out.eng = eng
	return nil
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
