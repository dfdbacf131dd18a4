package lapse

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/winback/winback/pipeline/event"
)

// inlineScript runs script lines (as in testdata/scripts) over the given
// config lines and returns the script, its triggers in s.pending.
func inlineScript(t *testing.T, cfg []string, lines ...string) *script {
	t.Helper()
	s := &script{t: t, name: "inline", wall: scriptWallStart, saved: map[string]string{}, evClock: genStart, cfgYAML: cfg}
	for _, line := range lines {
		s.exec(strings.Fields(line))
	}
	return s
}

// TestHoldoutDraw: the draw is a pure function of (customer, episode),
// uniform enough that a share's control group has about that share.
func TestHoldoutDraw(t *testing.T) {
	if HoldoutDraw("c1", 42) != HoldoutDraw("c1", 42) {
		t.Fatal("not deterministic")
	}
	if HoldoutDraw("c1", 42) == HoldoutDraw("c1", 43) || HoldoutDraw("c1", 42) == HoldoutDraw("c2", 42) {
		t.Fatal("customer or episode ignored")
	}
	const n, share = 20000, 0.1
	control := 0
	for i := range n {
		d := HoldoutDraw(fmt.Sprintf("c%06d", i), int64(1_700_000_000_000+i*3_600_000))
		if d < 0 || d >= 1 {
			t.Fatalf("draw %v outside [0, 1)", d)
		}
		if d < share {
			control++
		}
	}
	// Binomial(20000, 0.1): sd 42; 5 sd either side.
	if sd := math.Sqrt(n * share * (1 - share)); math.Abs(float64(control)-n*share) > 5*sd {
		t.Fatalf("%d of %d below %v", control, n, share)
	}
}

// TestHoldoutShares: the most specific holdout_share_by key wins, and the
// switch turns every share to 0.
func TestHoldoutShares(t *testing.T) {
	lc := DefaultConfig().Lifecycle
	lc.HoldoutShare = 0.1
	lc.HoldoutShareBy = map[string]float64{
		"SUPPORT_FRICTION":      0.2,
		"HIGH":                  0.3,
		"HIGH/SUPPORT_FRICTION": 0,
		"LOW/PURCHASE_LAPSE":    0.5,
	}
	f := func(tier uint8, reason int, want float64) {
		t.Helper()
		got := holdoutShares(&lc)[tier][reason]
		if got != uint64(want*(1<<32)) {
			t.Errorf("tier %d reason %s: %v, want %v", tier, event.Reasons[reason], float64(got)/(1<<32), want)
		}
	}
	f(tierHigh, rFriction, 0)     // tier/reason
	f(tierMedium, rFriction, 0.2) // reason
	f(tierHigh, rLapse, 0.3)      // tier
	f(tierMedium, rLapse, 0.1)    // holdout_share
	f(tierLow, rLapse, 0.5)
	f(tierUnknown, rLapse, 0.5) // no tier yet counts as LOW
	lc.Holdout = false
	f(tierHigh, rLapse, 0)
	f(tierLow, rLapse, 0)
}

func TestHoldoutConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		by    map[string]float64
		share float64
		want  string
	}{
		{map[string]float64{"HIGH/NOPE": 0}, 0.1, "holdout_share_by"},
		{map[string]float64{"GOLD": 0}, 0.1, "holdout_share_by"},
		{map[string]float64{"HIGH": 0.9}, 0.1, "holdout_share_by.HIGH"},
		{nil, 0.6, "holdout_share"},
		{nil, -0.1, "holdout_share"},
	} {
		cfg := DefaultConfig()
		cfg.Lifecycle.HoldoutShareBy, cfg.Lifecycle.HoldoutShare = tc.by, tc.share
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: %v, want an error naming %s", tc.by, tc.share, err, tc.want)
		}
	}
	cfg := DefaultConfig()
	cfg.Lifecycle.MaxTriggersPerCustomer = maxBudget + 1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "max_triggers_per_customer") {
		t.Errorf("max_triggers_per_customer %d: %v", maxBudget+1, err)
	}
	cfg = DefaultConfig()
	cfg.Lifecycle.BudgetDays = -1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "budget_days") {
		t.Errorf("budget_days -1: %v", err)
	}
}

// TestHoldoutAssignment: every WINBACK trigger's treatment is CONTROL
// exactly when HoldoutDraw(customer, episode) is below the share, the
// control group is about that share, and the overrides and the switch
// apply.
func TestHoldoutAssignment(t *testing.T) {
	const n = 400
	run := func(cfg ...string) []event.Trigger {
		var lines []string
		for i := range n {
			lines = append(lines, fmt.Sprintf("@2026-03-01T10:00Z email u%03d UNSUBSCRIBED c1", i))
		}
		return inlineScript(t, cfg, lines...).pending
	}
	trs := run("lifecycle: {holdout_share: 0.3}")
	if len(trs) != n {
		t.Fatalf("%d triggers", len(trs))
	}
	control := 0
	for _, tr := range trs {
		want := event.TreatmentTreated
		if HoldoutDraw(tr.CustomerID, tr.AsOf) < 0.3 {
			want = event.TreatmentControl
			control++
		}
		if tr.Treatment != want {
			t.Fatalf("%s: %s, draw %v", tr.CustomerID, tr.Treatment, HoldoutDraw(tr.CustomerID, tr.AsOf))
		}
	}
	if control < 80 || control > 160 { // 120 expected, sd 9
		t.Fatalf("%d of %d in control at share 0.3", control, n)
	}
	for _, cfg := range []string{
		"lifecycle: {holdout_share: 0.3, holdout: false}",
		"lifecycle: {holdout_share: 0.3, holdout_share_by: {EMAIL_UNSUBSCRIBED: 0}}",
		"lifecycle: {holdout_share: 0}",
	} {
		for _, tr := range run(cfg) {
			if tr.Treatment != event.TreatmentTreated {
				t.Fatalf("%s: %s is %s", cfg, tr.CustomerID, tr.Treatment)
			}
		}
	}
	all := run("lifecycle: {holdout_share: 0.1, holdout_share_by: {LOW/EMAIL_UNSUBSCRIBED: 0.5}}")
	control = 0
	for _, tr := range all {
		if tr.Treatment == event.TreatmentControl {
			control++
		}
	}
	if tr := all[0]; tr.ValueTier != event.TierLow || control < 150 {
		t.Fatalf("LOW/EMAIL_UNSUBSCRIBED at 0.5: %d of %d in control (tier %s)", control, n, tr.ValueTier)
	}
}

// TestHoldoutLifecycle: a control trigger keeps the lifecycle: its
// RECOVERED follow-up is CONTROL too, across a snapshot and restore, and a
// treated one's is TREATED.
func TestHoldoutLifecycle(t *testing.T) {
	lastOrder := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC).UnixMilli() // the lapse's episode
	var ctl, trt string
	for i := 0; ctl == "" || trt == ""; i++ {
		id := fmt.Sprintf("w%d", i)
		if HoldoutDraw(id, lastOrder) < 0.5 {
			ctl = cmpOr(ctl, id)
		} else {
			trt = cmpOr(trt, id)
		}
	}
	s := inlineScript(t, []string{"lifecycle: {holdout_share: 0.5}"},
		"@2026-01-05T10:00Z repeat 9 every 7d order "+ctl+" PLACED 30 ; order "+trt+" PLACED 30",
		"wall +2m",
		"@2026-03-20T00:00Z tick",
		"expect WINBACK "+ctl+" PURCHASE_LAPSE treatment=CONTROL as=c",
		"expect WINBACK "+trt+" PURCHASE_LAPSE treatment=TREATED as=t",
		"expect stats control=1",
		"restore",
		"@2026-03-25T10:00Z order "+ctl+" PLACED 30",
		"@2026-03-25T10:00Z order "+trt+" PLACED 30",
		"expect RECOVERED "+ctl+" original=c treatment=CONTROL",
		"expect RECOVERED "+trt+" original=t treatment=TREATED",
		"expect none",
	)
	if len(s.pending) != 0 {
		t.Fatalf("left: %v", s.pending)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// TestSnapshotV4Budget: what the budget holds (and since when), the last
// sends and the open episode's treatment survive a snapshot; the restored
// customer releases the held reasons as the original does, and a v3
// snapshot of it restores with its last send taken from its cooldowns.
func TestSnapshotV4Budget(t *testing.T) {
	lines := []string{
		"@2026-03-01T10:00Z support a OPENED t1 complaint",
		"@2026-03-03T10:00Z support a RESOLVED t1 csat=1",
	}
	s := inlineScript(t, []string{"lifecycle: {holdout: false}"}, lines...)
	e := s.engine()
	c := e.Customer("a")
	if c.held != bitLowSat || c.heldDay == 0 || c.sent[0] == 0 {
		t.Fatalf("held %b since %d, sent %v", c.held, c.heldDay, c.sent)
	}
	snap := e.AppendSnapshot(nil, c)
	var tail []byte
	for _, d := range c.sent {
		tail = binary.AppendUvarint(tail, uint64(d))
	}
	tail = append(binary.AppendUvarint(tail, uint64(c.heldDay)), c.held)
	if !bytes.HasSuffix(snap, tail) {
		t.Fatalf("snapshot %x does not end in the budget %x", snap, tail)
	}
	firedFriction := c.firedDay[rFriction]
	e2 := NewEngine(e.Config(), 3, scriptWallStart)
	if err := e2.RestoreCustomer("a", snap); err != nil {
		t.Fatal(err)
	}
	c2 := e2.Customer("a")
	if c2.held != c.held || c2.heldDay != c.heldDay || c2.sent != c.sent {
		t.Fatalf("restored held %b since %d sent %v, want %b %d %v", c2.held, c2.heldDay, c2.sent, c.held, c.heldDay, c.sent)
	}
	if again := e2.AppendSnapshot(nil, c2); !bytes.Equal(again, snap) {
		t.Fatalf("re-encoded differently:\n%x\n%x", again, snap)
	}
	// Both engines release the CSAT on Mar 15.
	for _, eng := range []*Engine{e, e2} {
		tick := event.Event{EventID: "tick", CustomerID: "~clock", Kind: event.KindEmail, EmailType: event.EmailSent,
			Time: time.Date(2026, 3, 15, 2, 0, 0, 0, time.UTC).UnixMilli()}
		wall := scriptWallStart.Add(10 * time.Minute)
		out := eng.Advance(nil, wall)
		out, _, _ = eng.Apply(out, SourceEmail, &tick, wall)
		out = eng.Advance(out, wall.Add(10*time.Minute))
		if len(out) != 1 || out[0].PrimaryReason != event.ReasonLowSatisfaction || out[0].Evidence["budget_delayed_days"] != 12 {
			t.Fatalf("after restore: %+v", out)
		}
	}
	// A v3 snapshot has no budget: the last send is the newest cooldown
	// day, nothing is held; the control flag was not known then.
	v3 := append([]byte{customerSnapshotV3}, snap[1:len(snap)-len(tail)]...)
	e3 := NewEngine(e.Config(), 3, scriptWallStart)
	if err := e3.RestoreCustomer("a", v3); err != nil {
		t.Fatal(err)
	}
	if c3 := e3.Customer("a"); c3.sent[0] != firedFriction || c3.held != 0 || c3.heldDay != 0 {
		t.Fatalf("v3: sent %v held %b since %d", c3.sent, c3.held, c3.heldDay)
	}
	bad := bytes.Clone(snap)
	bad[len(bad)-1] = 0 // held reasons gone, held day left: inconsistent
	if err := e3.RestoreCustomer("b", bad); err == nil {
		t.Fatal("held day without held reasons accepted")
	}
}

// TestChannelSwitch: once a customer unsubscribed, no trigger carries an
// e-mail action (a win-back offer, a re-engagement campaign, a loyalty
// reward): CHANNEL_SWITCH instead; the RECOVERED follow-up too.
func TestChannelSwitch(t *testing.T) {
	inlineScript(t, []string{"lifecycle: {holdout: false}"},
		"@2026-01-05T10:00Z repeat 9 every 7d order u PLACED 30",
		"@2026-03-01T10:00Z email u UNSUBSCRIBED c1",
		"expect WINBACK u EMAIL_UNSUBSCRIBED action=CHANNEL_SWITCH",
		"wall +2m",
		"@2026-04-01T00:00Z tick", // the lapse is due Mar 16, after the budget freed (Mar 15)
		"expect WINBACK u PURCHASE_LAPSE action=CHANNEL_SWITCH asof=2026-03-16T10:00Z as=l",
		"@2026-04-02T10:00Z order u PLACED 30",
		"expect RECOVERED u original=l action=CHANNEL_SWITCH",
		"expect none",
	)
}
