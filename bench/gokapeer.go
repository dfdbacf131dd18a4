package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"math"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
)

// gokaEvent is the part of an input record the goka peer reads: what the
// per-customer aggregation needs, decoded with encoding/json (goka's
// idiomatic codec).
type gokaEvent struct {
	EventID    string  `json:"event_id"`
	CustomerID string  `json:"customer_id"`
	EventTime  int64   `json:"event_time"`
	Type       string  `json:"type"`
	OrderID    string  `json:"order_id"`
	Amount     float64 `json:"amount"`

	bad bool // did not decode; counted and skipped
}

// gokaEventCodec decodes a JSON input record. A record that does not decode
// becomes a gokaEvent marked bad instead of an error: goka stops the
// processor on a codec error, and the stream holds malformed records on
// purpose.
type gokaEventCodec struct{}

func (gokaEventCodec) Encode(v any) ([]byte, error) { return json.Marshal(v) }

func (gokaEventCodec) Decode(b []byte) (any, error) {
	ev := new(gokaEvent)
	if err := json.Unmarshal(b, ev); err != nil || ev.CustomerID == "" {
		return &gokaEvent{bad: true}, nil
	}
	return ev, nil
}

// customerState is the goka peer's per-customer value: counts, net spend
// and the last order. It is what the ClickHouse-only query computes too.
type customerState struct {
	Orders, Emails, Tickets uint32
	Spend                   float64
	FirstOrderAt            int64
	LastOrderAt             int64
	LastOrderID             string
}

// apply folds one event into s, the same way for every peer.
func (s *customerState) apply(kind string, ev *gokaEvent) {
	switch kind {
	case "order":
		switch ev.Type {
		case "PLACED":
			s.Orders++
			s.Spend += ev.Amount
			if ev.EventTime >= s.LastOrderAt {
				s.LastOrderAt, s.LastOrderID = ev.EventTime, ev.OrderID
			}
			if s.FirstOrderAt == 0 || ev.EventTime < s.FirstOrderAt {
				s.FirstOrderAt = ev.EventTime
			}
		case "CANCELLED", "REFUNDED":
			s.Spend -= ev.Amount
		}
	case "email":
		s.Emails++
	case "support":
		s.Tickets++
	}
}

// customerStateCodec is a compact binary codec (cheaper than JSON, to give
// goka the benefit of the doubt on its state writes).
type customerStateCodec struct{}

func (customerStateCodec) Encode(v any) ([]byte, error) {
	s, ok := v.(*customerState)
	if !ok {
		return nil, fmt.Errorf("customerStateCodec: %T is not *customerState", v)
	}
	b := make([]byte, 0, 48+len(s.LastOrderID))
	b = binary.LittleEndian.AppendUint32(b, s.Orders)
	b = binary.LittleEndian.AppendUint32(b, s.Emails)
	b = binary.LittleEndian.AppendUint32(b, s.Tickets)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.Spend))
	b = binary.LittleEndian.AppendUint64(b, uint64(s.FirstOrderAt))
	b = binary.LittleEndian.AppendUint64(b, uint64(s.LastOrderAt))
	return append(b, s.LastOrderID...), nil
}

func (customerStateCodec) Decode(b []byte) (any, error) {
	if len(b) < 36 {
		return nil, fmt.Errorf("customerStateCodec: %d bytes, want at least 36", len(b))
	}
	return &customerState{
		Orders:       binary.LittleEndian.Uint32(b),
		Emails:       binary.LittleEndian.Uint32(b[4:]),
		Tickets:      binary.LittleEndian.Uint32(b[8:]),
		Spend:        math.Float64frombits(binary.LittleEndian.Uint64(b[12:])),
		FirstOrderAt: int64(binary.LittleEndian.Uint64(b[20:])),
		LastOrderAt:  int64(binary.LittleEndian.Uint64(b[28:])),
		LastOrderID:  string(b[36:]),
	}, nil
}

// runGoka is the goka peer: one processor group with an Input edge per
// topic and a Persist'ed group table, on the same broker. goka-memory uses
// storage.MemoryBuilder, goka-leveldb goka's default LevelDB storage.
func runGoka(ctx context.Context, spec contenderSpec, log *slog.Logger) (contenderResult, error) {
	began := time.Now()
	var res contenderResult

	// Sarama's defaults as goka sets them, with two changes for a
	// pre-produced stream on a one-broker kfake: start at the oldest
	// offset, and create the group table with replication factor 1.
	cfg := goka.DefaultConfig()
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	goka.ReplaceGlobalConfig(cfg)
	tmc := goka.NewTopicManagerConfig()
	tmc.Table.Replication = 1
	tmc.Stream.Replication = 1

	var sb storage.Builder
	switch spec.Name {
	case "goka-memory":
		sb = storage.MemoryBuilder()
	case "goka-leveldb":
		sb = storage.DefaultBuilder(filepath.Join(spec.Dir, "leveldb"))
	default:
		return res, fmt.Errorf("unknown goka storage %q", spec.Name)
	}

	var seen, bad atomic.Int64
	done := make(chan struct{})
	count := func(ev *gokaEvent) bool {
		if ev.bad {
			bad.Add(1)
		}
		if seen.Add(1) == spec.Expect {
			close(done)
		}
		return !ev.bad
	}
	cb := func(kind string) goka.ProcessCallback {
		return func(gctx goka.Context, msg any) {
			ev := msg.(*gokaEvent)
			if !count(ev) {
				return
			}
			s, _ := gctx.Value().(*customerState)
			if s == nil {
				s = new(customerState)
			}
			s.apply(kind, ev)
			gctx.SetValue(s)
		}
	}
	group := goka.Group(spec.Group)
	g := goka.DefineGroup(group,
		goka.Input(goka.Stream(spec.Topics.Orders), gokaEventCodec{}, cb("order")),
		goka.Input(goka.Stream(spec.Topics.Email), gokaEventCodec{}, cb("email")),
		goka.Input(goka.Stream(spec.Topics.Support), gokaEventCodec{}, cb("support")),
		goka.Persist(customerStateCodec{}),
	)
	p, err := goka.NewProcessor([]string{spec.Brokers}, g,
		goka.WithTopicManagerBuilder(goka.TopicManagerBuilderWithTopicManagerConfig(tmc)),
		goka.WithStorageBuilder(sb),
		goka.WithHasher(murmur2Hasher),
		goka.WithLogger(gokaLogger{log}),
	)
	if err != nil {
		return res, fmt.Errorf("goka processor: %w", err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- p.Run(runCtx) }()
	select {
	case <-done:
		// Every record is processed; stopping flushes the table writes
		// and commits the offsets, which belongs to the measured work.
		cancel()
		err = <-errc
	case err = <-errc:
		if err == nil {
			err = errors.New("goka processor stopped before the end of the stream")
		}
	case <-ctx.Done():
		cancel()
		<-errc
		err = ctx.Err()
	}
	res.Wall = time.Since(began).Seconds()
	res.Records, res.Bad = seen.Load(), bad.Load()
	if err != nil && !errors.Is(err, context.Canceled) {
		return res, fmt.Errorf("goka: %w", err)
	}
	if res.Records != spec.Expect {
		return res, fmt.Errorf("goka processed %d records, want %d", res.Records, spec.Expect)
	}
	log.Info("goka done", "records", res.Records, "bad", res.Bad, "wall", time.Since(began).Round(time.Millisecond))
	return res, nil
}

// gokaLogger sends goka's log lines to slog at debug level.
type gokaLogger struct{ log *slog.Logger }

func (l gokaLogger) Print(v ...any)   { l.log.Debug(fmt.Sprint(v...), "component", "goka") }
func (l gokaLogger) Println(v ...any) { l.log.Debug(fmt.Sprint(v...), "component", "goka") }
func (l gokaLogger) Printf(format string, v ...any) {
	l.log.Debug(fmt.Sprintf(format, v...), "component", "goka")
}

// murmur2Hasher makes goka (Sarama's hash partitioner) place keys like
// Kafka's Java client and franz-go do: murmur2 with the sign bit masked.
// The input topics are produced that way, and goka must write a key's
// table entry to the partition its input came from.
func murmur2Hasher() hash.Hash32 { return new(murmur2Hash) }

type murmur2Hash struct{ b []byte }

func (h *murmur2Hash) Write(p []byte) (int, error) { h.b = append(h.b, p...); return len(p), nil }
func (h *murmur2Hash) Sum(b []byte) []byte {
	return binary.BigEndian.AppendUint32(b, h.Sum32())
}
func (h *murmur2Hash) Reset()         { h.b = h.b[:0] }
func (h *murmur2Hash) Size() int      { return 4 }
func (h *murmur2Hash) BlockSize() int { return 4 }

// Sum32 is murmur2 as Kafka computes it, masked to 31 bits so that Sarama's
// int32(h) % n is Kafka's toPositive(h) % n.
func (h *murmur2Hash) Sum32() uint32 { return murmur2(h.b) & 0x7fffffff }

// murmur2 is Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2).
func murmur2(b []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	h := seed ^ uint32(len(b))
	for len(b) >= 4 {
		k := binary.LittleEndian.Uint32(b)
		b = b[4:]
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch len(b) {
	case 3:
		h ^= uint32(b[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(b[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(b[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
