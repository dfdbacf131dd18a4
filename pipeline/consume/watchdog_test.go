package consume

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/twmb/franz-go/pkg/kadm"
)

// fakeGroup is the brokers' view the watchdog reads: one input partition's
// end and committed offsets, and a group state.
type fakeGroup struct {
	end, committed int64
	state          string
	down           bool
}

func (f *fakeGroup) ListEndOffsets(_ context.Context, topics ...string) (kadm.ListedOffsets, error) {
	if f.down {
		return nil, errors.New("broker unreachable")
	}
	out := kadm.ListedOffsets{}
	for _, t := range topics {
		out[t] = map[int32]kadm.ListedOffset{0: {Topic: t, Partition: 0, Offset: f.end}}
	}
	return out, nil
}

func (f *fakeGroup) FetchOffsets(_ context.Context, _ string) (kadm.OffsetResponses, error) {
	if f.down {
		return nil, errors.New("broker unreachable")
	}
	return kadm.OffsetResponses{"in": {0: {Offset: kadm.Offset{Topic: "in", Partition: 0, At: f.committed}}}}, nil
}

func (f *fakeGroup) DescribeGroups(_ context.Context, groups ...string) (kadm.DescribedGroups, error) {
	return kadm.DescribedGroups{groups[0]: {Group: groups[0], State: f.state, Protocol: "range",
		Members: []kadm.DescribedGroupMember{{MemberID: "winback-1", ClientHost: "/127.0.0.1"}}}}, nil
}

type fakeProgress struct {
	owned    int
	assigned uint64
}

func (f *fakeProgress) Assignment() (int, uint64) { return f.owned, f.assigned }

// TestWatchdog steps a fake clock through a script of brokers' states and
// the instance's progress, checking the stall report after each step.
func TestWatchdog(t *testing.T) {
	type step struct {
		after     time.Duration // clock advance before the check
		end       int64         // input end offset
		committed int64         // group's committed offset
		owned     int           // partitions the instance holds
		assign    uint64        // instance's assignments so far
		down      bool          // brokers unreachable
		stalled   bool          // want
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"no lag is never a stall", []step{
			{after: 0, end: 10, committed: 10},
			{after: time.Minute, end: 10, committed: 10},
		}},
		{"lag and no progress for the timeout", []step{
			{after: 0, end: 100},
			{after: 10 * time.Second, end: 100},
			{after: 9 * time.Second, end: 100},
			{after: 2 * time.Second, end: 100, stalled: true},
			{after: 30 * time.Second, end: 120, stalled: true},
		}},
		{"an assignment is progress", []step{
			{after: 0, end: 100},
			{after: 15 * time.Second, end: 100, assign: 3},
			{after: 15 * time.Second, end: 100, assign: 3},
			{after: 15 * time.Second, end: 100, assign: 3, stalled: true},
		}},
		{"holding partitions is not a stall (a long restore)", []step{
			{after: 0, end: 100, owned: 2, assign: 2},
			{after: 15 * time.Second, end: 100, owned: 2, assign: 2},
			{after: 15 * time.Second, end: 100, owned: 2, assign: 2},
			{after: 15 * time.Second, end: 100, owned: 2, assign: 2},
			{after: 15 * time.Second, end: 100, owned: 0, assign: 2},
			{after: 6 * time.Second, end: 100, owned: 0, assign: 2, stalled: true},
		}},
		{"a commit ends a stall", []step{
			{after: 0, end: 100},
			{after: 25 * time.Second, end: 100, stalled: true},
			{after: time.Second, end: 100, committed: 50},
			{after: 19 * time.Second, end: 100, committed: 50},
			{after: 2 * time.Second, end: 100, committed: 50, stalled: true},
		}},
		{"the group's offsets moving is progress (an idle standby instance)", []step{
			{after: 0, end: 100, committed: 10},
			{after: 15 * time.Second, end: 110, committed: 20},
			{after: 15 * time.Second, end: 120, committed: 30},
			{after: 15 * time.Second, end: 120, committed: 30},
			{after: 15 * time.Second, end: 120, committed: 30, stalled: true},
		}},
		{"unreachable brokers claim nothing", []step{
			{after: 0, end: 100},
			{after: time.Minute, down: true},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Unix(1_800_000_000, 0)
			grp := &fakeGroup{state: "PreparingRebalance"}
			prog := &fakeProgress{}
			var logs bytes.Buffer
			reg := prometheus.NewRegistry()
			w, err := NewWatchdog(WatchdogConfig{Group: "winback", Inputs: []string{"in"}, Timeout: 20 * time.Second},
				grp, prog, func() time.Time { return now }, slog.New(slog.NewTextHandler(&logs, nil)), reg)
			if err != nil {
				t.Fatal(err)
			}
			for i, s := range tc.steps {
				now = now.Add(s.after)
				grp.end, grp.committed, grp.down = s.end, s.committed, s.down
				prog.owned, prog.assigned = s.owned, s.assign
				w.Check(context.Background())
				gauge := gaugeValue(t, w.gauge)
				if got := w.Err() != nil; got != s.stalled || gauge != map[bool]float64{false: 0, true: 1}[s.stalled] {
					t.Fatalf("step %d: stalled %v (err %v), winback_group_stalled %v; want stalled %v", i, got, w.Err(), gauge, s.stalled)
				}
				if s.stalled && !strings.Contains(w.Err().Error(), "state PreparingRebalance") {
					t.Errorf("step %d: the readiness error does not name the group state: %v", i, w.Err())
				}
			}
			stalls := strings.Count(logs.String(), "level=ERROR")
			wantStall := false
			for _, s := range tc.steps {
				wantStall = wantStall || s.stalled
			}
			if wantStall != (stalls > 0) {
				t.Errorf("%d ERROR lines, want a stall logged: %v\n%s", stalls, wantStall, logs.String())
			}
			if wantStall && !strings.Contains(logs.String(), "group_state=\"state PreparingRebalance") {
				t.Errorf("the ERROR does not name the group state:\n%s", logs.String())
			}
		})
	}
}

func gaugeValue(t *testing.T, g prometheus.Gauge) float64 {
	t.Helper()
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetGauge().GetValue()
}
