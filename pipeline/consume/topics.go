package consume

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// checkTopics refuses to run on inputs that are not co-partitioned with
// each other and with the changelog, and creates the internal topics
// (repartition, progress) when they are missing.
func (r *Runner) checkTopics(ctx context.Context) error {
	t := r.cfg.Topics
	names := []string{t.Orders, t.Email, t.Support, t.State}
	counts, err := r.partitionCounts(ctx, names...)
	if err != nil {
		return err
	}
	for _, n := range names {
		if counts[n] == 0 {
			return configError{fmt.Errorf("consume: topic %q does not exist; create it (co-partitioned with the inputs) or set --topics-partitions so winback creates it", n)}
		}
	}
	for _, n := range names[1:] {
		if counts[n] != counts[names[0]] {
			return configError{fmt.Errorf("consume: topics are not co-partitioned: %s has %d partitions, %s has %d; the inputs and the changelog must have the same partition count (repartition the smaller ones)",
				names[0], counts[names[0]], n, counts[n])}
		}
	}
	n := counts[names[0]]
	if err := r.ensureInternal(ctx, t.Repartition, n, nil); err != nil {
		return err
	}
	if err := r.ensureInternal(ctx, t.Progress, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}); err != nil {
		return err
	}
	if c, err := r.partitionCounts(ctx, t.Repartition); err != nil {
		return err
	} else if c[t.Repartition] != n {
		return configError{fmt.Errorf("consume: the repartition topic %s has %d partitions, the inputs %d; delete it while winback is stopped (it is recreated) or add partitions to match", t.Repartition, c[t.Repartition], n)}
	}
	if err := r.checkErasures(ctx, n); err != nil {
		return err
	}
	r.mu.Lock()
	r.nparts = n
	r.mu.Unlock()
	r.checked = r.now()
	return checkChangelogPolicy(ctx, r.adm, t.State)
}

// partitionCounts returns the partition count of each named topic, 0 for a
// topic that does not exist.
func (r *Runner) partitionCounts(ctx context.Context, names ...string) (map[string]int, error) {
	var details kadm.TopicDetails
	var err error
	for i := 0; ; i++ {
		details, err = r.adm.ListTopics(ctx, names...)
		if err == nil || i == 20 || ctx.Err() != nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		return nil, fmt.Errorf("consume: describe topics: %w", err)
	}
	counts := make(map[string]int, len(names))
	for _, n := range names {
		if d, ok := details[n]; ok && d.Err == nil {
			counts[n] = len(d.Partitions)
		}
	}
	return counts, nil
}

// ensureInternal creates an internal topic of winback's when it is missing.
func (r *Runner) ensureInternal(ctx context.Context, name string, partitions int, conf map[string]*string) error {
	res, err := r.adm.CreateTopic(ctx, int32(partitions), -1, conf, name)
	if err == nil {
		err = res.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("consume: create internal topic %s: %w", name, err)
	}
	if err == nil {
		r.log.Info("consume: created internal topic", "topic", name, "partitions", partitions)
	}
	return nil
}

// partitionsCheckEvery is how often a running session checks that the
// inputs' partition counts have not changed.
const partitionsCheckEvery = 10 * time.Second

// checkPartitions stops the session when an input's partition count has
// changed since it started: customers would re-hash into tasks that do not
// hold their state.
func (r *Runner) checkPartitions(ctx context.Context) error {
	if r.now().Sub(r.checked) < partitionsCheckEvery {
		return nil
	}
	t := r.cfg.Topics
	counts, err := r.partitionCounts(ctx, t.Orders, t.Email, t.Support)
	if err != nil {
		r.log.Warn("consume: cannot check the inputs' partition counts", "err", err)
		return nil
	}
	r.checked = r.now()
	r.mu.Lock()
	n := r.nparts
	r.mu.Unlock()
	for _, name := range []string{t.Orders, t.Email, t.Support} {
		if c := counts[name]; c != n && c != 0 {
			return configError{&PartitionsChangedError{Topic: name, Was: n, Now: c}}
		}
	}
	return nil
}

// PartitionsChangedError stops winback when an input topic's partition
// count changes while it runs.
type PartitionsChangedError struct {
	Topic    string
	Was, Now int
}

func (e *PartitionsChangedError) Error() string {
	return fmt.Sprintf("consume: input topic %s changed from %d to %d partitions while running; customers would move to tasks without their state. Stop every instance and follow docs/production.md, section \"Changing the partition count\"", e.Topic, e.Was, e.Now)
}

// partitioner writes changelog records to the partition set on them (the
// task's) and keys everything else with Kafka's murmur2 hashing.
type partitioner struct {
	manual []string
	keyed  kgo.Partitioner
}

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	if slices.Contains(p.manual, topic) {
		return kgo.ManualPartitioner().ForTopic(topic)
	}
	return p.keyed.ForTopic(topic)
}

// checkChangelogPolicy refuses a changelog topic that Kafka may delete
// from: winback keeps every customer's latest state as the last record of
// its key, so the topic must be compacted and never deleted by age or size.
// cleanup.policy must be "compact"; "compact,delete" is accepted only with
// retention.ms=-1 and retention.bytes=-1 (nothing ever deleted). The error
// is a configError naming the topic and the command that fixes it.
func checkChangelogPolicy(ctx context.Context, adm *kadm.Client, topic string) error {
	rcs, err := adm.DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return fmt.Errorf("consume: describe the configs of %s: %w", topic, err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return fmt.Errorf("consume: describe the configs of %s: %w", topic, err)
	}
	if rc.Err != nil {
		return fmt.Errorf("consume: describe the configs of %s: %w", topic, rc.Err)
	}
	value := func(key, def string) string {
		for _, c := range rc.Configs {
			if c.Key == key && c.Value != nil {
				return *c.Value
			}
		}
		return def
	}
	policy := value("cleanup.policy", "delete") // Kafka's default
	compact, del := false, false
	for _, p := range strings.Split(policy, ",") {
		switch strings.TrimSpace(strings.ToLower(p)) {
		case "compact":
			compact = true
		case "delete":
			del = true
		}
	}
	fix := fmt.Sprintf("kafka-configs --bootstrap-server <broker> --alter --entity-type topics --entity-name %s --add-config cleanup.policy=compact", topic)
	if !compact {
		return configError{fmt.Errorf("consume: the changelog topic %s has cleanup.policy=%s: Kafka would delete customers' state by age or size, and a restore would lose it; make it compacted: %s", topic, policy, fix)}
	}
	if del {
		ms, bytes := value("retention.ms", "604800000"), value("retention.bytes", "-1")
		if ms != "-1" || bytes != "-1" {
			return configError{fmt.Errorf("consume: the changelog topic %s has cleanup.policy=%s with retention.ms=%s, retention.bytes=%s: the state of customers quiet for longer would be deleted; use compaction alone: %s", topic, policy, ms, bytes, fix)}
		}
	}
	return nil
}
