package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/config"
	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/event"
)

// genOptions are the generator's own flags, shared by gen and dev.
type genOptions struct {
	customers int
	days      int
	seed      int64
	encoding  string
	end       string
	// campaignEffect plants a campaign effect (gen.Campaign) when > 0.
	campaignEffect float64
	campaignDays   float64
	// partitioner, when set, places the records instead of franz-go's
	// default (tests: another producer's partitioner).
	partitioner kgo.Partitioner
}

func (o *genOptions) bind(fs *flag.FlagSet) {
	fs.IntVar(&o.customers, "customers", 2000, "customers to generate")
	fs.IntVar(&o.days, "days", 365, "days of history to generate")
	fs.Int64Var(&o.seed, "seed", 1, "random seed: the same seed gives the same traffic")
	fs.StringVar(&o.encoding, "encoding", "mixed", "encoding of the generated records: avro, json or mixed")
	fs.StringVar(&o.end, "end", "", "the day the generated history ends at, YYYY-MM-DD: its last events are of the day before (default: today, so the history runs up to yesterday)")
	fs.Float64Var(&o.campaignEffect, "campaign-effect", 0, "plant a known campaign effect: a customer who gets a TREATED WINBACK trigger orders within --campaign-return-days with this extra probability (0 to 1; control triggers get nothing); the generator runs the lapse engine with the configured lapse settings to know the triggers (docs/signals.md)")
	fs.Float64Var(&o.campaignDays, "campaign-return-days", 30, "with --campaign-effect, the planted order falls between 1 and this many days after the trigger")
}

// genConfig is config with the campaign, whose engine runs cfg's lapse
// settings (the holdout share above all), as the pipeline will.
func (o *genOptions) genConfig(cfg *config.Config) (gen.Config, error) {
	gcfg, err := o.config()
	if err != nil || o.campaignEffect == 0 {
		return gcfg, err
	}
	gcfg.Campaign = &gen.Campaign{Effect: o.campaignEffect, ReturnDays: o.campaignDays, Lapse: cfg.Lapse}
	return gcfg, nil
}

func (o *genOptions) config() (gen.Config, error) {
	end := time.Now().UTC().Truncate(24 * time.Hour)
	if o.end != "" {
		t, err := time.Parse(time.DateOnly, o.end)
		if err != nil {
			return gen.Config{}, fmt.Errorf("--end: %q is not YYYY-MM-DD", o.end)
		}
		end = t
	}
	if o.customers < 1 || o.days < 1 {
		return gen.Config{}, fmt.Errorf("--customers and --days must be at least 1")
	}
	if !(o.campaignEffect >= 0 && o.campaignEffect <= 1) {
		return gen.Config{}, fmt.Errorf("--campaign-effect: %v is not a probability from 0 to 1", o.campaignEffect)
	}
	if o.campaignEffect > 0 && !(o.campaignDays >= 1 && o.campaignDays <= 90) {
		return gen.Config{}, fmt.Errorf("--campaign-return-days: %v is not between 1 and 90", o.campaignDays)
	}
	switch o.encoding {
	case "avro", "json", "mixed":
	default:
		return gen.Config{}, fmt.Errorf("--encoding: %s", oneOf(o.encoding, "avro", "json", "mixed"))
	}
	return gen.Config{
		Customers: o.customers,
		Days:      o.days,
		Start:     end.AddDate(0, 0, -o.days),
		Seed:      o.seed,
	}, nil
}

func cmdGen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg := config.Default()
	cfg.StartupTimeout = 10 * time.Second // a one-shot command: fail soon
	fs := newFlagSet("gen", "Produce synthetic traffic (orders, email events, support tickets) with realistic\narchetypes (steady buyers, lapsers, disengagers, unsubscribers, support friction,\nspend decliners, returners) and a small share of malformed records.", stderr)
	var o genOptions
	o.bind(fs)
	var out string
	fs.StringVar(&out, "out", "", "write the traffic to the JSON-lines `FILE` (- for standard output) instead of producing it to Kafka; 'winback backtest --file FILE' reads it (malformed records are left out)")
	if err := loadConfig(fs, args, &cfg); err != nil {
		return err
	}
	if err := noArgs(fs, "to write a file, give it with --out"); err != nil {
		return err
	}
	if _, err := o.config(); err != nil {
		return usageError{err}
	}
	if out != "" {
		return writeTrafficFile(&cfg, &o, out, stdout, stderr)
	}
	log := newLogger(&cfg, stderr)
	began := time.Now()
	st, err := produceTraffic(ctx, &cfg, &o, log, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "produced %d records (%d malformed, %d duplicates) in %s\n", st.Records, st.Malformed, st.Duplicates, time.Since(began).Round(time.Millisecond))
	return nil
}

// produceTraffic generates traffic and produces it to cfg's brokers.
func produceTraffic(ctx context.Context, cfg *config.Config, o *genOptions, log *slog.Logger, progress func(int)) (gen.Stats, error) {
	gcfg, err := o.genConfig(cfg)
	if err != nil {
		return gen.Stats{}, err
	}
	g, err := gen.New(gcfg)
	if err != nil {
		return gen.Stats{}, err
	}
	kopts, err := kafkaOpts(cfg, log)
	if err != nil {
		return gen.Stats{}, err
	}
	if err := checkKafka(ctx, cfg, kopts); err != nil {
		return gen.Stats{}, err
	}
	kopts = append(kopts, kgo.ProducerLinger(5*time.Millisecond))
	if o.partitioner != nil {
		kopts = append(kopts, kgo.RecordPartitioner(o.partitioner))
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return gen.Stats{}, err
	}
	defer cl.Close()
	var enc gen.AvroEncoder
	if o.encoding != "json" {
		src, err := registryClient(cfg)
		if err != nil {
			return gen.Stats{}, err
		}
		if err := checkRegistry(ctx, cfg, src); err != nil {
			return gen.Stats{}, err
		}
		e, err := codec.NewEventEncoder(ctx, src, map[event.Kind]string{
			event.KindOrder:   cfg.Topics.Orders + "-value",
			event.KindEmail:   cfg.Topics.Email + "-value",
			event.KindSupport: cfg.Topics.Support + "-value",
		})
		if err != nil {
			return gen.Stats{}, fmt.Errorf("register input schemas: %w", err)
		}
		enc = e
	}
	return gen.Produce(ctx, g, cl, gen.Topics{Orders: cfg.Topics.Orders, Email: cfg.Topics.Email, Support: cfg.Topics.Support},
		enc, gen.Encoding(o.encoding), progress)
}

// writeTrafficFile writes the generated traffic as JSON lines, one event per
// line with its "topic" (the configured input topic names), to path or,
// for "-", to stdout.
func writeTrafficFile(cfg *config.Config, o *genOptions, path string, stdout, stderr io.Writer) error {
	gcfg, err := o.genConfig(cfg)
	if err != nil {
		return usageError{err}
	}
	g, err := gen.New(gcfg)
	if err != nil {
		return err
	}
	w, report := stdout, stdout
	var f *os.File
	if path != "-" {
		if f, err = os.Create(path); err != nil {
			return usageError{fmt.Errorf("--out: %w", err)}
		}
		defer f.Close()
		w = f
	} else {
		report = stderr // stdout carries the data
	}
	lw := &lineCounter{w: w}
	topics := gen.Topics{Orders: cfg.Topics.Orders, Email: cfg.Topics.Email, Support: cfg.Topics.Support}
	if err := g.WriteJSONLTopics(lw, topics); err != nil {
		return err
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return fmt.Errorf("--out: %w", err)
		}
	}
	name := path
	if path == "-" {
		name = "standard output"
	}
	fmt.Fprintf(report, "wrote %d events for %d customers over %d days to %s (malformed records are left out of files)\n",
		lw.lines, o.customers, o.days, name)
	return nil
}

// lineCounter counts the lines written through it.
type lineCounter struct {
	w     io.Writer
	lines int
}

func (c *lineCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.lines += bytes.Count(p[:n], []byte{'\n'})
	return n, err
}
