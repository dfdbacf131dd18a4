package consume

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
)

// Decoder turns an input record into an event; bad input is a *decode.Error.
type Decoder interface {
	Decode(ctx context.Context, kind event.Kind, key, value []byte, ev *event.Event) error
}

// Sink takes the rows of a batch and writes them when flushed. StartFlush
// takes the rows added so far (later ones go to the next flush) and writes
// them in the background, retrying inside until ctx is done. The runner
// starts it once the transaction that produced the rows has committed, and
// commits the next transaction only after its channel says they are
// confirmed (truth.go). Discard drops the rows not yet taken by a flush:
// those of an aborted transaction. NeedsFlush ends a transaction early
// when the sink's batch is full: its pending rows and the held rows the
// tasks keep for the commit. Add takes a task's rows at once; it may
// keep neither rows nor the slices in it.
type Sink interface {
	Add(rows *event.Rows)
	// Erase deletes every row of the customers from ClickHouse and drops
	// the pending rows added for them so far, before any later row is
	// written; it returns once the deletes are registered (erase.go).
	Erase(ctx context.Context, customerIDs []string) error
	NeedsFlush(held int) bool
	StartFlush(ctx context.Context) <-chan error
	Discard()
}

// Records makes the records of the output topics besides the changelog
// (sinks/kafka.Output does).
type Records interface {
	// Trigger returns trigger t's record.
	Trigger(t *event.Trigger) (*kgo.Record, error)
	// DeadLetter returns the dead-letter record of src, which failed
	// with err at wall time at, and its ClickHouse row.
	DeadLetter(src *kgo.Record, err error, at time.Time) (*kgo.Record, event.DeadLetter)
	// Fits returns an error when rec, with extra bytes more, is larger
	// than the producer takes: one that is would fail its transaction
	// on every replay.
	Fits(rec *kgo.Record, extra int) error
}

// Topics names the topics a Runner reads and writes.
type Topics struct {
	Orders, Email, Support string // inputs, co-partitioned
	State                  string // the compacted changelog, co-partitioned
	// Progress is the compacted topic (one partition) where every task
	// publishes its event-time progress; Repartition carries input
	// records whose key does not place them in their customer's task.
	// Both are internal: the runner creates them when missing. Empty
	// names default to <group>-progress and <group>-repartition.
	Progress, Repartition string
	// Erasures carries erasure requests (GDPR, CCPA): records keyed by
	// customer_id, co-partitioned with the inputs; the runner creates it
	// when missing. Empty: erasure requests are not read.
	Erasures string
}

// Config is what a Runner needs besides its dependencies.
type Config struct {
	Topics          Topics
	Group           string
	TransactionalID string    // unique per instance
	ClientOpts      []kgo.Opt // brokers, TLS, SASL, logger: for both clients
	SessionOpts     []kgo.Opt // added to the transactional group client (e.g. its metrics hooks)
	RestoreOpts     []kgo.Opt // added to the changelog restore client
	StandbyOpts     []kgo.Opt // added to the standby client (StandbyReplicas > 0)
	MaxPollRecords  int       // records per transaction at most
	// Balancers are the group's balancers, in order of preference (nil:
	// TaskBalancer, cooperative).
	Balancers []kgo.GroupBalancer
	// StandbyReplicas is the number of standby copies of each task that
	// other members keep warm by tailing its changelog partition, so that
	// a task whose owner fails moves without a full restore (standby.go).
	// The task balancer assigns them; 0: none.
	StandbyReplicas int
	// CacheMaxBytes ends a transaction early when the customers it
	// changed would write about this many changelog bytes (changed
	// customers × average snapshot size); 0: no bound. Each changed
	// customer writes one snapshot and one aggregate row per commit
	// however many events it had, so a longer CommitInterval writes
	// less per event (Kafka Streams' statestore.cache.max.bytes).
	CacheMaxBytes   int
	CommitInterval  time.Duration // longest time a transaction stays open
	ShutdownTimeout time.Duration // time for the last flush and commit on shutdown
	// TransactionTimeout is how long the broker lets a transaction stay
	// open; a dead instance's open transaction is aborted after it.
	TransactionTimeout time.Duration
	// FlushTimeout bounds the ClickHouse write of a committed
	// transaction's rows; the next transaction, open meanwhile, aborts
	// when it passes. Default and maximum: half of TransactionTimeout.
	FlushTimeout time.Duration
	// MaxFutureSkew caps the event time a quiet task follows: wall clock
	// plus this.
	MaxFutureSkew time.Duration
	// StateTTL evicts a customer after this much event time without a
	// change (lapse.Engine.SetTTL); 0 keeps customers forever.
	StateTTL time.Duration
	// StrictPartitioning dead-letters input records whose key does not
	// place them in their customer's task (reason key.partition_mismatch)
	// instead of routing them through the Repartition topic.
	StrictPartitioning bool
	Lapse              lapse.Config
}

// Deps are the Runner's collaborators.
type Deps struct {
	Decoder    Decoder
	Sink       Sink
	Outputs    Records
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time // wall clock; nil means time.Now
}

const metaKey = "\x00meta" // changelog key of a task's own state (watermark, cohort, tiers)
