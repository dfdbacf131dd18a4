package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/plugin/kprom"
	"github.com/twmb/franz-go/plugin/kslog"
	"golang.org/x/sync/errgroup"

	"github.com/winback/winback/admin"
	"github.com/winback/winback/config"
	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/consume"
	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/sinks/clickhouse"
	"github.com/winback/winback/sinks/kafka"
)

// loadConfig parses args into a Config bound to fs (plus extra flags the
// caller registered) and loads env and file. Errors are usage errors. The
// arguments after the flags are the caller's to check (noArgs), but a
// true or false given apart from its boolean flag is refused here: the
// flag package reads it as the first argument and every flag after it as
// arguments too.
func loadConfig(fs *flag.FlagSet, args []string, cfg *config.Config) error {
	l := config.Bind(fs, cfg)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := boolApart(fs, args); err != nil {
		return err
	}
	warn := func(ws []string) {
		for _, w := range ws {
			fmt.Fprintf(fs.Output(), "%s: warning: %s\n", fs.Name(), w)
		}
	}
	warn(config.UnknownEnv(os.Environ())) // before Load: a misspelt variable may explain its error
	if err := l.Load(os.LookupEnv); err != nil {
		return usageError{err}
	}
	warn(cfg.Warnings())
	return nil
}

// newLogger logs to w in cfg's format; "auto" is text (durations such as
// 1.5s) on a terminal and JSON (durations in nanoseconds) otherwise.
func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	lvl, _ := config.ParseLevel(cfg.LogLevel)
	opts := &slog.HandlerOptions{Level: lvl}
	if logFormat(cfg.LogFormat, w) == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// logFormat resolves "auto" for w.
func logFormat(format string, w io.Writer) string {
	if format != "auto" {
		return format
	}
	if isTerminal(w) {
		return "text"
	}
	return "json"
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// kafkaOpts are the client options shared by every Kafka client of winback.
func kafkaOpts(cfg *config.Config, log *slog.Logger) ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(cfg.Kafka.Brokers...),
		kgo.WithLogger(kslog.New(log.With("component", "kafka"))),
		kgo.SessionTimeout(cfg.Kafka.SessionTimeout),
		kgo.ClientID("winback"),
	}
	codec, err := compression(cfg.Kafka.Compression)
	if err != nil {
		return nil, err
	}
	opts = append(opts, kgo.ProducerBatchCompression(codec))
	s := cfg.Kafka.SASL
	switch strings.ToUpper(s.Mechanism) {
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: s.Username, Pass: s.Password}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: s.Password}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: s.Username, Pass: s.Password}.AsSha512Mechanism()))
	}
	if t := cfg.Kafka.TLS; t.Enabled {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // opt-in, documented as testing only
		if t.CAFile != "" {
			pem, err := os.ReadFile(t.CAFile)
			if err != nil {
				return nil, fmt.Errorf("--kafka-tls-ca-file: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("--kafka-tls-ca-file: no PEM certificate in %s", t.CAFile)
			}
		}
		if t.CertFile != "" {
			cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("--kafka-tls-cert-file: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	return opts, nil
}

// compression maps kafka.compression to franz-go's codec.
func compression(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "none":
		return kgo.NoCompression(), nil
	}
	return kgo.CompressionCodec{}, fmt.Errorf("--kafka-compression: %q is not one of %v", name, config.Compressions)
}

func registryClient(cfg *config.Config) (*sr.Client, error) {
	opts := []sr.ClientOpt{sr.URLs(cfg.Registry.URL)}
	if cfg.Registry.Username != "" {
		opts = append(opts, sr.BasicAuth(cfg.Registry.Username, cfg.Registry.Password))
	}
	return sr.NewClient(opts...)
}

// adminOptions reads --http-token-file and --http-pprof.
func adminOptions(cfg *config.Config) ([]admin.Option, error) {
	var opts []admin.Option
	if cfg.HTTPTokenFile != "" {
		data, err := os.ReadFile(cfg.HTTPTokenFile)
		if err != nil {
			return nil, fmt.Errorf("--http-token-file: %w", err)
		}
		token := strings.TrimSpace(string(data))
		if len(token) < 16 {
			return nil, fmt.Errorf("--http-token-file: %s holds %d characters; use a random token of at least 16 (e.g. openssl rand -hex 32)", cfg.HTTPTokenFile, len(token))
		}
		opts = append(opts, admin.WithToken(token))
	}
	if cfg.HTTPPprof {
		opts = append(opts, admin.WithPprof(config.RedactArgs(os.Args)))
	}
	return opts, nil
}

// clickhouseConfig maps the settings to the sink's.
func clickhouseConfig(cfg *config.Config) clickhouse.Config {
	return clickhouse.Config{
		DSN:        cfg.ClickHouse.DSN,
		Database:   cfg.ClickHouse.Database,
		BatchRows:  cfg.ClickHouse.BatchRows,
		ActiveDays: cfg.ClickHouse.ActiveDays,
		Cluster:    cfg.ClickHouse.Cluster,
		Replicated: cfg.ClickHouse.Replicated,
		TTL: clickhouse.TTL{DailyDays: cfg.ClickHouse.TTLDailyDays, TriggerDays: cfg.ClickHouse.TTLTriggerDays,
			DeadLetterDays: cfg.ClickHouse.TTLDeadLetterDays},
		// Retries stop at the flush deadline (half the transaction
		// timeout); the pause between them stays well inside it.
		AttemptTimeout:  cfg.ClickHouse.AttemptTimeout,
		MaxRetryBackoff: min(clickhouse.DefaultMaxRetryBackoff, cfg.Kafka.TxnTimeout/8),
	}
}

// ensureTopics creates missing topics when --topics-partitions is set, with
// the changelog compacted.
func ensureTopics(ctx context.Context, cl *kgo.Client, cfg *config.Config) error {
	n := int32(cfg.Topics.Partitions)
	if n <= 0 {
		return nil
	}
	adm := kadm.NewClient(cl)
	t := cfg.Topics
	create := func(compact bool, names ...string) error {
		var conf map[string]*string
		if compact {
			conf = map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}
		}
		res, err := adm.CreateTopics(ctx, n, -1, conf, names...)
		if err != nil {
			return err
		}
		for _, r := range res.Sorted() {
			if r.Err != nil && !strings.Contains(r.Err.Error(), "TOPIC_ALREADY_EXISTS") {
				return fmt.Errorf("create topic %s: %w", r.Topic, r.Err)
			}
		}
		return nil
	}
	if err := create(false, t.Orders, t.Email, t.Support, t.Triggers, t.DLQ, t.Erasures); err != nil {
		return err
	}
	return create(true, t.State)
}

// serve runs the pipeline and the HTTP server until ctx is done. started,
// if not nil, is called with the HTTP address once it listens. A stop
// (SIGTERM, Ctrl-C) is not an error, also while it is still starting:
// Kubernetes stops a pod that never became ready the same way.
func serve(ctx context.Context, cfg *config.Config, log *slog.Logger, reg *prometheus.Registry, started func(httpAddr string)) error {
	err := start(ctx, cfg, log, reg, started)
	if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
		if err != context.Canceled { // stopped while start-up waited
			log.Info("stopped before start-up finished", "cause", context.Cause(ctx), "waiting_on", err.Error())
		}
		return nil
	}
	return err
}

// start is serve without its treatment of a stop.
func start(ctx context.Context, cfg *config.Config, log *slog.Logger, reg *prometheus.Registry, started func(httpAddr string)) error {
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildInfoCollector())
	// One kprom.Metrics per client, told apart by the client label.
	kmetrics := func(client string) kgo.Opt {
		return kgo.WithHooks(kprom.NewMetrics("winback_kafka", kprom.Registry(reg),
			kprom.WithStaticLabel(prometheus.Labels{"client": client})))
	}
	kopts, err := kafkaOpts(cfg, log)
	if err != nil {
		return usageError{err}
	}
	httpOpts, err := adminOptions(cfg) // the token file: before anything is created
	if err != nil {
		return usageError{err}
	}
	// Start-up checks, Kafka first: nothing (not even the ClickHouse DDL)
	// is applied before every dependency has answered.
	if err := checkKafka(ctx, cfg, kopts); err != nil {
		return err
	}
	src, err := registryClient(cfg)
	if err != nil {
		return usageError{fmt.Errorf("--registry-url: %w", err)}
	}
	if err := checkRegistry(ctx, cfg, src); err != nil {
		return err
	}
	sink, err := openClickHouse(ctx, cfg, log, reg)
	if err != nil {
		return err
	}
	defer sink.Close()

	probe, err := kgo.NewClient(append(kopts, kmetrics("admin"))...)
	if err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	defer probe.Close()
	if err := ensureTopics(ctx, probe, cfg); err != nil {
		return fmt.Errorf("kafka topics: %w", err)
	}

	dec := decode.NewDecoder(decode.SchemaRegistry(src), decode.Options{
		MaxValueBytes: cfg.MaxValueBytes,
		MaxFutureSkew: cfg.Decode.MaxFutureSkew,
		RegistryRetry: cfg.Registry.Retry,
		Logger:        log.With("component", "decode"),
	})
	var regForTriggers *sr.Client
	if cfg.TriggerFormat == "avro" {
		regForTriggers = src
	}
	trig, err := codec.NewTriggerEncoder(ctx, regForTriggers, cfg.Topics.Triggers, codec.Format(cfg.TriggerFormat))
	if err != nil {
		return fmt.Errorf("trigger schema: %w", err)
	}

	if err := migrate(ctx, sink, log); err != nil {
		return fmt.Errorf("clickhouse migrate: %w", err)
	}

	instance := cfg.Kafka.InstanceID
	if instance == "" {
		if instance, err = os.Hostname(); err != nil || instance == "" {
			return usageError{errors.New("--kafka-instance-id: empty and the hostname is unknown; give each instance a stable id")}
		}
	}
	runner, err := consume.New(consume.Config{
		Topics: consume.Topics{
			Orders: cfg.Topics.Orders, Email: cfg.Topics.Email, Support: cfg.Topics.Support,
			State:    cfg.Topics.State,
			Erasures: cfg.Topics.Erasures,
			Progress: cfg.ProgressTopic(), Repartition: cfg.RepartitionTopic(),
		},
		StrictPartitioning: cfg.InputPartitioning == "strict",
		MaxFutureSkew:      cfg.Decode.MaxFutureSkew,
		Group:              cfg.Kafka.Group,
		TransactionalID:    cfg.Kafka.TransactionalID + "-" + instance,
		ClientOpts:         append(kopts, kgo.ClientID("winback@"+cfg.HTTPAddr)),
		SessionOpts:        append([]kgo.Opt{kmetrics("pipeline"), consume.StaticMember(instance)}, consume.GroupTimings(cfg.Kafka.SessionTimeout)...),
		RestoreOpts:        []kgo.Opt{kmetrics("restore")},
		StandbyOpts:        []kgo.Opt{kmetrics("standby")},
		MaxPollRecords:     cfg.MaxPollRecords,
		Balancers:          balancers(cfg.Kafka.Rebalance),
		StandbyReplicas:    cfg.Kafka.StandbyReplicas,
		CacheMaxBytes:      cfg.State.CacheMaxBytes,
		CommitInterval:     cfg.CommitInterval,
		ShutdownTimeout:    cfg.ShutdownTimeout,
		TransactionTimeout: cfg.Kafka.TxnTimeout,
		FlushTimeout:       cfg.Kafka.TxnTimeout / 2,
		Lapse:              cfg.Lapse,
		StateTTL:           time.Duration(cfg.State.TTLDays) * 24 * time.Hour,
	}, consume.Deps{
		Decoder:    dec,
		Sink:       sink,
		Outputs:    &kafka.Output{Triggers: cfg.Topics.Triggers, DLQ: cfg.Topics.DLQ, Encoder: trig, MaxValueBytes: cfg.DLQMaxValueBytes},
		Logger:     log.With("component", "consume"),
		Registerer: reg,
	})
	if err != nil {
		return err
	}
	if cfg.HTTPTokenFile == "" {
		log.Warn("serving /v1/customers/{id} without authentication; set --http-token-file", "http", cfg.HTTPAddr)
	}
	liveness := cfg.Kafka.LivenessTimeout
	if liveness == 0 {
		liveness = 2 * cfg.Kafka.SessionTimeout
	}
	watchdog, err := consume.NewWatchdog(consume.WatchdogConfig{
		Group:   cfg.Kafka.Group,
		Inputs:  []string{cfg.Topics.Orders, cfg.Topics.Email, cfg.Topics.Support},
		Timeout: liveness,
	}, kadm.NewClient(probe), runner, nil, log.With("component", "liveness"), reg)
	if err != nil {
		return err
	}

	srv := admin.New(cfg.HTTPAddr, reg, []admin.Check{
		{Name: "liveness", Fn: func(context.Context) error { return watchdog.Err() }},
		{Name: "state", Fn: func(context.Context) error {
			if !runner.Ready() {
				return errors.New("joining the group or restoring state")
			}
			return nil
		}},
		{Name: "kafka", Fn: func(ctx context.Context) error { return probe.Ping(ctx) }},
		// The decoder's latest registry failure: no request of its own.
		{Name: "registry", Fn: func(context.Context) error { return dec.Unavailable() }},
		{Name: "clickhouse", Fn: sink.Ping},
	}, runner.Customer, log.With("component", "http"), httpOpts...)
	if err := srv.Listen(); err != nil {
		return usageError{fmt.Errorf("--http-addr: %w", err)}
	}
	log.Info("winback started", "version", versionLine(), "http", srv.Addr(), "brokers", cfg.Kafka.Brokers, "group", cfg.Kafka.Group,
		"clickhouse", sink.ServerVersion(), "trigger_format", cfg.TriggerFormat, "compression", cfg.Kafka.Compression, "instance", instance)
	if started != nil {
		started(srv.Addr())
	}

	// Shutdown order: the runner stops polling, finishes its transaction
	// (flushing ClickHouse first) and leaves the group; then the HTTP
	// server stops; deferred closes run last.
	g, gctx := errgroup.WithContext(ctx)
	runCtx, stopRunner := context.WithCancel(gctx)
	defer stopRunner()
	httpCtx, stopHTTP := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHTTP()
	g.Go(func() error {
		defer stopHTTP()
		began := time.Now()
		err := runner.Run(runCtx)
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		if lerr := consume.LeaveGroup(lctx, kadm.NewClient(probe), cfg.Kafka.Group, instance); lerr != nil {
			log.Warn("could not leave the group; its partitions move after kafka.session_timeout", "err", lerr)
		}
		cancel()
		log.Info("pipeline stopped", "took_since_start", time.Since(began).Round(time.Second), "err", err)
		return err
	})
	g.Go(func() error { watchdog.Run(runCtx); return nil })
	g.Go(func() error {
		err := srv.Run(httpCtx)
		stopRunner()
		return err
	})
	return g.Wait()
}

// openClickHouse connects to ClickHouse, retrying for --startup-timeout.
func openClickHouse(ctx context.Context, cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) (*clickhouse.Sink, error) {
	var sink *clickhouse.Sink
	err := retryUntil(ctx, cfg.StartupTimeout, func(ctx context.Context) error {
		var err error
		// Open registers the sink's metrics only once it has connected.
		sink, err = clickhouse.Open(ctx, clickhouseConfig(cfg), log.With("component", "clickhouse"), reg)
		if err != nil && (errors.Is(err, clickhouse.ErrDSN) || speaksHTTP(ctx, cfg.ClickHouse.DSN)) {
			return permanent{err} // a DSN mistake, or the HTTP port: waiting will not help
		}
		return err
	})
	if errors.Is(err, clickhouse.ErrDSN) {
		return nil, usageError{fmt.Errorf("--clickhouse-dsn: %w", err)}
	}
	if err != nil {
		return nil, clickhouseStartError(ctx, cfg, err)
	}
	return sink, nil
}

// migrate applies the DDL, retrying a few times: instances that start
// together race to apply the same migrations, and a loser's retry finds
// them applied.
func migrate(ctx context.Context, sink *clickhouse.Sink, log *slog.Logger) error {
	var err error
	for attempt := 1; attempt <= 5; attempt++ {
		if err = sink.Migrate(ctx); err == nil {
			return nil
		}
		var tampered *clickhouse.MigrationChecksumError
		if errors.As(err, &tampered) {
			return err // retrying cannot fix a changed migration file
		}
		log.Warn("clickhouse migration failed; retrying (another instance may be migrating)", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * time.Second):
		}
	}
	return err
}

// balancers maps kafka.rebalance to the group's balancers: migrate offers
// the eager range balancer first, so that a group of older instances keeps
// it until every instance offers the task balancer too.
func balancers(rebalance string) []kgo.GroupBalancer {
	switch rebalance {
	case "eager":
		return []kgo.GroupBalancer{kgo.RangeBalancer()}
	case "migrate":
		return []kgo.GroupBalancer{kgo.RangeBalancer(), consume.TaskBalancer()}
	}
	return []kgo.GroupBalancer{consume.TaskBalancer()}
}
