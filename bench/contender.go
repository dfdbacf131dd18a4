package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/gen"
)

// contenderSpec is what the orchestrator tells a contender child (as one
// JSON argument).
type contenderSpec struct {
	Name       string     `json:"name"`
	Brokers    string     `json:"brokers"`
	Topics     gen.Topics `json:"topics"`
	Expect     int64      `json:"expect"` // records in the three topics together
	Group      string     `json:"group"`
	Dir        string     `json:"dir"` // scratch directory (LevelDB)
	Partitions int        `json:"partitions"`

	// ClickHouse-only peer.
	ClickHouseDSN string    `json:"clickhouse_dsn,omitempty"`
	ClickHousePID int       `json:"clickhouse_pid,omitempty"`
	Database      string    `json:"database,omitempty"`
	BatchRows     int       `json:"batch_rows,omitempty"`
	HistoryFrom   int64     `json:"history_from,omitempty"` // Unix ms
	HistoryTo     int64     `json:"history_to,omitempty"`   // Unix ms
	Fractions     []float64 `json:"fractions,omitempty"`
	HistoryGrowth int64     `json:"history_growth,omitempty"` // grow the stored history to this many copies of the stream (1, 2, 4, 8 …)
	// Schedule is how often (wall time) the peer runs its lapse query
	// during its ingest; it runs once more at the end.
	Schedule time.Duration `json:"schedule,omitempty"`

	// Engine heap measurement.
	Customers int    `json:"customers,omitempty"`
	Days      int    `json:"days,omitempty"`
	Seed      int64  `json:"seed,omitempty"`
	Profile   string `json:"profile,omitempty"`
	// StateTopic, if set, receives a snapshot of every customer (restore
	// measurement at this size).
	StateTopic string `json:"state_topic,omitempty"`
}

// contenderResult is the last line a contender child prints.
type contenderResult struct {
	Records   int64   `json:"records"`             // input records processed
	Bad       int64   `json:"bad"`                 // records that did not decode
	Customers int     `json:"customers,omitempty"` // keys in the contender's state
	Wall      float64 `json:"wall_s"`              // start of the child to done (state flushed, offsets committed)
	PeakRSS   int64   `json:"peak_rss_bytes"`      // VmHWM of the child at the end
	Error     string  `json:"error,omitempty"`

	// ClickHouse-only peer.
	IngestWall      float64          `json:"ingest_wall_s,omitempty"`
	IngestCPU       float64          `json:"ingest_cpu_s,omitempty"`        // client, ingest phase with its scheduled queries
	IngestServerCPU float64          `json:"ingest_server_cpu_s,omitempty"` // clickhouse-server, ingest phase with its scheduled queries
	Scheduled       []scheduledQuery `json:"scheduled,omitempty"`
	Rows            int64            `json:"rows,omitempty"`
	Queries         []queryResult    `json:"queries,omitempty"`

	// Engine heap measurement.
	Engine *engineHeap `json:"engine,omitempty"`
}

type contenderFunc func(ctx context.Context, spec contenderSpec, log *slog.Logger) (contenderResult, error)

var contenders = map[string]contenderFunc{
	"ceiling":      runCeiling,
	"goka-memory":  runGoka,
	"goka-leveldb": runGoka,
	"clickhouse":   runClickHouseOnly,
	"engine":       runEngine,
}

// runContender is "bench contender SPEC-JSON": it runs one contender and
// prints its result as the last line on stdout.
func runContender(ctx context.Context, args []string, log *slog.Logger) error {
	if len(args) != 1 {
		return errors.New("usage: bench contender SPEC-JSON")
	}
	var spec contenderSpec
	if err := json.Unmarshal([]byte(args[0]), &spec); err != nil {
		return fmt.Errorf("contender spec: %w", err)
	}
	fn, ok := contenders[spec.Name]
	if !ok {
		return fmt.Errorf("unknown contender %q", spec.Name)
	}
	began := time.Now()
	res, err := fn(ctx, spec, log.With("contender", spec.Name))
	if res.Wall == 0 {
		res.Wall = time.Since(began).Seconds()
	}
	if err != nil {
		res.Error = err.Error()
	}
	// Not the rusage of the child: after a vfork-style exec, ru_maxrss
	// starts from the parent's peak. VmHWM belongs to the new image.
	res.PeakRSS = procPeakRSS(os.Getpid())
	if jerr := json.NewEncoder(os.Stdout).Encode(res); jerr != nil && err == nil {
		err = jerr
	}
	return err
}

// selfCPU is this process's CPU time so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// endOffsets returns the end offset of every partition of topics.
func endOffsets(ctx context.Context, cl *kgo.Client, topics ...string) (kadm.ListedOffsets, error) {
	adm := kadm.NewClient(cl)
	lo, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, err
	}
	return lo, lo.Error()
}

// sumOffsets adds up the offsets of lo.
func sumOffsets(lo kadm.ListedOffsets) int64 {
	var n int64
	lo.Each(func(o kadm.ListedOffset) { n += o.Offset })
	return n
}
