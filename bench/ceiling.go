package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// runCeiling is the ceiling: a franz-go group consumer (the same client and
// protocol winback uses) that reads every record of the three topics and
// throws it away, then commits its offsets. Nothing can consume this
// stream on this broker for less CPU.
func runCeiling(ctx context.Context, spec contenderSpec, log *slog.Logger) (contenderResult, error) {
	began := time.Now()
	var res contenderResult
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(spec.Brokers),
		kgo.ConsumerGroup(spec.Group),
		kgo.ConsumeTopics(spec.Topics.Orders, spec.Topics.Email, spec.Topics.Support),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.DisableAutoCommit(),
	)
	if err != nil {
		return res, err
	}
	defer cl.Close()
	for res.Records < spec.Expect {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			return res, err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("fetch %s/%d: %w", t, p, err))
		})
		if ferr != nil {
			return res, ferr
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) { res.Records += int64(len(p.Records)) })
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		return res, fmt.Errorf("commit: %w", err)
	}
	res.Wall = time.Since(began).Seconds()
	log.Info("ceiling done", "records", res.Records, "wall", time.Since(began).Round(time.Millisecond))
	return res, nil
}
