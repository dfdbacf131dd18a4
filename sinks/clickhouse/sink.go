package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/winback/winback/config"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/schemas"
	"github.com/winback/winback/sinks/clickhouse/internal/chsql"
)

// Defaults for the zero fields of Config.
const (
	DefaultDatabase        = "winback"
	DefaultBatchRows       = 100000
	DefaultMaxRetryBackoff = 10 * time.Second
	DefaultActiveDays      = 90
	DefaultAttemptTimeout  = time.Minute
	DefaultDialTimeout     = 5 * time.Second
)

// minRetryBackoff is the first pause after a failed insert.
const minRetryBackoff = 100 * time.Millisecond

// tableNames are the tables the sink writes.
var tableNames = chsql.Tables

// Config configures the sink. Zero fields take the defaults above.
type Config struct {
	// DSN is a native-protocol DSN: clickhouse://user:pass@host:9000/db.
	// Its database is only the connection's default; Database names the
	// one winback uses.
	DSN string
	// Database holds winback's tables and views (created if missing); a
	// plain identifier. Default "winback".
	Database string
	// BatchRows: NeedsFlush reports true from this many pending rows.
	BatchRows int
	// MaxRetryBackoff caps the pause between insert attempts.
	MaxRetryBackoff time.Duration
	// ActiveDays: a customer counts as active in the retention views if
	// they ordered within this many days. Rendered into the views by
	// Migrate.
	ActiveDays int
	// DLQSampleBytes caps dlq_records.sample (default 256).
	DLQSampleBytes int
	// AttemptTimeout bounds one insert attempt (default 1 min).
	AttemptTimeout time.Duration
	// DedupWindow is non_replicated_deduplication_window on servers with
	// insert_deduplication_token (default 1000 blocks).
	DedupWindow int
	// Now is the clock for updated_at; nil means time.Now.
	Now func() time.Time
	// Cluster, when set, is the name of a cluster in the servers'
	// remote_servers: winback's tables become local tables on every node
	// under Distributed tables sharded by customer (cluster.go, and
	// chsql's cluster.go for the DDL). Empty: one node.
	Cluster string
	// Replicated makes the local tables Replicated*MergeTree (cluster
	// mode; the servers need ZooKeeper and {shard}, {replica} macros).
	Replicated bool
	// TTL: how many days of daily rows, triggers and dead letters
	// ClickHouse keeps (0: forever), on servers with table TTLs (19.6+;
	// Features.TTL); Open warns that 18.16 ignores them.
	TTL TTL

	lock chsql.LockOptions // the migration lock's timing (tests)
}

func (c *Config) defaults() {
	if c.Database == "" {
		c.Database = DefaultDatabase
	}
	if c.BatchRows <= 0 {
		c.BatchRows = DefaultBatchRows
	}
	if c.MaxRetryBackoff <= 0 {
		c.MaxRetryBackoff = DefaultMaxRetryBackoff
	}
	if c.ActiveDays <= 0 {
		c.ActiveDays = DefaultActiveDays
	}
	if c.DLQSampleBytes <= 0 {
		c.DLQSampleBytes = chsql.DefaultSampleBytes
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = DefaultAttemptTimeout
	}
	if c.DedupWindow <= 0 {
		c.DedupWindow = chsql.DefaultDedupWindow
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Features says which version-dependent features the sink uses on the
// server it is connected to; see the version matrix in the package doc.
type Features = chsql.Features

// TTL says how many days of rows ClickHouse keeps per table (Config.TTL).
type TTL = chsql.TTL

// MigrationChecksumError is returned by Migrate when a migration file was
// changed after it was applied; File names it.
type MigrationChecksumError = chsql.ChecksumError

// Sink writes customer aggregates, daily snapshots, triggers and
// dead-letter records to ClickHouse in batches. Add*, Pending and
// NeedsFlush are cheap and do no I/O; Flush writes. It is safe for
// concurrent use, but Flush calls are serialised.
type Sink struct {
	cfg      Config
	log      *slog.Logger
	conn     driver.Conn
	version  chsql.Version
	features Features
	m        *metrics
	cluster  *clusterConn // nil on one node

	flushMu sync.Mutex // one Flush at a time

	mu      sync.Mutex
	pending *chsql.Batch
	// spare is the batch of the last flush that wrote everything, empty
	// again, for the next StartFlush to take as its pending batch: its
	// map and row blocks keep their size, so a batch does not grow them
	// again from nothing (rehashing, zeroing) after every commit.
	spare *chsql.Batch
}

// ErrDSN marks a DSN Open cannot use (it does not parse, or names another
// protocol): no retry fixes it.
var ErrDSN = errors.New("clickhouse: DSN")

// Open connects to ClickHouse over the native protocol, reads the
// server's version (SELECT version()) and logs the features it will use.
// It does not retry: a server that does not answer is an error. Metrics
// are registered on reg (nil: not registered).
func Open(ctx context.Context, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Sink, error) {
	cfg.defaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if !chsql.ValidDatabase(cfg.Database) {
		return nil, fmt.Errorf("clickhouse: database %q is not a plain identifier (letters, digits, _)", cfg.Database)
	}
	if cfg.Cluster != "" && !chsql.ValidCluster(cfg.Cluster) {
		return nil, fmt.Errorf("%w: name %q is not a plain identifier (letters, digits, _)", ErrCluster, cfg.Cluster)
	}
	if cfg.Replicated && cfg.Cluster == "" {
		return nil, fmt.Errorf("%w: replicated tables need a cluster name", ErrCluster)
	}
	opts, err := clickhouse.ParseDSN(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDSN, err)
	}
	if opts.Protocol != clickhouse.Native {
		return nil, fmt.Errorf("%w %q: only the native protocol is supported (clickhouse://host:9000)", ErrDSN, redact(cfg.DSN))
	}
	if opts.Auth.Database == cfg.Database {
		// It may not exist yet; Migrate creates it. Every query names
		// the database anyway.
		opts.Auth.Database = ""
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = cfg.AttemptTimeout
	}
	if opts.MaxOpenConns == 0 {
		opts.MaxOpenConns = len(tableNames) // Flush inserts every table at once
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: open %s: %w", redact(cfg.DSN), err)
	}
	raw, err := serverVersion(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: %s: SELECT version(): %w", redact(cfg.DSN), err)
	}
	v, err := chsql.ParseVersion(raw)
	if err != nil {
		conn.Close()
		return nil, err
	}
	features := chsql.FeaturesOf(v)
	var cluster *clusterConn
	if cfg.Cluster != "" {
		if cluster, err = openCluster(ctx, conn, opts, cfg, features); err != nil {
			conn.Close()
			return nil, err
		}
	}
	m, err := newMetrics(reg)
	if err != nil {
		conn.Close()
		if cluster != nil {
			cluster.close()
		}
		return nil, fmt.Errorf("clickhouse: metrics: %w", err)
	}
	s := &Sink{
		cfg:      cfg,
		log:      logger,
		conn:     conn,
		version:  v,
		features: features,
		m:        m,
		cluster:  cluster,
		pending:  chsql.NewBatch(cfg.DLQSampleBytes),
	}
	f := s.features
	logger.Info("clickhouse connected", "addr", strings.Join(opts.Addr, ","), "database", cfg.Database, "server_version", v.String(),
		"insert_deduplication_token", f.InsertDedupToken, "low_cardinality", f.LowCardinality,
		"async_insert_available", f.AsyncInsert, "async_insert_used", false)
	if cfg.TTL.Set() && !f.TTL {
		logger.Warn("clickhouse table TTLs ignored: the server has none (19.6+); old rows stay until deleted by hand (docs/scaling.md)",
			"server_version", v.String(), "ttl", fmt.Sprintf("%+v", cfg.TTL))
	}
	if cluster != nil {
		logger.Info("clickhouse cluster mode", "cluster", cluster.String(), "replicated", cfg.Replicated,
			"ddl_nodes", cluster.hosts(), "insert_settings", fmt.Sprint(cluster.settings))
	}
	return s, nil
}

// redact hides the password in a DSN for logs and errors: the userinfo's
// and a password query parameter's (config.Redact).
func redact(dsn string) string { return config.Redact(dsn) }

// ServerVersion is the server's SELECT version().
func (s *Sink) ServerVersion() string { return s.version.String() }

// Features is what the sink uses on this server.
func (s *Sink) Features() Features { return s.features }

// Migrate creates the database, tables and views, or brings them up to
// date; see package doc. Running it again is a no-op; a migration file
// changed after it was applied is a *MigrationChecksumError.
func (s *Sink) Migrate(ctx context.Context) error {
	_, err := chsql.Apply(ctx, s.migrationExecutor(), schemas.ClickHouseMigrations(), s.migrationParams(), s.log)
	return err
}

// migrationExecutor runs the migrations: on the connected node, or in
// cluster mode on every node where a statement says so.
func (s *Sink) migrationExecutor() chsql.Executor {
	if s.cluster != nil {
		return clusterExecutor{executor{s.conn}, s.cluster}
	}
	return executor{s.conn}
}

func (s *Sink) migrationParams() chsql.Params {
	return chsql.Params{
		Database:    s.cfg.Database,
		ActiveDays:  s.cfg.ActiveDays,
		Server:      s.version,
		Features:    s.features,
		DedupWindow: s.cfg.DedupWindow,
		Cluster:     chsql.Cluster{Name: s.cfg.Cluster, Replicated: s.cfg.Replicated},
		Lock:        s.cfg.lock,
		TTL:         s.cfg.TTL,
	}
}

// Add adds rows to the pending batch (as AddAggregate, AddTrigger and
// AddDeadLetter do) under one lock.
func (s *Sink) Add(rows *event.Rows) {
	s.mu.Lock()
	for i := range rows.Aggregates {
		s.pending.AddAggregate(&rows.Aggregates[i])
	}
	for i := range rows.Triggers {
		s.pending.AddTrigger(&rows.Triggers[i])
	}
	for i := range rows.DeadLetters {
		s.pending.AddDeadLetter(&rows.DeadLetters[i])
	}
	s.m.pending.Set(float64(s.pending.Len()))
	s.mu.Unlock()
}

// AddAggregate adds a customer's row to customer_aggregates (and so,
// through customer_daily_feed, to customer_daily for the UTC day of
// a.AsOf). Within the pending batch only the latest version per
// customer-day is kept.
func (s *Sink) AddAggregate(a *event.Aggregate) {
	s.mu.Lock()
	s.pending.AddAggregate(a)
	s.m.pending.Set(float64(s.pending.Len()))
	s.mu.Unlock()
}

// AddTrigger adds a trigger's row to winback_triggers.
func (s *Sink) AddTrigger(t *event.Trigger) {
	s.mu.Lock()
	s.pending.AddTrigger(t)
	s.m.pending.Set(float64(s.pending.Len()))
	s.mu.Unlock()
}

// AddDeadLetter adds a dead-lettered record's row to dlq_records; its
// sample is cut to Config.DLQSampleBytes.
func (s *Sink) AddDeadLetter(d *event.DeadLetter) {
	s.mu.Lock()
	s.pending.AddDeadLetter(d)
	s.m.pending.Set(float64(s.pending.Len()))
	s.mu.Unlock()
}

// Discard drops the pending rows, those no flush has taken yet: the rows
// of a transaction that aborted. A flush under way keeps its own.
func (s *Sink) Discard() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.pending.Len(); n > 0 {
		s.m.discarded.Add(float64(n))
	}
	s.pending = chsql.NewBatch(s.cfg.DLQSampleBytes)
	s.m.pending.Set(0)
}

// Pending is the number of rows the next Flush will write.
func (s *Sink) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending.Len()
}

// NeedsFlush reports whether the pending rows and held more, which the
// caller has yet to add, make BatchRows rows. (How long rows wait is the
// stream's commit interval: they are written at every commit.)
func (s *Sink) NeedsFlush(held int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pending.Len()+held >= s.cfg.BatchRows
}

// Flush writes every pending row and returns once ClickHouse has confirmed
// them. On an error it retries with capped, jittered exponential backoff
// until ctx is done; then it returns ctx's error (wrapping the last insert
// error) and the unwritten rows stay pending for the next Flush. Rows added
// while Flush runs go to the next one.
func (s *Sink) Flush(ctx context.Context) error { return <-s.StartFlush(ctx) }

// StartFlush is Flush in the background: it takes the pending rows at once
// (rows added after it returns go to the next flush), writes them, and
// sends the outcome on the returned channel. Flushes run one at a time; a
// StartFlush waits for the previous one to finish.
func (s *Sink) StartFlush(ctx context.Context) <-chan error {
	done := make(chan error, 1)
	s.flushMu.Lock() // unlocked when this flush ends
	start := time.Now()
	s.mu.Lock()
	b := s.pending
	if b.Len() > 0 {
		if s.pending = s.spare; s.pending == nil {
			s.pending = chsql.NewBatch(s.cfg.DLQSampleBytes)
		}
		s.spare = nil
	}
	s.mu.Unlock()
	if b.Len() == 0 {
		s.flushMu.Unlock()
		done <- nil
		return done
	}
	go func() {
		defer s.flushMu.Unlock()
		err := s.write(ctx, b)
		s.m.flush.Observe(time.Since(start).Seconds())
		done <- err
	}()
	return done
}

// write inserts b's tables and drops what was written; whatever was not
// goes back in front of the pending rows.
func (s *Sink) write(ctx context.Context, b *chsql.Batch) error {
	// The tables are independent, so they are inserted at the same time,
	// one connection each: ClickHouse works on them in parallel, and the
	// flush takes as long as the largest table instead of their sum.
	tables := b.Build(s.cfg.Now(), s.features.InsertDedupToken)
	if err := s.deleteEvicted(ctx, b); err != nil { // erase.go
		s.mu.Lock()
		defer s.mu.Unlock()
		s.pending.Merge(b)
		s.m.pending.Set(float64(s.pending.Len()))
		return err
	}
	errs := make([]error, len(tables))
	var wg sync.WaitGroup
	for i, t := range tables {
		wg.Go(func() { errs[i] = s.insertRetrying(ctx, t) })
	}
	wg.Wait()
	for i, t := range tables {
		if errs[i] == nil {
			b.Drop(t.Name)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		s.pending.Merge(b)
		s.m.pending.Set(float64(s.pending.Len()))
		return err
	}
	if b.Len() == 0 && len(b.Evicted()) == 0 {
		s.spare = b // every table dropped: as empty as a new batch
	}
	s.m.pending.Set(float64(s.pending.Len()))
	return nil
}

func (s *Sink) insertRetrying(ctx context.Context, t *chsql.Table) error {
	backoff := minRetryBackoff
	for attempt := 1; ; attempt++ {
		err := s.insert(ctx, t)
		if err == nil {
			s.m.rows.WithLabelValues(t.Name).Add(float64(t.Rows))
			s.m.batches.WithLabelValues(t.Name).Inc()
			if attempt > 1 {
				s.log.Info("clickhouse insert succeeded after retries", "table", t.Name, "rows", t.Rows, "attempts", attempt)
			}
			return nil
		}
		s.m.errors.WithLabelValues(t.Name).Inc()
		if ctx.Err() != nil {
			return fmt.Errorf("clickhouse: insert %d rows into %s.%s: gave up after %d attempts: %w (last error: %w)",
				t.Rows, s.cfg.Database, t.Name, attempt, ctx.Err(), err)
		}
		// Full jitter over the upper half: never hammer, never sleep 0.
		pause := backoff/2 + rand.N(backoff/2+1)
		s.log.Warn("clickhouse insert failed, retrying", "table", t.Name, "rows", t.Rows, "attempt", attempt, "retry_in", pause, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("clickhouse: insert %d rows into %s.%s: gave up after %d attempts: %w (last error: %w)",
				t.Rows, s.cfg.Database, t.Name, attempt, ctx.Err(), err)
		case <-time.After(pause):
		}
		s.m.retries.Inc()
		backoff = min(backoff*2, s.cfg.MaxRetryBackoff)
	}
}

// insert makes one attempt at writing t.
func (s *Sink) insert(ctx context.Context, t *chsql.Table) (err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.AttemptTimeout)
	defer cancel()
	var settings map[string]any
	if s.features.StringSettings {
		settings = t.Settings()
	}
	if s.cluster != nil {
		ctx = s.cluster.ctx(ctx, settings)
	} else if settings != nil {
		ctx = clickhouse.Context(ctx, clickhouse.WithSettings(settings))
	}
	batch, err := s.conn.PrepareBatch(ctx, t.InsertQuery(s.cfg.Database))
	if err != nil {
		return err
	}
	defer func() {
		if !batch.IsSent() {
			err = errors.Join(err, batch.Abort())
		}
	}()
	// The rows go in blocks of insertBlockRows: the driver copies each
	// column into buffers that Flush empties but keeps, so a large batch
	// never grows them past a block, and the server squashes the blocks
	// of one INSERT into parts as usual (min_insert_block_size_rows).
	for lo := 0; lo < t.Rows; lo += insertBlockRows {
		hi := min(lo+insertBlockRows, t.Rows)
		for i, c := range t.Columns {
			if err := batch.Column(i).Append(c.Slice(lo, hi)); err != nil {
				return fmt.Errorf("column %s: %w", c.Name, err)
			}
		}
		if hi < t.Rows {
			if err := batch.Flush(); err != nil {
				return err
			}
		}
	}
	return batch.Send()
}

// insertBlockRows is the rows of one block sent to the server.
const insertBlockRows = 8192

// serverVersion asks conn for the server's version within ctx, which the
// driver's handshake does not heed (a port that accepts and never answers
// held it for DialTimeout). conn is closed on an error.
func serverVersion(ctx context.Context, conn driver.Conn) (string, error) {
	type answer struct {
		raw string
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		var a answer
		a.err = conn.QueryRow(ctx, "SELECT version()").Scan(&a.raw)
		ch <- a
	}()
	select {
	case a := <-ch:
		if a.err != nil {
			conn.Close()
		}
		return a.raw, a.err
	case <-ctx.Done():
		go func() { <-ch; conn.Close() }()
		return "", fmt.Errorf("no answer to the handshake: %w", ctx.Err())
	}
}

// Ping checks that ClickHouse answers, for readiness probes.
func (s *Sink) Ping(ctx context.Context) error {
	if err := s.conn.Ping(ctx); err != nil {
		return fmt.Errorf("clickhouse: ping: %w", err)
	}
	return nil
}

// Close closes the connections. Pending rows are dropped: Flush first.
func (s *Sink) Close() error {
	if n := s.Pending(); n > 0 {
		s.log.Warn("clickhouse sink closed with rows pending", "rows", n)
	}
	if s.cluster != nil {
		s.cluster.close()
	}
	return s.conn.Close()
}
