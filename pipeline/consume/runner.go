package consume

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/lapse"
	"github.com/winback/winback/sinks/kafka"
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
// when the sink's batch is full.
type Sink interface {
	AddAggregate(a *event.Aggregate)
	AddTrigger(t *event.Trigger)
	AddDeadLetter(d *event.DeadLetter)
	// Erase deletes every row of the customers from ClickHouse and drops
	// the pending rows added for them so far, before any later row is
	// written; it returns once the deletes are registered (erase.go).
	Erase(ctx context.Context, customerIDs []string) error
	NeedsFlush(now time.Time) bool
	StartFlush(ctx context.Context) <-chan error
	Discard()
}

// TriggerEncoder encodes the value of a trigger record.
type TriggerEncoder interface {
	Encode(dst []byte, t *event.Trigger) ([]byte, error)
}

// Topics names the topics a Runner reads and writes.
type Topics struct {
	Orders, Email, Support string // inputs, co-partitioned
	Triggers, DLQ, State   string // outputs; State is the compacted changelog
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
	TransactionalID string        // unique per instance
	ClientOpts      []kgo.Opt     // brokers, TLS, SASL, logger: for both clients
	SessionOpts     []kgo.Opt     // added to the transactional group client (e.g. its metrics hooks)
	RestoreOpts     []kgo.Opt     // added to the changelog restore client
	MaxPollRecords  int           // records per transaction at most
	CommitInterval  time.Duration // longest time a transaction stays open
	ShutdownTimeout time.Duration // time for the last flush and commit on shutdown
	// TransactionTimeout is how long the broker lets a transaction stay
	// open; a dead instance's open transaction is aborted after it.
	TransactionTimeout time.Duration
	// FlushTimeout bounds the ClickHouse write of a committed
	// transaction's rows; the next transaction, open meanwhile, aborts
	// when it passes. Default and maximum: half of TransactionTimeout.
	FlushTimeout     time.Duration
	DLQSampleBytes   int // bytes of a bad value kept in ClickHouse
	DLQMaxValueBytes int // a bad value longer than this is cut in the dead-letter record
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
	Triggers   TriggerEncoder
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	Now        func() time.Time // wall clock; nil means time.Now
}

const metaKey = "\x00meta" // changelog key of a task's own state (watermark, cohort, tiers)

// Runner is one winback instance's stream processor.
type Runner struct {
	cfg Config
	dep Deps
	log *slog.Logger
	m   *metrics
	now func() time.Time

	sess    *kgo.GroupTransactSession
	restore *kgo.Client // reads the changelog, read_committed, no group
	adm     *kadm.Client
	board   *board    // every task's published progress, from the progress topic
	checked time.Time // when the input partition counts were last checked

	mu      sync.Mutex
	tasks   map[int32]*task  // restored tasks owned now
	owned   map[int32]bool   // partitions assigned to us
	pending map[int32]bool   // assigned, not yet restored
	gen     map[int32]uint64 // bumped on every assignment, to spot a stale restore
	nparts  int              // partitions of each input topic
	keys    KeyPartitioner
	ready   bool // joined, and nothing left to restore

	barrier barrier // this cycle's forwarding barrier

	backoff time.Duration // wait after a failed transaction
	errMu   sync.Mutex    // guards txErr, which produce callbacks set
	// per transaction
	txErr    error
	txTrigs  []event.Trigger // emitted in this transaction, counted on commit
	txArrive []int64         // arrival (record timestamp, ms) of event-driven triggers
	txGone   gone            // customers erased and evicted in this transaction

	// ClickHouse writes the rows of the last committed transaction while
	// the next one is processed (truth.go): flushing is that write's
	// outcome, nil when none is under way. sinkDown: the last write failed,
	// and no transaction begins before the restored rows are written.
	flushing      <-chan error
	flushCancel   context.CancelFunc
	flushDeadline time.Time
	sinkDown      bool
	// confirmed[p] is the assignment generation (gen) of partition p
	// whose committed rows ClickHouse holds, every one of them: a restore
	// of p in the same generation (after an abort) writes nothing again.
	// flushParts are the partitions of the transaction being written.
	confirmed  map[int32]uint64
	flushParts map[int32]uint64
}

type task struct {
	p   int32
	eng *lapse.Engine
	src [nSources]source // orders, email, support, repartition, erasures: buffered in event-time order
	// snapshot bytes and count written or restored, for the state_bytes
	// estimate (average snapshot size × customers)
	snapBytes, snaps int

	// Tasks are processed in parallel: each keeps its own scratch and
	// outputs, which collect moves to the transaction in partition order.
	fetched []kgo.FetchTopicPartition // this poll's, for enqueue
	out     taskOut
	trigBuf []event.Trigger
	aggBuf  event.Aggregate
	arena   arena // changelog records

	lastInput time.Time // wall time of the last input record fetched
	followed  bool      // the watermark followed the pipeline since the last meta record
	published *progress // last progress record produced; nil: none yet

	// Forwarding (route.go): fwdNext is, per input, the offset after the
	// last record forwarded in this task's committed or open
	// transaction, so that a replay does not forward again; fwdWritten
	// what the changelog holds; forwarded that the task ever forwarded.
	fwdNext, fwdWritten [srcRepartition]int64
	forwarded           bool
	// fwdWait is the repartition partition's last stable offset when the
	// cycle's barrier was taken: the merge waits to have read up to it.
	fwdWait int64

	// State epoch (truth.go): the high 32 bits of every version this task
	// writes. epochKnown: read from the changelog; epochDirty: to be
	// written with the next commit. hadState: the changelog held state.
	epoch                            uint32
	epochKnown, epochDirty, hadState bool
	// Triggers the changelog must keep until ClickHouse has confirmed
	// them: this transaction's, JSON, and pendChunks records written
	// before (cleared by the next commit).
	pend         []json.RawMessage
	pendChunks   int
	pendRestored map[int]pendChunk // while restoring
}

// taskOut is what a task produced since its outputs were last collected.
type taskOut struct {
	recs   []*kgo.Record
	trigs  []event.Trigger // emitted, counted on commit
	arrive []int64         // arrival (record timestamp, ms) of event-driven triggers
	gone   gone            // customers erased and evicted
	err    error           // the transaction must abort
}

func (o *taskOut) fail(err error) { o.err = errors.Join(o.err, err) }

func (t *task) noteSnapshot(n int) { t.snapBytes += n; t.snaps++ }

func (t *task) stateBytes() float64 {
	if t.snaps == 0 {
		return 0
	}
	return float64(t.snapBytes) / float64(t.snaps) * float64(t.eng.Len())
}

// New checks the configuration and builds a Runner. It connects nothing:
// Run does.
func New(cfg Config, dep Deps) (*Runner, error) {
	switch {
	case dep.Decoder == nil, dep.Sink == nil, dep.Triggers == nil:
		return nil, errors.New("consume: Decoder, Sink and Triggers are required")
	case cfg.Group == "" || cfg.TransactionalID == "":
		return nil, errors.New("consume: Group and TransactionalID are required")
	case cfg.Topics.Orders == "" || cfg.Topics.Email == "" || cfg.Topics.Support == "" ||
		cfg.Topics.Triggers == "" || cfg.Topics.DLQ == "" || cfg.Topics.State == "":
		return nil, errors.New("consume: every topic must be named")
	}
	if cfg.MaxPollRecords <= 0 {
		cfg.MaxPollRecords = 100000
	}
	if cfg.CommitInterval <= 0 {
		cfg.CommitInterval = time.Second
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 30 * time.Second
	}
	if cfg.TransactionTimeout <= 0 {
		cfg.TransactionTimeout = 40 * time.Second
	}
	if cfg.FlushTimeout <= 0 || cfg.FlushTimeout > cfg.TransactionTimeout/2 {
		cfg.FlushTimeout = cfg.TransactionTimeout / 2
	}
	if cfg.DLQMaxValueBytes <= 0 {
		cfg.DLQMaxValueBytes = 900 << 10
	}
	if cfg.DLQSampleBytes <= 0 {
		cfg.DLQSampleBytes = 512
	}
	if cfg.MaxFutureSkew <= 0 {
		cfg.MaxFutureSkew = 5 * time.Minute
	}
	if cfg.Topics.Progress == "" {
		cfg.Topics.Progress = cfg.Group + "-progress"
	}
	if cfg.Topics.Repartition == "" {
		cfg.Topics.Repartition = cfg.Group + "-repartition"
	}
	if err := cfg.Lapse.Validate(); err != nil {
		return nil, fmt.Errorf("consume: lapse config: %w", err)
	}
	if dep.Logger == nil {
		dep.Logger = slog.New(slog.DiscardHandler)
	}
	if dep.Now == nil {
		dep.Now = time.Now
	}
	return &Runner{
		cfg:       cfg,
		dep:       dep,
		log:       dep.Logger,
		m:         newMetrics(dep.Registerer),
		now:       dep.Now,
		tasks:     map[int32]*task{},
		owned:     map[int32]bool{},
		pending:   map[int32]bool{},
		gen:       map[int32]uint64{},
		confirmed: map[int32]uint64{},
		keys:      Partitioner(),
		board:     newBoard(),
	}, nil
}

// source maps an input topic to its engine source index and event kind.
func (r *Runner) source(topic string) (int, event.Kind, bool) {
	switch topic {
	case r.cfg.Topics.Orders:
		return 0, event.KindOrder, true
	case r.cfg.Topics.Email:
		return 1, event.KindEmail, true
	case r.cfg.Topics.Support:
		return 2, event.KindSupport, true
	case r.cfg.Topics.Repartition:
		return srcRepartition, 0, true // the kind is in a header
	case r.cfg.Topics.Erasures:
		if r.cfg.Topics.Erasures != "" {
			return srcErasures, 0, true
		}
	}
	return 0, 0, false
}

// Run consumes until ctx is done, then finishes the open transaction (flush
// and commit) within ShutdownTimeout, leaves the group and returns nil. A
// session that fails (the brokers went away in the middle of a
// transaction, the producer was fenced) is closed, every task dropped, and
// a new session starts after a backoff, as a restarted process would. Run
// returns an error only for a problem a retry cannot fix, such as inputs
// that are not co-partitioned.
func (r *Runner) Run(ctx context.Context) error {
	backoff := time.Second
	for {
		began := time.Now()
		err := r.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var ce configError
		if errors.As(err, &ce) {
			return err
		}
		if time.Since(began) > time.Minute {
			backoff = time.Second
		}
		r.log.Error("consume: session failed; starting a new one", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// configError is a problem with the topics that retrying cannot fix.
type configError struct{ error }

func (e configError) Unwrap() error { return e.error }

// session runs one transactional group session until ctx is done or it
// fails.
func (r *Runner) session(ctx context.Context) error {
	// Rows of a failed session's transactions are dropped: the restores
	// of this one write the committed state again.
	r.awaitFlush()
	r.dep.Sink.Discard()
	r.sinkDown = false
	r.mu.Lock()
	r.confirmed = map[int32]uint64{}
	r.tasks, r.owned, r.pending, r.ready = map[int32]*task{}, map[int32]bool{}, map[int32]bool{}, false
	r.mu.Unlock()
	inputs := []string{r.cfg.Topics.Orders, r.cfg.Topics.Email, r.cfg.Topics.Support, r.cfg.Topics.Repartition}
	if r.cfg.Topics.Erasures != "" {
		inputs = append(inputs, r.cfg.Topics.Erasures)
	}
	opts := append(append(append([]kgo.Opt(nil), r.cfg.ClientOpts...), r.cfg.SessionOpts...),
		kgo.ConsumerGroup(r.cfg.Group),
		kgo.ConsumeTopics(inputs...),
		kgo.TransactionalID(r.cfg.TransactionalID),
		kgo.TransactionTimeout(r.cfg.TransactionTimeout),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// Transaction markers come through, so that a source whose
		// log ends in one (an upstream transactional producer, or the
		// repartition topic this group writes) counts as fully read.
		kgo.KeepControlRecords(),
		kgo.RequireStableFetchOffsets(),
		kgo.Balancers(kgo.RangeBalancer()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.RecordPartitioner(partitioner{manual: []string{r.cfg.Topics.State, r.cfg.Topics.Progress}, keyed: kgo.StickyKeyPartitioner(nil)}),
		kgo.OnPartitionsAssigned(r.onAssigned),
		kgo.OnPartitionsRevoked(r.onRevoked),
		kgo.OnPartitionsLost(r.onRevoked),
	)
	// The topics are checked, and the internal ones created, before the
	// session joins the group: a subscribed topic that appears later
	// makes the group rebalance and the first transaction abort.
	restore, err := kgo.NewClient(append(append(append([]kgo.Opt(nil), r.cfg.ClientOpts...), r.cfg.RestoreOpts...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxBytes(64<<20),
	)...)
	if err != nil {
		return fmt.Errorf("consume: kafka restore client: %w", err)
	}
	r.restore = restore
	r.mu.Lock()
	r.adm = kadm.NewClient(restore) // also read by Customer lookups
	r.mu.Unlock()
	defer restore.Close()
	if err := r.checkTopics(ctx); err != nil {
		return err
	}

	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return fmt.Errorf("consume: kafka client: %w", err)
	}
	r.sess = sess
	// Initialising the producer id now, before any restore, fences this
	// instance's previous incarnation (same transactional id) and aborts
	// its unfinished transaction, so the changelog is stable at once.
	if _, _, err := sess.Client().ProducerID(ctx); err != nil {
		sess.Close()
		return fmt.Errorf("consume: init transactional producer: %w", err)
	}
	progress, err := kgo.NewClient(append(append([]kgo.Opt(nil), r.cfg.ClientOpts...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{r.cfg.Topics.Progress: {0: kgo.NewOffset().AtStart()}}),
	)...)
	if err != nil {
		sess.Close()
		return fmt.Errorf("consume: kafka progress client: %w", err)
	}
	pctx, stopProgress := context.WithCancel(ctx)
	var readers sync.WaitGroup
	readers.Go(func() { readProgress(pctx, progress, r.board, r.log) })
	defer func() { stopProgress(); readers.Wait(); progress.Close() }()

	var runErr error
	for ctx.Err() == nil {
		if err := r.cycle(ctx); err != nil {
			if ctx.Err() == nil {
				runErr = err
			}
			break
		}
	}
	if err := r.awaitFlush(); err != nil {
		r.log.Warn("consume: ClickHouse did not confirm the last committed transaction's rows; the next owner writes them again from the changelog", "err", err)
	}
	r.log.Info("consume: leaving the group")
	sess.Close()
	r.mu.Lock()
	r.ready = false
	r.mu.Unlock()
	return runErr
}

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

func (r *Runner) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range assigned[r.cfg.Topics.Orders] {
		r.owned[p] = true
		r.pending[p] = true
		r.gen[p]++
	}
	r.ready = len(r.pending) == 0
	r.m.assigned.Set(float64(len(r.owned)))
	r.log.Info("consume: partitions assigned", "partitions", assigned[r.cfg.Topics.Orders])
}

func (r *Runner) onRevoked(_ context.Context, _ *kgo.Client, revoked map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range revoked[r.cfg.Topics.Orders] {
		delete(r.owned, p)
		delete(r.pending, p)
		r.dropTask(p)
		r.forgetGauges(p)
	}
	r.m.assigned.Set(float64(len(r.owned)))
	r.log.Info("consume: partitions revoked", "partitions", revoked[r.cfg.Topics.Orders])
}

func (r *Runner) forgetGauges(p int32) {
	l := strconv.Itoa(int(p))
	for _, topic := range []string{r.cfg.Topics.Orders, r.cfg.Topics.Email, r.cfg.Topics.Support, r.cfg.Topics.Erasures} {
		r.m.consumerLag.DeleteLabelValues(topic, l)
	}
	r.m.customers.DeleteLabelValues(l)
	r.m.timers.DeleteLabelValues(l)
	r.m.stateBytes.DeleteLabelValues(l)
	r.m.watermark.DeleteLabelValues(l)
	r.m.eventTimeLag.DeleteLabelValues(l)
}

// cycle runs one transaction: poll and process until the batch is full or
// CommitInterval has passed, fire timers, wait until ClickHouse has
// confirmed the previous transaction's rows, commit, then start writing
// this transaction's rows to ClickHouse, in the background while the next
// transaction is processed. ClickHouse thus only ever receives committed
// work (truth.go).
func (r *Runner) cycle(ctx context.Context) error {
	if err := r.checkPartitions(ctx); err != nil {
		return err
	}
	if r.sinkDown {
		if err := r.recoverSink(ctx); err != nil || ctx.Err() != nil {
			return err
		}
	}
	r.takeBarrier(ctx)
	start := r.now()
	if err := r.sess.Begin(); err != nil {
		return fmt.Errorf("consume: begin transaction: %w", err)
	}
	r.errMu.Lock()
	r.txErr = nil
	r.errMu.Unlock()
	r.txTrigs, r.txArrive, r.txGone = r.txTrigs[:0], r.txArrive[:0], r.txGone.reset()

	if err := r.process(ctx, start.Add(r.cfg.CommitInterval)); err != nil {
		return err
	}
	// From here on the transaction finishes even if ctx is done: a
	// graceful shutdown commits what was processed and writes it to
	// ClickHouse, and gives up ShutdownTimeout after ctx is done.
	fctx, cancel := graceContext(ctx, r.cfg.ShutdownTimeout)
	defer cancel()

	// Erasures: ClickHouse deletes the erased customers' rows once every
	// earlier row is in, before this transaction's rows are added (the
	// delete also drops the pending rows of theirs), and before it
	// commits, so that a crash replays the delete (erase.go).
	if len(r.txGone.erased) > 0 {
		err := r.awaitFlush()
		if err == nil {
			ectx, ecancel := context.WithTimeout(fctx, r.cfg.FlushTimeout)
			err = r.eraseRows(ectx)
			ecancel()
		}
		if err != nil {
			r.abortForSink(fctx, err)
			return nil
		}
	}
	r.mu.Lock()
	r.advance()
	r.mu.Unlock()
	offsets := r.commitOffsets()

	// The previous transaction's rows must be in ClickHouse before this
	// one commits: then a crash loses at most one committed
	// transaction's rows, which the next restore writes again.
	if err := r.awaitFlush(); err != nil {
		r.abortForSink(fctx, err)
		return nil
	}
	// Flush the producer first, so that a failed produce aborts.
	if err := r.sess.Client().Flush(fctx); err != nil {
		r.fail(fmt.Errorf("flush producer: %w", err))
	}
	r.errMu.Lock()
	txErr := r.txErr
	r.errMu.Unlock()
	if txErr != nil {
		r.log.Error("consume: aborting transaction", "err", txErr)
	}
	// From the commit until the sink confirms, ClickHouse may lack rows
	// that Kafka has committed.
	r.m.unconfirmed.Set(1)
	parts, was := r.unconfirm()
	committed, err := r.sess.End(kgo.PreTxnCommitFnContext(fctx, offsets), kgo.TransactionEndTry(txErr == nil))
	if err != nil || !committed {
		r.m.unconfirmed.Set(0) // the sink has nothing of this transaction, and the previous one is confirmed
	}
	if err == nil && !committed {
		// Nothing changed in Kafka: what ClickHouse was confirmed to
		// hold it still holds. (After an error the outcome is unknown,
		// and the next session writes everything again.)
		r.mu.Lock()
		maps.Copy(r.confirmed, was)
		r.mu.Unlock()
	}
	if err != nil {
		r.m.txAborts.Inc()
		r.dropState()
		return fmt.Errorf("consume: end transaction: %w", err)
	}
	if !committed {
		r.m.txAborts.Inc()
		r.log.Info("consume: transaction aborted; state will be restored from the changelog", "err", txErr)
		r.dropState()
		if txErr != nil {
			// A failed write or an unreachable registry: wait
			// before replaying, doubling up to 30 s.
			r.backoff = min(max(2*r.backoff, 500*time.Millisecond), 30*time.Second)
			select {
			case <-ctx.Done():
			case <-time.After(r.backoff):
			}
		}
		return nil
	}
	// Committed: its rows go to ClickHouse now, in the background.
	r.flushDeadline = time.Now().Add(r.cfg.FlushTimeout)
	fl, flCancel := context.WithDeadline(context.WithoutCancel(ctx), r.flushDeadline)
	flushed, done := r.dep.Sink.StartFlush(fl), make(chan error, 1)
	go func() {
		err := <-flushed
		if err == nil {
			r.m.unconfirmed.Set(0)
		}
		done <- err
	}()
	r.flushing, r.flushCancel, r.flushParts = done, flCancel, parts

	r.backoff = 0
	r.m.txCommits.Inc()
	end := r.now()
	for i := range r.txTrigs {
		t := &r.txTrigs[i]
		r.m.triggers.WithLabelValues(string(t.Kind), string(t.PrimaryReason), string(t.RecommendedAction), string(t.ValueTier), string(t.Arm())).Inc()
		if _, ok := t.Evidence["budget_delayed_days"]; ok {
			r.m.budgetDelayed.Inc()
		}
	}
	for _, at := range r.txArrive {
		r.m.triggerLatency.Observe(math.Max(0, float64(end.UnixMilli()-at)/1000))
	}
	r.m.batchSeconds.Observe(end.Sub(start).Seconds())
	r.txGone.count(r.m)
	return nil
}

// abortForSink aborts the open transaction because ClickHouse did not
// answer within the flush timeout (err), and has the next cycle wait for
// it with no transaction open (recoverSink), so that a slow ClickHouse
// costs one aborted transaction and no rebalance.
func (r *Runner) abortForSink(ctx context.Context, err error) {
	r.log.Warn("consume: ClickHouse did not answer in time; aborting this transaction and waiting for ClickHouse with none open",
		"err", err, "flush_timeout", r.cfg.FlushTimeout)
	_, _ = r.sess.End(ctx, kgo.TryAbort)
	r.m.txAborts.Inc()
	r.dropState()
	r.sinkDown = true
}

// awaitFlush waits for the ClickHouse write of the last committed
// transaction's rows and returns its outcome. It waits FlushTimeout from
// the write's start at most, even if the driver is slow to give up (a
// connect to a frozen server); the write then goes on in the background
// until it ends, and the sink's next flush waits for it.
func (r *Runner) awaitFlush() error {
	if r.flushing == nil {
		return nil
	}
	defer func() { r.flushCancel(); r.flushing, r.flushCancel, r.flushParts = nil, nil, nil }()
	timer := time.NewTimer(time.Until(r.flushDeadline))
	defer timer.Stop()
	select {
	case err := <-r.flushing:
		if err == nil {
			r.mu.Lock()
			maps.Copy(r.confirmed, r.flushParts)
			r.mu.Unlock()
		}
		return err
	case <-timer.C:
		return fmt.Errorf("consume: ClickHouse did not confirm within the flush timeout (%s)", r.cfg.FlushTimeout)
	}
}

// unconfirm returns the partitions (and their generations) of the
// transaction about to commit, and marks them as not confirmed by
// ClickHouse until its rows are; was is what they were.
func (r *Runner) unconfirm() (parts, was map[int32]uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	parts = make(map[int32]uint64, len(r.tasks))
	was = map[int32]uint64{}
	for p := range r.tasks {
		parts[p] = r.gen[p]
		if g, ok := r.confirmed[p]; ok {
			was[p] = g
			delete(r.confirmed, p)
		}
	}
	return parts, was
}

// recoverSink runs between transactions after ClickHouse failed to confirm
// a committed transaction's rows: it restores the tasks (which gives the
// sink their rows again) and writes those rows, retrying until ClickHouse
// confirms or ctx is done. No transaction is open meanwhile, so an outage
// of any length costs one aborted transaction and no rebalance: the
// group's heartbeats go on.
func (r *Runner) recoverSink(ctx context.Context) error {
	if err := r.restorePending(ctx); err != nil {
		var ce configError
		if errors.As(err, &ce) {
			return err
		}
		r.log.Warn("consume: restore failed; it is retried in the next transaction", "err", err)
	}
	for ctx.Err() == nil {
		if err := <-r.dep.Sink.StartFlush(ctx); err != nil {
			r.log.Warn("consume: ClickHouse still unavailable; waiting with no transaction open", "err", err)
			continue
		}
		r.sinkDown = false
		r.m.unconfirmed.Set(0)
		r.log.Info("consume: ClickHouse confirmed the restored rows; resuming")
		return nil
	}
	return nil
}

// process polls and applies records until deadline, MaxPollRecords, a
// failure, ctx is done, or the sink's batch needs a flush.
func (r *Runner) process(ctx context.Context, deadline time.Time) error {
	polled := 0
	for polled < r.cfg.MaxPollRecords && ctx.Err() == nil {
		left := time.Until(deadline)
		if left <= 0 {
			break
		}
		pollCtx, cancel := context.WithTimeout(ctx, left)
		fetches := r.sess.PollRecords(pollCtx, r.cfg.MaxPollRecords-polled)
		cancel()
		if fetches.IsClientClosed() {
			return errors.New("consume: kafka client closed")
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				r.log.Warn("consume: fetch error", "topic", topic, "partition", p, "err", err)
			}
		})
		// Every polled record must be queued: its offset is in the
		// commit unless a queued head holds it back.
		if err := r.restorePending(ctx); err != nil {
			var ce configError
			if errors.As(err, &ce) {
				return err // a changelog record that cannot be restored
			}
			r.fail(fmt.Errorf("restore: %w", err)) // the records of unrestored tasks cannot be applied
		}
		r.prefetchSchemas(ctx, fetches)
		r.mu.Lock()
		fetches.EachPartition(func(fp kgo.FetchTopicPartition) {
			if len(fp.Records) == 0 {
				if t := r.tasks[fp.Partition]; t != nil && fp.Err == nil {
					r.noteEnd(t, fp)
				}
				return
			}
			if t := r.tasks[fp.Partition]; t != nil {
				t.fetched = append(t.fetched, fp)
				return
			}
			// Revoked (or re-assigned) while this batch ran: abort
			// rather than commit offsets past records that were not
			// applied.
			r.fail(fmt.Errorf("records of %s/%d arrived for a task this instance does not hold", fp.Topic, fp.Partition))
		})
		// Decoding runs under r.mu and so must not wait for the
		// registry: prefetchSchemas looked the schemas up, and an id
		// still not cached fails its record as registry.unavailable
		// (transient: the transaction aborts and the batch replays).
		dctx, nowait := context.WithCancel(context.WithoutCancel(ctx))
		nowait()
		r.eachTask(func(t *task) {
			for _, fp := range t.fetched {
				r.enqueue(dctx, t, fp, r.barrier)
			}
			clear(t.fetched)
			t.fetched = t.fetched[:0]
			r.drain(t, r.barrier)
		})
		r.mu.Unlock()
		polled += fetches.NumRecords()
		if r.failed() {
			break // the transaction aborts; no use reading on
		}
		if r.dep.Sink.NeedsFlush(r.now()) {
			break // a full ClickHouse batch: commit it
		}
	}
	return nil
}

// fail marks the open transaction for abort.
func (r *Runner) fail(err error) {
	r.errMu.Lock()
	r.txErr = errors.Join(r.txErr, err)
	r.errMu.Unlock()
}

func (r *Runner) failed() bool {
	r.errMu.Lock()
	defer r.errMu.Unlock()
	return r.txErr != nil
}

// graceContext is not cancelled with ctx but grace after it.
func graceContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(grace, cancel) })
	return gctx, func() { stop(); cancel() }
}

// dropState forgets every task after an abort, and the aborted
// transaction's ClickHouse rows: the session rewound to the committed
// offsets, and the changelog holds the matching state, which the restores
// write to ClickHouse again.
func (r *Runner) dropState() {
	r.dep.Sink.Discard()
	r.mu.Lock()
	defer r.mu.Unlock()
	for p := range r.owned {
		r.pending[p] = true
		r.dropTask(p)
	}
	r.ready = false
}

// eachTask runs fn on every task, several tasks at once (up to GOMAXPROCS),
// then collects their outputs in partition order, so the records of a
// transaction come out in the same order whatever the scheduling. It runs
// with r.mu held; fn must touch only its task and thread-safe dependencies.
func (r *Runner) eachTask(fn func(t *task)) {
	ts := make([]*task, 0, len(r.tasks))
	for _, t := range r.tasks {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(a, b *task) int { return cmp.Compare(a.p, b.p) })
	if workers := min(runtime.GOMAXPROCS(0), len(ts)); workers <= 1 {
		for _, t := range ts {
			fn(t)
		}
	} else {
		var next atomic.Int32
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for i := next.Add(1) - 1; int(i) < len(ts); i = next.Add(1) - 1 {
					fn(ts[i])
				}
			})
		}
		wg.Wait()
	}
	for _, t := range ts {
		r.collect(t)
	}
}

// collect moves t's outputs to the open transaction.
func (r *Runner) collect(t *task) {
	o := &t.out
	if o.err != nil {
		r.fail(o.err)
	}
	for _, rec := range o.recs {
		r.produce(rec)
	}
	r.txTrigs = append(r.txTrigs, o.trigs...)
	r.txArrive = append(r.txArrive, o.arrive...)
	r.txGone.add(&o.gone)
	clear(o.recs)
	*o = taskOut{recs: o.recs[:0], trigs: o.trigs[:0], arrive: o.arrive[:0], gone: o.gone.reset()}
}

func (r *Runner) deadLetter(t *task, rec *kgo.Record, err error) {
	reason := "internal"
	var de *decode.Error
	if errors.As(err, &de) {
		reason = string(de.Reason)
	}
	r.m.dlq.WithLabelValues(reason).Inc()
	r.m.events.WithLabelValues(rec.Topic, "dlq").Inc()
	dl := kafka.DeadLetter(rec, err, r.cfg.DLQSampleBytes)
	r.dep.Sink.AddDeadLetter(&dl)
	t.out.recs = append(t.out.recs, kafka.DeadLetterRecord(r.cfg.Topics.DLQ, rec, err, r.cfg.DLQMaxValueBytes))
}

// emit sends a trigger of task t; arrive is the arrival of the event that
// made it due, or -1 for a timer.
func (r *Runner) emit(t *task, tr *event.Trigger, arrive int64) {
	val, err := r.dep.Triggers.Encode(nil, tr)
	if err != nil {
		t.out.fail(fmt.Errorf("encode trigger %s: %w", tr.TriggerID, err))
		return
	}
	raw, err := json.Marshal(tr)
	if err != nil {
		t.out.fail(fmt.Errorf("encode trigger %s for the changelog: %w", tr.TriggerID, err))
		return
	}
	t.pend = append(t.pend, raw)
	r.dep.Sink.AddTrigger(tr)
	t.out.recs = append(t.out.recs, kafka.TriggerRecord(r.cfg.Topics.Triggers, tr, val))
	t.out.trigs = append(t.out.trigs, *tr)
	if arrive >= 0 {
		t.out.arrive = append(t.out.arrive, arrive)
	}
}

// produce sends rec in the open transaction.
func (r *Runner) produce(rec *kgo.Record) {
	// A record the producer refuses would fail this transaction and every
	// replay of it; inputs are bounded so that none is, and this says so
	// loudly if one slips through.
	if err := kafka.CheckSize(rec, 0); err != nil {
		r.fail(fmt.Errorf("consume: %w", err))
		return
	}
	r.sess.Produce(context.Background(), rec, func(rec *kgo.Record, err error) {
		if err != nil {
			r.fail(fmt.Errorf("produce to %s: %w", rec.Topic, err))
		}
	})
}

// advance fires each task's timers, then writes the changed customers to
// the changelog and the sink. It runs with r.mu held.
func (r *Runner) advance() {
	now := r.now()
	g, ok := r.board.pipelineTime(r.localProgress())
	r.eachTask(func(t *task) {
		r.follow(t, g, ok, now)
		trigs := t.eng.Advance(t.trigBuf[:0], now)
		for i := range trigs {
			r.emit(t, &trigs[i], -1)
		}
		t.trigBuf = trigs[:0]
		t.eng.TakeClosedDays(func(a *event.Aggregate) { t.stamp(a); r.dep.Sink.AddAggregate(a) })
		// Evicted customers' tombstones before the changed customers'
		// snapshots: an id evicted and seen again is a new customer.
		changed := r.evicted(t)
		t.eng.TakeDirty(func(c *lapse.Customer) {
			changed = true
			rec := t.arena.record()
			rec.Topic, rec.Partition = r.cfg.Topics.State, t.p
			rec.Key = t.arena.bytes(func(b []byte) []byte { return append(b, c.ID()...) })
			rec.Value = t.arena.bytes(func(b []byte) []byte { return t.eng.AppendSnapshot(b, c) })
			t.noteSnapshot(len(rec.Value))
			t.out.recs = append(t.out.recs, rec)
			t.aggBuf = c.Aggregate(t.eng)
			t.stamp(&t.aggBuf)
			r.dep.Sink.AddAggregate(&t.aggBuf)
		})
		if t.eng.TakeMetaDirty() || changed || t.followed {
			t.out.recs = append(t.out.recs, &kgo.Record{Topic: r.cfg.Topics.State, Partition: t.p, Key: []byte(metaKey), Value: t.eng.AppendMeta(nil)})
			t.followed = false
		}
		if t.epochDirty {
			t.out.recs = append(t.out.recs, &kgo.Record{Topic: r.cfg.Topics.State, Partition: t.p, Key: []byte(epochKey), Value: appendEpoch(nil, t.epoch)})
			t.epochDirty = false
		}
		if len(t.pend) > 0 || t.pendChunks > 0 {
			recs, err := r.pendingRecords(t)
			if err != nil {
				t.out.fail(err)
			}
			t.out.recs = append(t.out.recs, recs...)
		}
		if t.fwdNext != t.fwdWritten {
			t.out.recs = append(t.out.recs, &kgo.Record{Topic: r.cfg.Topics.State, Partition: t.p, Key: []byte(fwdKey), Value: appendForwarded(nil, t.fwdNext)})
			t.fwdWritten = t.fwdNext
		}
		r.publish(t)
		r.gauges(t, now)
	})
}

func (r *Runner) gauges(t *task, now time.Time) {
	l := strconv.Itoa(int(t.p))
	r.m.customers.WithLabelValues(l).Set(float64(t.eng.Len()))
	r.m.timers.WithLabelValues(l).Set(float64(t.eng.PendingTimers()))
	r.m.stateBytes.WithLabelValues(l).Set(t.stateBytes())
	r.modelGauges(t)
	if wm := t.eng.Watermark(); wm != math.MinInt64 {
		r.m.watermark.WithLabelValues(l).Set(float64(wm) / 1000)
		r.m.eventTimeLag.WithLabelValues(l).Set(float64(now.UnixMilli()-wm) / 1000)
	}
}

// Ready reports whether the group is joined and every owned partition is
// restored.
func (r *Runner) Ready() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready && r.sess != nil
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
