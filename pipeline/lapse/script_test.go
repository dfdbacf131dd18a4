package lapse

// Script tests: virtual-time scenarios in testdata/scripts/*.txt.
//
// A script is a list of lines; # starts a comment. Times are UTC.
//
//	config <yaml>        one line of YAML, merged over DefaultConfig before
//	                     the first event (indent after "config " as in YAML)
//	@2026-01-05T10:00Z   set the event clock (also 2026-01-05, or with
//	                     seconds); may prefix an event line
//	@+7d                 move the event clock (units d, h, m, s)
//	order <cust> PLACED|CANCELLED|REFUNDED <amount> [id=<event id>]
//	email <cust> SENT|DELIVERED|OPENED|CLICKED|BOUNCED|UNSUBSCRIBED|COMPLAINED [campaign] [id=…]
//	support <cust> OPENED|UPDATED|REOPENED|RESOLVED <ticket> [category] [LOW|NORMAL|HIGH|URGENT] [csat=N] [nps=N] [id=…]
//	mail <cust> <campaign> [opened] [clicked]
//	                     a campaign e-mail: SENT and DELIVERED, and OPENED
//	                     and CLICKED if named
//	repeat <n> every <dur> <line> [; <line> …]
//	                     n rounds, the first at the event clock, each dur
//	                     after the previous round's start; a round runs the
//	                     ;-separated lines (which may move the clock with
//	                     @+…); {i} in them becomes the round number. The
//	                     clock ends where the last round left it
//	tick                 an e-mail SENT to customer "~clock" at the event
//	                     clock: moves the watermark without touching anyone
//	wall +<dur>          move the wall clock (starts 2026-06-01T00:00Z; it
//	                     does not move by itself)
//	advance              call Engine.Advance
//	restore              snapshot every customer and the meta, restore them
//	                     into a new engine and go on with that one
//	expect none          no trigger left unmatched
//	expect <WINBACK|RECOVERED> <cust> [REASON] [attr…]
//	                     consume the first unmatched trigger that matches;
//	                     attrs: action=, tier=, asof<op><time>, priority<op>N,
//	                     risk<op>X, reasons=A,B (contains), treatment=
//	                     TREATED|CONTROL, as=<name> (save
//	                     its id), original=<name>, id=<name>, and any
//	                     evidence key <op> number; <op> is = != < <= > >=
//	expect stats <field>=N …       Stats fields: late, dup, events, recovered, suppressed, preempted,
//	                     control, budget_held, budget_delayed, budget_merged, budget_dropped
//	expect watermark <time>|none
//	expect timer <cust> <time>|none
//	expect agg <cust> <Field>=<value> …   event.Aggregate fields by name
//
// Every trigger emitted must be matched by an expect before the script
// ends. Event ids default to a fresh "e<n>" per event.

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/winback/winback/pipeline/event"
)

func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/scripts/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			runScript(t, f, string(b))
		})
	}
}

type script struct {
	t       *testing.T
	name    string
	line    int
	cfgYAML []string
	eng     *Engine
	evClock time.Time
	wall    time.Time
	nextID  int
	pending []event.Trigger
	saved   map[string]string
}

var scriptWallStart = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func runScript(t *testing.T, name, text string) {
	s := &script{t: t, name: name, wall: scriptWallStart, saved: map[string]string{},
		evClock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	for i, raw := range strings.Split(text, "\n") {
		s.line = i + 1
		line := raw
		if j := strings.Index(line, "#"); j >= 0 {
			line = line[:j]
		}
		if strings.TrimSpace(line) == "" {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "config "); ok {
			if s.eng != nil {
				s.fatalf("config after the first event")
			}
			s.cfgYAML = append(s.cfgYAML, rest)
			continue
		}
		s.exec(strings.Fields(line))
	}
	if len(s.pending) > 0 {
		s.fatalf("unmatched triggers at the end:\n%s", s.dump())
	}
}

func (s *script) fatalf(format string, args ...any) {
	s.t.Helper()
	s.t.Fatalf("%s:%d: %s", s.name, s.line, fmt.Sprintf(format, args...))
}

func (s *script) engine() *Engine {
	if s.eng == nil {
		cfg := DefaultConfig()
		if len(s.cfgYAML) > 0 {
			if err := yaml.Unmarshal([]byte(strings.Join(s.cfgYAML, "\n")), &cfg); err != nil {
				s.fatalf("config: %v", err)
			}
		}
		if err := cfg.Validate(); err != nil {
			s.fatalf("config: %v", err)
		}
		s.eng = NewEngine(cfg, 3, s.wall)
	}
	return s.eng
}

func parseDur(s string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		f, err := strconv.ParseFloat(n, 64)
		return time.Duration(f * float64(24*time.Hour)), err
	}
	return time.ParseDuration(s)
}

func parseTime(s string) (time.Time, error) {
	for _, l := range []string{"2006-01-02T15:04Z07:00", "2006-01-02T15:04:05Z07:00", "2006-01-02T15:04:05.000Z07:00", "2006-01-02"} {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("bad time %q", s)
}

func (s *script) exec(f []string) {
	s.t.Helper()
	if strings.HasPrefix(f[0], "@") {
		arg := f[0][1:]
		if rel, ok := strings.CutPrefix(arg, "+"); ok {
			d, err := parseDur(rel)
			if err != nil {
				s.fatalf("%v", err)
			}
			s.evClock = s.evClock.Add(d)
		} else {
			tm, err := parseTime(arg)
			if err != nil {
				s.fatalf("%v", err)
			}
			s.evClock = tm
		}
		if len(f) > 1 {
			s.exec(f[1:])
		}
		return
	}
	switch f[0] {
	case "order", "email", "support", "tick", "mail":
		s.event(f)
	case "repeat":
		if len(f) < 5 || f[2] != "every" {
			s.fatalf("usage: repeat <n> every <dur> <event>")
		}
		n, err := strconv.Atoi(f[1])
		d, err2 := parseDur(f[3])
		if err != nil || err2 != nil {
			s.fatalf("bad repeat")
		}
		start := s.evClock
		body := strings.Join(f[4:], " ")
		for i := range n {
			s.evClock = start.Add(time.Duration(i) * d)
			for _, cmd := range strings.Split(strings.ReplaceAll(body, "{i}", strconv.Itoa(i)), ";") {
				if fs := strings.Fields(cmd); len(fs) > 0 {
					s.exec(fs)
				}
			}
		}
	case "wall":
		d, err := parseDur(strings.TrimPrefix(f[1], "+"))
		if err != nil {
			s.fatalf("%v", err)
		}
		s.wall = s.wall.Add(d)
	case "advance":
		s.pending = s.engine().Advance(s.pending, s.wall)
	case "restore":
		s.restore()
	case "expect":
		s.expect(f[1:])
	default:
		s.fatalf("unknown command %q", f[0])
	}
}

func (s *script) event(f []string) {
	s.t.Helper()
	e := s.engine()
	var evs []event.Event
	base := event.Event{Time: s.evClock.UnixMilli(), CSAT: event.NoScore, NPS: event.NoScore}
	var id string
	var args []string
	for _, a := range f[1:] {
		if v, ok := strings.CutPrefix(a, "id="); ok {
			id = v
		} else {
			args = append(args, a)
		}
	}
	need := func(n int) {
		if len(args) < n {
			s.fatalf("%s: need %d arguments", f[0], n)
		}
	}
	src := SourceOrders
	switch f[0] {
	case "order":
		need(3)
		ev := base
		ev.Kind, ev.CustomerID, ev.OrderID = event.KindOrder, args[0], fmt.Sprintf("o%d", s.nextID)
		var ok bool
		if ev.OrderType, ok = event.ParseOrderType(args[1]); !ok {
			s.fatalf("bad order type %q", args[1])
		}
		amt, err := strconv.ParseFloat(args[2], 64)
		if err != nil {
			s.fatalf("bad amount %q", args[2])
		}
		ev.Amount, ev.Currency, ev.Items = amt, "EUR", 1
		evs = append(evs, ev)
	case "email", "tick":
		src = SourceEmail
		if f[0] == "tick" {
			args = []string{"~clock", "SENT"}
		}
		need(2)
		ev := base
		ev.Kind, ev.CustomerID = event.KindEmail, args[0]
		var ok bool
		if ev.EmailType, ok = event.ParseEmailType(args[1]); !ok {
			s.fatalf("bad email type %q", args[1])
		}
		if len(args) > 2 {
			ev.CampaignID = args[2]
		}
		evs = append(evs, ev)
	case "mail":
		src = SourceEmail
		need(2)
		types := []event.EmailType{event.EmailSent, event.EmailDelivered}
		for _, a := range args[2:] {
			switch a {
			case "opened":
				types = append(types, event.EmailOpened)
			case "clicked":
				types = append(types, event.EmailClicked)
			default:
				s.fatalf("mail: unknown %q", a)
			}
		}
		for _, ty := range types {
			ev := base
			ev.Kind, ev.CustomerID, ev.EmailType, ev.CampaignID = event.KindEmail, args[0], ty, args[1]
			evs = append(evs, ev)
		}
	case "support":
		src = SourceSupport
		need(3)
		ev := base
		ev.Kind, ev.CustomerID, ev.TicketID = event.KindSupport, args[0], args[2]
		var ok bool
		if ev.SupportType, ok = event.ParseSupportType(args[1]); !ok {
			s.fatalf("bad support type %q", args[1])
		}
		ev.Priority = event.PriorityNormal
		for _, a := range args[3:] {
			if v, ok := strings.CutPrefix(a, "csat="); ok {
				n, _ := strconv.Atoi(v)
				ev.CSAT = int8(n)
			} else if v, ok := strings.CutPrefix(a, "nps="); ok {
				n, _ := strconv.Atoi(v)
				ev.NPS = int8(n)
			} else if p, ok := event.ParseTicketPriority(a); ok {
				ev.Priority = p
			} else {
				ev.Category = a
			}
		}
		evs = append(evs, ev)
	}
	for i := range evs {
		s.nextID++
		evs[i].EventID = fmt.Sprintf("e%d", s.nextID)
		if id != "" {
			evs[i].EventID = id
		}
		s.pending, _, _ = e.Apply(s.pending, src, &evs[i], s.wall)
	}
}

func (s *script) restore() {
	s.t.Helper()
	old := s.engine()
	fresh := NewEngine(old.Config(), 3, s.wall)
	if err := fresh.RestoreMeta(old.AppendMeta(nil)); err != nil {
		s.fatalf("restore meta: %v", err)
	}
	for slot := uint32(0); slot < old.n; slot++ {
		c := old.at(slot)
		if err := fresh.RestoreCustomer(c.ID(), old.AppendSnapshot(nil, c)); err != nil {
			s.fatalf("restore %s: %v", c.ID(), err)
		}
	}
	// The restored engine must write the same bytes.
	for slot := uint32(0); slot < old.n; slot++ {
		c := old.at(slot)
		if a, b := old.AppendSnapshot(nil, c), fresh.AppendSnapshot(nil, fresh.Customer(c.ID())); string(a) != string(b) {
			s.fatalf("snapshot of %s changed by a round trip", c.ID())
		}
	}
	fresh.stats = old.stats
	s.eng = fresh
}

func (s *script) dump() string {
	var b strings.Builder
	for _, tr := range s.pending {
		fmt.Fprintf(&b, "  %s %s %s reasons=%v action=%s tier=%s prio=%d risk=%.3f asof=%s evidence=%v\n",
			tr.Kind, tr.CustomerID, tr.PrimaryReason, tr.Reasons, tr.RecommendedAction, tr.ValueTier,
			tr.Priority, tr.RiskScore, time.UnixMilli(tr.AsOf).UTC().Format(time.RFC3339), tr.Evidence)
	}
	return b.String()
}

func splitOp(a string) (key, op, val string, ok bool) {
	for _, o := range []string{">=", "<=", "!=", "=", ">", "<"} {
		if i := strings.Index(a, o); i > 0 {
			return a[:i], o, a[i+len(o):], true
		}
	}
	return "", "", "", false
}

func compare(got float64, op string, want float64) bool {
	const eps = 1e-6
	switch op {
	case "=":
		return math.Abs(got-want) <= eps*max(1, math.Abs(want))
	case "!=":
		return math.Abs(got-want) > eps*max(1, math.Abs(want))
	case "<":
		return got < want
	case "<=":
		return got <= want+eps
	case ">":
		return got > want
	case ">=":
		return got >= want-eps
	}
	return false
}

func (s *script) expect(f []string) {
	s.t.Helper()
	if len(f) == 0 {
		s.fatalf("expect what?")
	}
	e := s.engine()
	switch f[0] {
	case "none":
		if len(s.pending) > 0 {
			s.fatalf("expected no triggers, got:\n%s", s.dump())
		}
		return
	case "stats":
		st := e.Stats()
		vals := map[string]uint64{"late": st.Late, "dup": st.Duplicates, "events": st.Events,
			"recovered": st.Recovered, "suppressed": st.Suppressed, "preempted": st.Preempted,
			"control": st.Control, "budget_held": st.BudgetHeld, "budget_delayed": st.BudgetDelayed,
			"budget_merged": st.BudgetMerged, "budget_dropped": st.BudgetDropped}
		for _, a := range f[1:] {
			k, op, v, ok := splitOp(a)
			want, err := strconv.ParseFloat(v, 64)
			got, known := vals[k]
			if !ok || err != nil || !known {
				s.fatalf("bad stats check %q", a)
			}
			if !compare(float64(got), op, want) {
				s.fatalf("stats %s = %d, want %s%s", k, got, op, v)
			}
		}
		return
	case "watermark":
		got := e.Watermark()
		if f[1] == "none" {
			if got != math.MinInt64 {
				s.fatalf("watermark = %s, want none", time.UnixMilli(got).UTC())
			}
			return
		}
		want, err := parseTime(f[1])
		if err != nil {
			s.fatalf("%v", err)
		}
		if got != want.UnixMilli() {
			s.fatalf("watermark = %s, want %s", fmtMs(got), want)
		}
		return
	case "timer":
		c := e.Customer(f[1])
		if c == nil {
			s.fatalf("no customer %q", f[1])
		}
		got, ok := c.Due()
		if f[2] == "none" {
			if ok {
				s.fatalf("timer of %s = %s, want none", f[1], fmtMs(got))
			}
			return
		}
		want, err := parseTime(f[2])
		if err != nil {
			s.fatalf("%v", err)
		}
		if !ok || got != want.UnixMilli() {
			s.fatalf("timer of %s = %s (%v), want %s", f[1], fmtMs(got), ok, want)
		}
		return
	case "agg":
		c := e.Customer(f[1])
		if c == nil {
			s.fatalf("no customer %q", f[1])
		}
		a := reflect.ValueOf(c.Aggregate(e))
		for _, kv := range f[2:] {
			k, op, v, ok := splitOp(kv)
			if !ok {
				s.fatalf("bad agg check %q", kv)
			}
			fv := a.FieldByNameFunc(func(n string) bool { return strings.EqualFold(n, k) })
			if !fv.IsValid() {
				s.fatalf("no Aggregate field %q", k)
			}
			switch fv.Kind() {
			case reflect.String:
				if got := fv.String(); (got == v) != (op == "=") {
					s.fatalf("agg %s.%s = %q, want %s%q", f[1], k, got, op, v)
				}
			case reflect.Bool:
				if got := strconv.FormatBool(fv.Bool()); (got == v) != (op == "=") {
					s.fatalf("agg %s.%s = %s, want %s%s", f[1], k, got, op, v)
				}
			case reflect.Slice:
				got := fmt.Sprint(fv.Interface())
				if (got == v) != (op == "=") {
					s.fatalf("agg %s.%s = %s, want %s%s", f[1], k, got, op, v)
				}
			default:
				var got float64
				switch fv.Kind() {
				case reflect.Float64, reflect.Float32:
					got = fv.Float()
				case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
					got = float64(fv.Uint())
				default:
					got = float64(fv.Int())
				}
				want, err := strconv.ParseFloat(v, 64)
				if err != nil {
					s.fatalf("bad number %q", v)
				}
				if !compare(got, op, want) {
					s.fatalf("agg %s.%s = %v, want %s%v", f[1], k, got, op, want)
				}
			}
		}
		return
	}
	if len(f) < 2 {
		s.fatalf("usage: expect <KIND> <cust> [REASON] [attrs]")
	}
	kind, cust := event.TriggerKind(f[0]), f[1]
	if kind != event.TriggerWinback && kind != event.TriggerRecovered {
		s.fatalf("unknown expectation %q", f[0])
	}
	rest := f[2:]
	var reason event.Reason
	if len(rest) > 0 && !strings.ContainsAny(rest[0], "=<>") {
		reason = event.Reason(rest[0])
		rest = rest[1:]
	}
	var why []string
	for i, tr := range s.pending {
		if tr.Kind != kind || tr.CustomerID != cust || (reason != "" && tr.PrimaryReason != reason) {
			continue
		}
		if msg := s.match(&tr, rest); msg != "" {
			why = append(why, msg)
			continue
		}
		s.pending = slices.Delete(s.pending, i, i+1)
		return
	}
	s.fatalf("no trigger matches %v (%s); pending:\n%s", f, strings.Join(why, "; "), s.dump())
}

func fmtMs(ms int64) string { return time.UnixMilli(ms).UTC().Format(time.RFC3339) }

// match checks attrs against tr and returns why it fails ("" if it matches).
func (s *script) match(tr *event.Trigger, attrs []string) string {
	var save []string
	for _, a := range attrs {
		k, op, v, ok := splitOp(a)
		if !ok {
			s.fatalf("bad attribute %q", a)
		}
		switch k {
		case "action":
			if string(tr.RecommendedAction) != v {
				return fmt.Sprintf("action %s", tr.RecommendedAction)
			}
		case "tier":
			if string(tr.ValueTier) != v {
				return fmt.Sprintf("tier %s", tr.ValueTier)
			}
		case "treatment":
			if string(tr.Arm()) != v {
				return fmt.Sprintf("treatment %s", tr.Arm())
			}
		case "asof":
			want, err := parseTime(v)
			if err != nil {
				s.fatalf("%v", err)
			}
			if !compare(float64(tr.AsOf), op, float64(want.UnixMilli())) {
				return "asof " + fmtMs(tr.AsOf)
			}
		case "reasons":
			for _, r := range strings.Split(v, ",") {
				if !slices.Contains(tr.Reasons, event.Reason(r)) {
					return fmt.Sprintf("reasons %v", tr.Reasons)
				}
			}
		case "as":
			save = append(save, v)
		case "original", "id":
			want, ok := s.saved[v]
			if !ok {
				s.fatalf("no saved trigger %q", v)
			}
			got := tr.TriggerID
			if k == "original" {
				got = tr.OriginalTriggerID
			}
			if (got == want) != (op == "=") {
				return fmt.Sprintf("%s %s", k, got)
			}
		default:
			want, err := strconv.ParseFloat(v, 64)
			if err != nil {
				s.fatalf("bad number in %q", a)
			}
			var got float64
			switch k {
			case "priority":
				got = float64(tr.Priority)
			case "risk":
				got = tr.RiskScore
			default:
				var ok bool
				if got, ok = tr.Evidence[k]; !ok {
					return "no evidence " + k
				}
			}
			if !compare(got, op, want) {
				return fmt.Sprintf("%s=%v", k, got)
			}
		}
	}
	for _, name := range save {
		s.saved[name] = tr.TriggerID
	}
	return ""
}
