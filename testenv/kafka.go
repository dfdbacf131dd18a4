package testenv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultPartitions is the partition count of topics created when
// KafkaOptions.Partitions is zero.
const DefaultPartitions int32 = 6

// KafkaOptions configures StartKafka. The zero value is a one-broker
// in-memory cluster on a free port with no topics.
type KafkaOptions struct {
	// Addr is where the broker listens, "127.0.0.1:9092". A port of 0 (or
	// an empty Addr) picks a free port. kfake listens on 127.0.0.1 only,
	// so the host must be empty, 127.0.0.1 or localhost.
	Addr string
	// DataDir, if set, persists topics, records, groups and producer ids
	// there, and reloads them when a cluster starts on the same DataDir.
	DataDir string
	// SyncWrites fsyncs every produced batch (only with DataDir).
	SyncWrites bool
	// Partitions is the partition count of Topics and CompactedTopics, and
	// of topics created with CreateTopics(ctx, 0, ...). Default 6.
	Partitions int32
	// Topics are created at start (if they do not exist yet).
	Topics []string
	// CompactedTopics are created at start with cleanup.policy=compact.
	CompactedTopics []string
	// Logger receives kfake's log lines; nil discards them.
	Logger *slog.Logger
}

// Kafka is a one-broker kfake cluster listening on a real TCP port, so any
// Kafka client (franz-go, kcat, Sarama) can use it.
type Kafka struct {
	c          *kfake.Cluster
	addr       string
	partitions int32
	log        *slog.Logger
}

// StartKafka starts a one-broker kfake cluster and creates the topics in o.
// Transactions, idempotent producers and consumer groups (classic and
// KIP-848) work as on a real broker.
func StartKafka(ctx context.Context, o KafkaOptions) (*Kafka, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	port, err := loopbackPort(o.Addr)
	if err != nil {
		return nil, fmt.Errorf("testenv: kafka address: %w", err)
	}
	partitions := o.Partitions
	if partitions <= 0 {
		partitions = DefaultPartitions
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.ClusterID("winback-testenv"),
		kfake.DefaultNumPartitions(int(partitions)),
		kfake.WithLogger(kfakeLogger{log}),
		// Let tests choose short session timeouts; real brokers default
		// to a 6 s minimum.
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
	}
	if o.DataDir != "" {
		opts = append(opts, kfake.DataDir(o.DataDir))
		if o.SyncWrites {
			opts = append(opts, kfake.SyncWrites())
		}
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("testenv: start kfake on port %d: %w", port, err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) != 1 {
		c.Close()
		return nil, fmt.Errorf("testenv: kfake listens on %v, want one address", addrs)
	}
	k := &Kafka{c: c, addr: addrs[0], partitions: partitions, log: log}
	if err := k.CreateTopics(ctx, partitions, false, o.Topics...); err != nil {
		k.Close()
		return nil, err
	}
	if err := k.CreateTopics(ctx, partitions, true, o.CompactedTopics...); err != nil {
		k.Close()
		return nil, err
	}
	log.Info("kafka (kfake) started", "addr", k.addr, "data_dir", o.DataDir)
	return k, nil
}

// Addr is the broker's "127.0.0.1:PORT", the only seed broker a client needs.
func (k *Kafka) Addr() string { return k.addr }

// Cluster is the underlying kfake cluster, for fault injection
// (Control), Compact, ApplyRetention and the like.
func (k *Kafka) Cluster() *kfake.Cluster { return k.c }

// Close stops the broker; with a DataDir it first saves its state. It is
// safe to call more than once.
func (k *Kafka) Close() { k.c.Close() }

// CreateTopics creates topics with the given partition count (0 means the
// cluster's default) and replication factor 1, with cleanup.policy=compact
// if compact is set. A topic that already exists is left as it is.
func (k *Kafka) CreateTopics(ctx context.Context, partitions int32, compact bool, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	if partitions <= 0 {
		partitions = k.partitions
	}
	var configs map[string]*string
	if compact {
		configs = map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.addr))
	if err != nil {
		return fmt.Errorf("testenv: kafka admin client: %w", err)
	}
	defer cl.Close()
	resps, err := kadm.NewClient(cl).CreateTopics(ctx, partitions, 1, configs, topics...)
	if err != nil {
		return fmt.Errorf("testenv: create topics %v: %w", topics, err)
	}
	var errs []error
	for _, r := range resps.Sorted() {
		switch {
		case r.Err == nil:
			k.log.Debug("topic created", "topic", r.Topic, "partitions", partitions, "compact", compact)
		case errors.Is(r.Err, kerr.TopicAlreadyExists):
		default:
			errs = append(errs, fmt.Errorf("testenv: create topic %q: %w", r.Topic, r.Err))
		}
	}
	return errors.Join(errs...)
}

// loopbackPort parses a "host:port" on which kfake can listen: the host must
// be loopback (kfake binds 127.0.0.1), the port may be 0.
func loopbackPort(addr string) (int, error) {
	if addr == "" {
		return 0, nil
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, &AddrError{Addr: addr, Reason: err.Error()}
	}
	switch host {
	case "", "127.0.0.1", "localhost":
	default:
		return 0, &AddrError{Addr: addr, Reason: "host must be 127.0.0.1 (kfake listens on loopback only)"}
	}
	port := 0
	if p != "" {
		port, err = strconv.Atoi(p)
		if err != nil || port < 0 || port > 65535 {
			return 0, &AddrError{Addr: addr, Reason: "bad port " + strconv.Quote(p)}
		}
	}
	return port, nil
}

// AddrError reports an unusable listen address.
type AddrError struct {
	Addr   string
	Reason string
}

func (e *AddrError) Error() string { return fmt.Sprintf("address %q: %s", e.Addr, e.Reason) }

// kfakeLogger sends kfake's log lines to slog. kfake logs at info level per
// group join and leave, which is debug detail for winback.
type kfakeLogger struct{ log *slog.Logger }

func (l kfakeLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	var lvl slog.Level
	switch level {
	case kfake.LogLevelError:
		lvl = slog.LevelError
	case kfake.LogLevelWarn:
		lvl = slog.LevelWarn
	case kfake.LogLevelInfo:
		lvl = slog.LevelDebug
	default:
		lvl = slog.LevelDebug - 4
	}
	ctx := context.Background()
	if !l.log.Enabled(ctx, lvl) {
		return
	}
	l.log.Log(ctx, lvl, fmt.Sprintf(msg, args...), "component", "kfake")
}
