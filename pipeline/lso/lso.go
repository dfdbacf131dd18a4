package lso

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Span is the part of one partition a read covers: offsets [Start, End),
// End being the last stable offset when it was listed.
type Span struct{ Start, End int64 }

// Spans are the spans of partitions, by topic and partition.
type Spans map[string]map[int32]Span

// List lists every partition of topics with its log start offset and its
// last stable offset. Reading them gives exactly what was committed when
// List was called.
func List(ctx context.Context, adm *kadm.Client, topics ...string) (Spans, error) {
	starts, err := adm.ListStartOffsets(ctx, topics...)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list start offsets of %s: %w", strings.Join(topics, ", "), err)
	}
	ends, err := adm.ListCommittedOffsets(ctx, topics...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("list end offsets of %s: %w", strings.Join(topics, ", "), err)
	}
	sp := Spans{}
	ends.Each(func(lo kadm.ListedOffset) {
		st, _ := starts.Lookup(lo.Topic, lo.Partition)
		if sp[lo.Topic] == nil {
			sp[lo.Topic] = map[int32]Span{}
		}
		sp[lo.Topic][lo.Partition] = Span{Start: st.Offset, End: lo.Offset}
	})
	return sp, nil
}

// Options tune a Read; the zero Options wait as long as the context
// allows and end the read at the first fetch error.
type Options struct {
	// Stall ends the read with an error naming the partitions short of
	// their end when no record has come for this long; 0: no limit.
	Stall time.Duration
	// FetchError, if set, decides about a fetch error: returning nil
	// reads on (the client retries), an error ends the read with it.
	FetchError func(topic string, partition int32, err error) error
	// Done, if set, is called as each partition is read to its end.
	Done func(topic string, partition int32)
}

// ClientOpts are the options Read needs of its client, besides the
// brokers and no consumer group.
func ClientOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Control records are kept so that a partition whose last offset
		// before the end is a transaction marker is seen to be done.
		kgo.KeepControlRecords(),
	}
}

// Read reads spans with cl, a client without a consumer group made with
// ClientOpts, and calls fn with each record before its partition's end,
// in each partition's offset order; transaction markers are left out,
// and records of aborted transactions never come. It adds the partitions
// to what cl consumes and removes each one once read (or when the read
// ends), so a long-lived client can read again. It returns when every
// partition has been read to its end, or with the error of fn, of a
// fetch (see Options.FetchError), of ctx, or of a stall.
func Read(ctx context.Context, cl *kgo.Client, spans Spans, o Options, fn func(*kgo.Record) error) error {
	type tp struct {
		topic string
		part  int32
	}
	end := map[tp]int64{}
	from := map[string]map[int32]kgo.Offset{}
	for topic, parts := range spans {
		for p, s := range parts {
			if s.End <= s.Start {
				continue // empty
			}
			end[tp{topic, p}] = s.End
			if from[topic] == nil {
				from[topic] = map[int32]kgo.Offset{}
			}
			from[topic][p] = kgo.NewOffset().At(s.Start)
		}
	}
	if len(end) == 0 {
		return nil
	}
	cl.AddConsumePartitions(from)
	remove := func(k tp) {
		cl.RemoveConsumePartitions(map[string][]int32{k.topic: {k.part}})
	}
	defer func() {
		for k := range end {
			remove(k)
		}
	}()

	last := map[tp]int64{}
	for len(end) > 0 {
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if o.Stall > 0 {
			pctx, cancel = context.WithTimeout(ctx, o.Stall)
		}
		fetches := cl.PollFetches(pctx)
		cancel()
		if err := ctx.Err(); err != nil {
			return err
		}
		if pctx.Err() != nil && fetches.NumRecords() == 0 {
			var short []string
			for k, e := range end {
				short = append(short, fmt.Sprintf("%s/%d at %d of %d", k.topic, k.part, last[k], e))
			}
			sort.Strings(short)
			return fmt.Errorf("no records for %s while partitions were short of their end offsets: %s", o.Stall, strings.Join(short, "; "))
		}
		var ferr error
		fetches.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || ferr != nil {
				return
			}
			if o.FetchError != nil {
				ferr = o.FetchError(topic, p, err)
			} else {
				ferr = fmt.Errorf("fetch %s/%d: %w", topic, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			k := tp{fp.Topic, fp.Partition}
			e, ok := end[k]
			if !ok || ferr != nil {
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
				if ferr = fn(rec); ferr != nil {
					return
				}
			}
			if n := len(fp.Records); n > 0 && fp.Records[n-1].Offset >= e-1 {
				delete(end, k)
				remove(k)
				if o.Done != nil {
					o.Done(k.topic, k.part)
				}
			}
		})
		if ferr != nil {
			return ferr
		}
	}
	return nil
}
