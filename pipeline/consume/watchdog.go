package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
)

// GroupAdmin is what the watchdog asks the brokers: the inputs' end
// offsets, the group's committed offsets and the group's state. A
// *kadm.Client is one.
type GroupAdmin interface {
	ListEndOffsets(ctx context.Context, topics ...string) (kadm.ListedOffsets, error)
	FetchOffsets(ctx context.Context, group string) (kadm.OffsetResponses, error)
	DescribeGroups(ctx context.Context, groups ...string) (kadm.DescribedGroups, error)
}

// Progress reports an instance's assignment: the partitions it owns now,
// and how many partition assignments it received so far (a count that only
// grows, so that a brief assignment between two checks is seen). A
// *Runner is one. The instance's commits need no count of their own: they
// move the group's committed offsets, which the watchdog reads from the
// brokers (an empty transaction, which an instance with nothing assigned
// commits every interval, moves none).
type Progress interface {
	Assignment() (owned int, assignments uint64)
}

// Assignment implements Progress for the Runner.
func (r *Runner) Assignment() (owned int, assignments uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, g := range r.gen {
		assignments += g
	}
	return len(r.owned), assignments
}

// WatchdogConfig configures a Watchdog.
type WatchdogConfig struct {
	Group  string
	Inputs []string
	// Timeout is how long an instance may go without progress while its
	// inputs have lag before it reports the group stalled.
	Timeout time.Duration
	// Interval is how often Run checks; default Timeout/5, at most 5 s.
	Interval time.Duration
}

// Watchdog watches one instance's liveness in its consumer group (issue
// 23): if the instance has held no partition and received no assignment
// for Timeout, while the group's committed offsets of the inputs did not
// move (so it committed nothing either, and neither did any other member)
// and the inputs have lag, the group is stalled (typically a rebalance
// that never completes). It then logs an ERROR naming the group's state,
// sets winback_group_stalled to 1 and fails its readiness check, until
// progress resumes.
type Watchdog struct {
	cfg   WatchdogConfig
	adm   GroupAdmin
	prog  Progress
	now   func() time.Time
	log   *slog.Logger
	gauge prometheus.Gauge

	// Only Check writes these.
	since      time.Time // last progress seen
	assigned   uint64
	committed  map[string]map[int32]int64 // the group's committed offsets at the last check
	lastReport time.Time                  // last stall logged

	mu      sync.Mutex
	stalled error // non-nil while stalled
}

// NewWatchdog builds a Watchdog; now is the clock (nil: time.Now), and reg
// registers winback_group_stalled (nil: not registered).
func NewWatchdog(cfg WatchdogConfig, adm GroupAdmin, prog Progress, now func() time.Time, log *slog.Logger, reg prometheus.Registerer) (*Watchdog, error) {
	switch {
	case cfg.Group == "" || len(cfg.Inputs) == 0:
		return nil, errors.New("consume: watchdog needs a group and its inputs")
	case cfg.Timeout <= 0:
		return nil, errors.New("consume: watchdog timeout must be positive")
	case adm == nil || prog == nil:
		return nil, errors.New("consume: watchdog needs an admin client and a progress source")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = min(cfg.Timeout/5, 5*time.Second)
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	w := &Watchdog{cfg: cfg, adm: adm, prog: prog, now: now, log: log,
		gauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "winback_group_stalled",
			Help: "1 while this instance has held no partition for kafka.liveness_timeout, the group's committed offsets did not move and the inputs have lag (a consumer group that does not re-form); else 0.",
		}),
	}
	if reg != nil {
		if err := reg.Register(w.gauge); err != nil {
			return nil, fmt.Errorf("consume: register watchdog metric: %w", err)
		}
	}
	w.since = now()
	_, w.assigned = prog.Assignment()
	return w, nil
}

// Run checks every Interval until ctx is done.
func (w *Watchdog) Run(ctx context.Context) {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.Check(ctx)
		}
	}
}

// Err is the watchdog's readiness check: non-nil while the group is
// stalled.
func (w *Watchdog) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stalled
}

// Check looks once: it records progress, or reports a stall when there
// was none for Timeout while the inputs have lag. Run calls it; tests call
// it with their own clock. Calls must not overlap (Err may run at any
// time).
func (w *Watchdog) Check(ctx context.Context) {
	now := w.now()
	owned, assigned := w.prog.Assignment()
	cctx, cancel := context.WithTimeout(ctx, max(w.cfg.Interval, 5*time.Second))
	defer cancel()
	lag, committed, lagErr := w.lag(cctx)

	moved := lagErr == nil && w.committed != nil && advanced(w.committed, committed)
	if lagErr == nil {
		w.committed = committed
	}
	if owned > 0 || assigned != w.assigned || moved || (lagErr == nil && lag == 0) {
		w.since, w.assigned = now, assigned
		if w.setStalled(nil) != nil {
			w.log.Info("consume: the consumer group makes progress again", "group", w.cfg.Group)
		}
		return
	}
	idle := now.Sub(w.since)
	if idle < w.cfg.Timeout || lagErr != nil {
		// Without the lag (brokers unreachable) nothing is claimed:
		// the kafka readiness check covers that.
		return
	}
	state := w.groupState(cctx)
	w.setStalled(fmt.Errorf("consumer group %s stalled: this instance held no partition and the group committed nothing for %s while the inputs lag %d records; group %s",
		w.cfg.Group, idle.Round(time.Second), lag, state))
	if w.lastReport.IsZero() || now.Sub(w.lastReport) >= w.cfg.Timeout {
		w.lastReport = now
		w.log.Error("consume: consumer group stalled; it does not re-form",
			"group", w.cfg.Group, "idle", idle.Round(time.Second), "lag", lag, "group_state", state)
	}
}

// setStalled sets the readiness error and the gauge, and returns the
// previous error.
func (w *Watchdog) setStalled(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	prev := w.stalled
	w.stalled = err
	if err != nil {
		w.gauge.Set(1)
	} else {
		w.gauge.Set(0)
		w.lastReport = time.Time{}
	}
	return prev
}

// lag is the inputs' records past the group's committed offsets (all of a
// partition's records if nothing is committed), and the committed offsets.
func (w *Watchdog) lag(ctx context.Context) (int64, map[string]map[int32]int64, error) {
	ends, err := w.adm.ListEndOffsets(ctx, w.cfg.Inputs...)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return 0, nil, fmt.Errorf("list end offsets: %w", err)
	}
	resp, err := w.adm.FetchOffsets(ctx, w.cfg.Group)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return 0, nil, fmt.Errorf("fetch committed offsets: %w", err)
	}
	committed := map[string]map[int32]int64{}
	var lag int64
	ends.Each(func(o kadm.ListedOffset) {
		at := int64(0)
		if c, ok := resp.Lookup(o.Topic, o.Partition); ok && c.At > 0 {
			at = c.At
		}
		if committed[o.Topic] == nil {
			committed[o.Topic] = map[int32]int64{}
		}
		committed[o.Topic][o.Partition] = at
		lag += max(0, o.Offset-at)
	})
	return lag, committed, nil
}

// advanced reports whether any committed offset moved since before.
func advanced(before, now map[string]map[int32]int64) bool {
	for t, ps := range now {
		for p, at := range ps {
			if at != before[t][p] {
				return true
			}
		}
	}
	return false
}

// groupState describes the group as the coordinator sees it: its state,
// protocol, and members with the partitions each holds.
func (w *Watchdog) groupState(ctx context.Context) string {
	dg, err := w.adm.DescribeGroups(ctx, w.cfg.Group)
	if err != nil {
		return "unknown (describe failed: " + err.Error() + ")"
	}
	g, ok := dg[w.cfg.Group]
	if !ok {
		return "unknown (not described)"
	}
	if g.Err != nil {
		return "unknown (" + g.Err.Error() + ")"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "state %s, %d members", g.State, len(g.Members))
	if g.Protocol != "" {
		fmt.Fprintf(&b, ", protocol %s", g.Protocol)
	}
	for _, m := range g.Members {
		n := 0
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				n += len(t.Partitions)
			}
		}
		fmt.Fprintf(&b, "; %s (%s) holds %d partitions", m.MemberID, m.ClientHost, n)
	}
	return b.String()
}
