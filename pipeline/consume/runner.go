package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/event"
)

// env is what a runner and its tasks share: the configuration and
// thread-safe collaborators. nparts changes only between sessions, under
// Runner.mu, which tasks run under.
type env struct {
	cfg    Config
	dep    Deps
	log    *slog.Logger
	m      *metrics
	now    func() time.Time
	keys   KeyPartitioner
	nparts int // partitions of each input topic
}

// Runner is one winback instance's stream processor: it runs the group
// session, takes and drops tasks as partitions are assigned and revoked,
// and drives the transaction cycle (txn.go) over the tasks it holds.
type Runner struct {
	*env

	sess    *kgo.GroupTransactSession
	restore *kgo.Client // reads the changelog, read_committed, no group
	adm     *kadm.Client
	board   *board    // every task's published progress, from the progress topic
	standby *standbys // warm copies of other members' tasks
	checked time.Time // when the input partition counts were last checked

	mu      sync.Mutex
	tasks   map[int32]*task  // restored tasks owned now
	owned   map[int32]bool   // partitions assigned to us
	pending map[int32]bool   // assigned, not yet restored
	gen     map[int32]uint64 // bumped on every assignment, to spot a stale restore
	ready   bool             // joined, and nothing left to restore
	// wake ends the poll under way, if any: an assignment's tasks must
	// restore, which starts after the poll returns.
	wake context.CancelFunc

	barrier barrier // this cycle's forwarding barrier
	// followFailed: followTime could not list the offsets last time;
	// followWaits: a task of unknown age held it back (each warns once).
	followFailed, followWaits bool
	// budget: how many more queued records the tasks may apply in the
	// open transaction (max_poll_records, shared; set between
	// transactions when budgeted).
	budget   atomic.Int64
	budgeted bool

	// The restore under way in the background, if any, and when a failed
	// one may start again (restorePending; the processing goroutine's).
	restoring    *restoreJob
	restoreAfter time.Time

	backoff time.Duration // wait after a failed transaction

	// The open transaction's work, and the ClickHouse write of the
	// previous, committed one's rows, under way while cur is processed
	// (truth.go). sinkDown: the last write failed, and no transaction
	// begins before the restored rows are written.
	cur      txn
	prev     flush
	sinkDown bool
	// confirmed[p] is the assignment generation (gen) of partition p
	// whose committed rows ClickHouse holds, every one of them: a restore
	// of p in the same generation (after an abort) writes nothing again.
	confirmed map[int32]uint64
}

// New checks the configuration and builds a Runner. It connects nothing:
// Run does.
func New(cfg Config, dep Deps) (*Runner, error) {
	switch {
	case dep.Decoder == nil, dep.Sink == nil, dep.Outputs == nil:
		return nil, errors.New("consume: Decoder, Sink and Outputs are required")
	case cfg.Group == "" || cfg.TransactionalID == "":
		return nil, errors.New("consume: Group and TransactionalID are required")
	case cfg.Topics.Orders == "" || cfg.Topics.Email == "" || cfg.Topics.Support == "" || cfg.Topics.State == "":
		return nil, errors.New("consume: every topic must be named")
	}
	if cfg.MaxPollRecords <= 0 {
		cfg.MaxPollRecords = 1000000
	}
	if len(cfg.Balancers) == 0 {
		cfg.Balancers = []kgo.GroupBalancer{TaskBalancer()}
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
	if cfg.StandbyReplicas < 0 {
		return nil, errors.New("consume: StandbyReplicas must not be negative")
	}
	r := &Runner{
		env:       &env{cfg: cfg, dep: dep, log: dep.Logger, m: newMetrics(dep.Registerer), now: dep.Now, keys: Partitioner()},
		tasks:     map[int32]*task{},
		owned:     map[int32]bool{},
		pending:   map[int32]bool{},
		gen:       map[int32]uint64{},
		confirmed: map[int32]uint64{},
		board:     newBoard(),
	}
	r.m.zero(cfg.Topics)
	r.standby = newStandbys(r, cfg.StandbyReplicas)
	if cfg.StandbyReplicas > 0 {
		// The task balancer reads and reports this member's standbys.
		r.cfg.Balancers = slices.Clone(cfg.Balancers)
		for i, b := range r.cfg.Balancers {
			if _, ok := b.(taskBalancer); ok {
				r.cfg.Balancers[i] = taskBalancer{sb: r.standby}
			}
		}
	}
	return r, nil
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
	inputs := r.inputTopics()
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
		kgo.Balancers(r.cfg.Balancers...),
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

	// The standbys read with their own client, there before the session
	// joins: the first assignment may list standbys.
	if r.cfg.StandbyReplicas > 0 {
		standby, err := kgo.NewClient(append(append(append([]kgo.Opt(nil), r.cfg.ClientOpts...), r.cfg.StandbyOpts...),
			kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.KeepControlRecords(),                    // a standby at a commit marker is at the last stable offset
			kgo.ConsumeResetOffset(kgo.NoResetOffset()), // past the log start: dropped, not silently skipped
		)...)
		if err != nil {
			return fmt.Errorf("consume: kafka standby client: %w", err)
		}
		r.standby.open(standby)
		sctx, stopStandby := context.WithCancel(ctx)
		var keeper sync.WaitGroup
		keeper.Go(func() { r.standby.run(sctx) })
		defer func() { stopStandby(); keeper.Wait(); r.standby.close(); standby.Close() }()
	}
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return fmt.Errorf("consume: kafka client: %w", err)
	}
	r.mu.Lock() // Ready reads it
	r.sess = sess
	r.mu.Unlock()
	defer r.stopRestore() // before the restore client closes
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

func (r *Runner) onAssigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range assigned[r.cfg.Topics.Orders] {
		r.owned[p] = true
		r.gen[p]++
		r.markPending(cl, p)
	}
	r.ready = len(r.pending) == 0
	if !r.ready && r.wake != nil {
		r.wake()
	}
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
	if len(revoked[r.cfg.Topics.Orders]) > 0 { // a cooperative rebalance that moved nothing of ours calls with none
		r.log.Info("consume: partitions revoked", "partitions", revoked[r.cfg.Topics.Orders])
	}
}

func (r *Runner) forgetGauges(p int32) {
	l := strconv.Itoa(int(p))
	for _, topic := range []string{r.cfg.Topics.Orders, r.cfg.Topics.Email, r.cfg.Topics.Support, r.cfg.Topics.Erasures, r.cfg.Topics.Repartition} {
		r.m.consumerLag.DeleteLabelValues(topic, l)
		r.m.consumerUncommitted.DeleteLabelValues(topic, l)
	}
	r.m.model.forget(l)
	r.m.customers.DeleteLabelValues(l)
	r.m.timers.DeleteLabelValues(l)
	r.m.stateBytes.DeleteLabelValues(l)
	r.m.watermark.DeleteLabelValues(l)
	r.m.eventTimeLag.DeleteLabelValues(l)
}

// fail marks the open transaction for abort.
func (r *Runner) fail(err error) { r.cur.fail(err) }

func (r *Runner) failed() bool { return r.cur.failure() != nil }

// graceContext is not cancelled with ctx but grace after it.
func graceContext(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	gctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(grace, cancel) })
	return gctx, func() { stop(); cancel() }
}

// Ready reports whether the group is joined and every owned partition is
// restored.
func (r *Runner) Ready() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ready && r.sess != nil
}
