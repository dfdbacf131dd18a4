package replay

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
	"github.com/winback/winback/pipeline/lso"
)

// Input is history read and decoded, by task: what a replay applies.
type Input struct {
	Source  string         // where it was read, for the report
	Parts   int            // tasks the customers are spread over
	Records map[string]int // input records read, by topic
	Bad     map[string]int // bad records, by reason
	// First and Last bound the event times of the valid events (Unix ms);
	// Events counts them.
	First, Last int64
	Events      int

	tasks []task
	keys  kgo.TopicPartitioner
	// taskOf caches the customers' tasks.
	taskOf map[string]int32
}

// task is one task's events: a stream per (source, input partition).
type task struct{ streams []*stream }

// stream is one input partition's (or a file's source's) events of one
// task, in input order.
type stream struct {
	src  int // lapse.SourceOrders, SourceEmail or SourceSupport
	part int32
	evs  []event.Event
}

// NewInput returns an empty Input over parts tasks, read from source.
func NewInput(source string, parts int) *Input {
	return &Input{
		Source:  source,
		Parts:   parts,
		Records: map[string]int{},
		Bad:     map[string]int{},
		First:   1<<63 - 1,
		Last:    -1 << 63,
		tasks:   make([]task, parts),
		keys:    kgo.StickyKeyPartitioner(nil).ForTopic(""),
		taskOf:  map[string]int32{},
	}
}

// Add places a decoded event, read from input partition part (0 for a
// file) of the source src (lapse.SourceOf its kind), in its customer's
// task: the partition Kafka's default partitioner (murmur2) gives the
// customer id, as the pipeline's producers place it.
func (in *Input) Add(src int, part int32, ev *event.Event) {
	p, ok := in.taskOf[ev.CustomerID]
	if !ok {
		p = int32(in.keys.Partition(&kgo.Record{Key: []byte(ev.CustomerID)}, in.Parts))
		in.taskOf[ev.CustomerID] = p
	}
	t := &in.tasks[p]
	s := t.stream(src, part)
	s.evs = append(s.evs, *ev)
	in.First = min(in.First, ev.Time)
	in.Last = max(in.Last, ev.Time)
	in.Events++
}

func (t *task) stream(src int, part int32) *stream {
	for _, s := range t.streams {
		if s.src == src && s.part == part {
			return s
		}
	}
	s := &stream{src: src, part: part}
	t.streams = append(t.streams, s)
	return s
}

// Reject counts a record that failed to decode (where says which) by its
// decode reason. A transient failure (the registry is down) is returned,
// since the record may well be fine, and so is an error that is not a
// decode error.
func (in *Input) Reject(where string, err error) error {
	reason, ok := decode.ReasonOf(err)
	if !ok {
		return fmt.Errorf("%s: %w", where, err)
	}
	if reason.Transient() {
		return fmt.Errorf("%s: %w (the backtest stops rather than count a possibly good record as bad)", where, err)
	}
	in.Bad[string(reason)]++
	return nil
}

// Total returns the number of input records read.
func (in *Input) Total() int {
	n := 0
	for _, c := range in.Records {
		n += c
	}
	return n
}

// BadTotal returns the number of bad records.
func (in *Input) BadTotal() int {
	n := 0
	for _, c := range in.Bad {
		n += c
	}
	return n
}

// Decoder decodes an input record's key and value into ev
// (*decode.Decoder is one).
type Decoder interface {
	Decode(ctx context.Context, k event.Kind, key, value []byte, ev *event.Event) error
}

// Topic is an input topic and the kind of its events.
type Topic struct {
	Name string
	Kind event.Kind
}

// ReadTopics reads topics from their start to the last stable offsets they
// have when it starts (pipeline/lso, with a client made from opts) and
// decodes every record with dec into an Input of parts tasks; parts 0
// takes the first topic's partition count. A bad record is counted
// (Input.Reject); a transient decode failure stops the read, and so does
// a fetch error or no record for stall while partitions are short of
// their end.
func ReadTopics(ctx context.Context, opts []kgo.Opt, topics []Topic, dec Decoder, parts int, stall time.Duration, log *slog.Logger) (*Input, error) {
	names := make([]string, len(topics))
	kinds := map[string]event.Kind{}
	for i, t := range topics {
		names[i], kinds[t.Name] = t.Name, t.Kind
	}
	cl, err := kgo.NewClient(append(append([]kgo.Opt(nil), opts...), lso.ClientOpts()...)...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	defer cl.Close()
	spans, err := lso.List(ctx, kadm.NewClient(cl), names...)
	if err != nil {
		return nil, err
	}
	if parts == 0 {
		if parts = len(spans[names[0]]); parts == 0 {
			return nil, fmt.Errorf("topic %s has no partitions (check the topic names)", names[0])
		}
	}
	left := 0 // partitions with records not read to their end
	for _, ps := range spans {
		for _, s := range ps {
			if s.End > s.Start {
				left++
			}
		}
	}
	in := NewInput("kafka:"+strings.Join(names, ","), parts)
	var ev event.Event
	read := 0
	o := lso.Options{Stall: stall, Done: func(string, int32) { left-- }}
	err = lso.Read(ctx, cl, spans, o, func(rec *kgo.Record) error {
		in.Records[rec.Topic]++
		if read++; read%100000 == 0 {
			log.Info("backtest: reading", "records", read, "partitions_left", left)
		}
		k := kinds[rec.Topic]
		if err := dec.Decode(ctx, k, rec.Key, rec.Value, &ev); err != nil {
			return in.Reject(fmt.Sprintf("%s/%d@%d", rec.Topic, rec.Partition, rec.Offset), err)
		}
		in.Add(lapse.SourceOf(k), rec.Partition, &ev)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return in, nil
}
