package consume

import (
	"context"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
)

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
