package lapse

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/winback/winback/pipeline/btyd"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/pipeline/window"
)

// Sources of a task, in the order the runner numbers them.
const (
	SourceOrders  = 0
	SourceEmail   = 1
	SourceSupport = 2
)

// SourceOf is the source of an event of kind k: its kind's input, whether
// it came directly or through the repartition topic.
func SourceOf(k event.Kind) int {
	switch k {
	case event.KindEmail:
		return SourceEmail
	case event.KindSupport:
		return SourceSupport
	}
	return SourceOrders
}

const chunkBits = 8 // customers are allocated 256 at a time

// maxAmount caps an order amount (currency units) so that sums of cents
// cannot overflow.
const maxAmount = 1e12

// Engine is the signal engine of one task (partition number). It is pure:
// it starts no goroutines, does no I/O, and takes event time from the
// events and wall time from its callers. It is not safe for concurrent use.
type Engine struct {
	p      params
	wm     *window.Watermark
	start  time.Time
	timers window.Timers
	ix     index
	ids    idStore
	chunks [][]Customer
	n      uint32
	dirty  []uint32
	cohort sketch // personal usual intervals, hours
	// cohortMemo is cohortHours as of the cohort sketch's generation gen.
	cohortMemo struct {
		h   uint16
		gen uint64
	}
	value  sketch      // CLV
	model  btyd.Params // population parameters of p_lapse (SetPurchaseModel)
	popAOV float64     // the task's value per purchase, as of the last refit (0: none)
	// refitAt is the event-time boundary (Unix ms) of the last refit (0:
	// none), refitNext the earliest boundary of the next one (0: the next
	// boundary); repriceDue asks started for a reprice after a restored
	// meta (refit.go).
	refitAt    int64
	refitNext  int64
	repriceDue bool
	metaDirty  bool // a refit changed the meta (TakeMetaDirty)
	onRefit    func(RefitInfo)
	refitHeap  sampleHeap
	silence    silenceMemo // the lapse's model gap per (K, x) (silence.go)
	stats      counters
	fire       []dueItem // scratch for advanceTo
	decay      *window.Decay
	// restartIdle restarts the sources' idle clocks at the next Apply or
	// Advance: the tracker "starts" when the task starts processing, not
	// when it was created or restored.
	restartIdle bool
	days        dayRows // see days.go
	undo        undoLog // see undo.go
	// Customers leaving (forget.go): the TTL in ms (0: none), evictions
	// not yet taken, and slots due for eviction in this round of timers.
	ttl      int64
	gone     []Gone
	evicting []uint32
}

type dueItem struct {
	c   *Customer
	due int64
}

// NewEngine returns an engine for a task with the given number of input
// sources (3: orders, email, support), started at wall time start. cfg must
// pass Validate (the zero Config stands for DefaultConfig); NewEngine panics
// on an invalid one, since that is a programming error.
func NewEngine(cfg Config, sources int, start time.Time) *Engine {
	if cfg.Actions == nil && cfg.Risk.Weights == nil && cfg.Lapse.Factor == 0 {
		cfg = DefaultConfig()
	}
	if err := cfg.Validate(); err != nil {
		panic(fmt.Sprintf("lapse.NewEngine: %v", err))
	}
	e := &Engine{
		p:      newParams(cfg),
		wm:     window.NewWatermark(sources, cfg.AllowedLateness, cfg.IdleTimeout, start),
		start:  start,
		cohort: newSketch(cohortBuckets),
		value:  newSketch(valueBuckets),
		decay:  window.NewDecay(cfg.Engagement.BaselineHalfLifeDays),
		model:  btyd.DefaultParams(btyd.MBGNBD),
	}
	e.ix.init()
	e.stats.triggers = make([]uint64, nReasons)
	e.restartIdle = true
	return e
}

// Config returns the engine's configuration.
func (e *Engine) Config() Config { return e.p.cfg }

// Watermark returns the task watermark (Unix ms), or math.MinInt64 before
// any event.
func (e *Engine) Watermark() int64 { return e.wm.Current() }

// Len returns the number of customers tracked.
func (e *Engine) Len() int { return int(e.n) }

// Dirty returns how many customers changed since TakeDirty last ran (an
// upper bound: a customer that moved slot may count twice).
func (e *Engine) Dirty() int { return len(e.dirty) }

// PendingTimers returns the number of armed timers.
func (e *Engine) PendingTimers() int { return e.timers.Len() }

// Customer returns the customer with the given id, or nil.
func (e *Engine) Customer(id string) *Customer {
	if slot, ok := e.ix.find(e, id, e.ix.hash(id)); ok {
		return e.at(slot)
	}
	return nil
}

func (e *Engine) at(slot uint32) *Customer {
	return &e.chunks[slot>>chunkBits][slot&(1<<chunkBits-1)]
}

func (e *Engine) customer(id string) *Customer {
	h := e.ix.hash(id)
	if slot, ok := e.ix.find(e, id, h); ok {
		return e.at(slot)
	}
	slot := e.n
	if int(slot>>chunkBits) == len(e.chunks) {
		e.chunks = append(e.chunks, make([]Customer, 1<<chunkBits))
	}
	e.n++
	c := e.at(slot)
	*c = Customer{eng: e, slot: slot}
	c.idRef, c.idLen = e.ids.add(id)
	c.idTag = idTag(id)
	e.ix.insert(h, slot)
	if e.undo.on {
		e.keepNew(c, id)
	}
	return c
}

// TakeDirty calls fn for every customer changed since the last call (an
// event applied or a timer fired), in the order they first changed, then
// clears the set.
func (e *Engine) TakeDirty(fn func(c *Customer)) {
	for _, slot := range e.dirty {
		if slot >= e.n {
			continue // a customer moved away from it (forget.go)
		}
		c := e.at(slot)
		if c.flags&flagDirty == 0 {
			continue // listed twice after a move, or someone else's now
		}
		c.flags &^= flagDirty
		fn(c)
	}
	e.dirty = e.dirty[:0]
	if cap(e.dirty) > 4*int(e.n)+1<<16 {
		e.dirty = nil // customers left since the batch that grew it
	}
}

// touch records a change of c at event time t.
func (e *Engine) touch(c *Customer, t int64) {
	e.days.closeDay(e, c, t)
	c.version++
	c.lastChange = max(c.lastChange, t)
	if c.flags&flagDirty == 0 {
		c.flags |= flagDirty
		e.dirty = append(e.dirty, c.slot)
	}
}

// Apply applies one decoded, validated event from input source src
// (SourceOrders, SourceEmail, SourceSupport) at wall time now, appending
// the triggers it causes to dst.
//
// Besides the event's own triggers (an unsubscribe, a low CSAT, a RECOVERED
// order …), Apply fires the timers that fall due because this event moved
// the watermark, so the triggers do not depend on how often the runner calls
// Advance. dup reports an event id seen among the customer's last 8 (the
// event is ignored); late reports an event behind the watermark (it is
// counted in the windows but never re-fires a trigger already sent).
func (e *Engine) Apply(dst []event.Trigger, src int, ev *event.Event, now time.Time) (out []event.Trigger, dup, late bool) {
	e.started(now)
	e.stats.Events++
	wm := e.wm.Current()
	late = wm != window.NoWatermark && ev.Time < wm
	c := e.customer(ev.CustomerID)
	e.prefetch(c)
	h := uint32(0)
	if ev.EventID != "" {
		h = hash32(ev.EventID)
		if c.seenBefore(h) {
			e.stats.Duplicates++
			e.wm.Observe(src, ev.Time, now)
			return e.advanceTo(dst, now), true, false
		}
	}
	if late {
		e.stats.Late++
	}
	if e.undo.on && c.flags&flagUndo == 0 {
		e.keepTimer(c)
	}
	dst = e.applyEvent(dst, c, ev, h, now)
	e.days.lateDay(e, c, ev)
	e.wm.Observe(src, ev.Time, now)
	return e.advanceTo(dst, now), false, late
}

// prefetch starts loading c's state kept outside c (its order days, its
// tickets, its timer) at once, so that their cache misses overlap instead
// of coming one after another as Apply reaches each. After a full Probe
// they are in cache already.
func (e *Engine) prefetch(c *Customer) {
	c.ordWin.Prefetch()
	if c.sup != nil {
		c.sup.Prefetch()
	}
	e.timers.PrefetchDue(c.slot)
}

// Advance fires the silence and SLA timers due at the watermark as of wall
// time now (idle sources stop holding it back) and appends their triggers
// to dst.
func (e *Engine) Advance(dst []event.Trigger, now time.Time) []event.Trigger {
	e.started(now)
	return e.advanceTo(dst, now)
}

// SetDrained tells whether source src (SourceOrders, SourceEmail,
// SourceSupport) has nothing left to deliver: its input read to its end.
// One that never delivered anything then holds the watermark back no
// longer (window.Watermark.SetDrained).
func (e *Engine) SetDrained(src int, drained bool) { e.wm.SetDrained(src, drained) }

// Follow raises the task's watermark to t, the event time of the rest of
// the pipeline, when the task's own inputs are silent, and fires the
// timers that fall due, appending their triggers to dst. A t at or below
// the watermark changes nothing. The caller decides when a task may follow
// (caught up and idle) and records the new watermark (AppendMeta), so that
// a restore does not take it back.
func (e *Engine) Follow(dst []event.Trigger, t int64, now time.Time) []event.Trigger {
	e.started(now)
	if !e.wm.Raise(t) {
		return dst
	}
	return e.advanceTo(dst, now)
}

func (e *Engine) started(now time.Time) {
	if e.restartIdle {
		e.wm.Restart(now)
		e.restartIdle = false
	}
	if e.repriceDue {
		e.reprice()
		e.repriceDue = false
	}
}

// advanceTo raises the watermark as of wall time now and fires the timers
// due at it. If the watermark crossed a refit boundary, the timers due
// before the boundary fire first, under the parameters in use until then.
func (e *Engine) advanceTo(dst []event.Trigger, now time.Time) []event.Trigger {
	wm := e.wm.Advance(now)
	if b, ok := e.refitDue(wm); ok {
		dst = e.fireDue(dst, b-1, now)
		e.refit(b)
	}
	return e.fireDue(dst, wm, now)
}

// fireDue fires the timers due at or before wm, in due order (ties by
// customer id), until none is left: a fired timer may arm another one
// that is due already.
func (e *Engine) fireDue(dst []event.Trigger, wm int64, now time.Time) []event.Trigger {
	for {
		e.fire = e.fire[:0]
		for {
			slot, due, ok := e.timers.PopDue(wm)
			if !ok {
				break
			}
			c := e.at(slot)
			if e.undo.on && c.flags&flagUndo == 0 {
				e.keep(c, due) // with the timer just popped
			}
			e.fire = append(e.fire, dueItem{c, due})
		}
		if len(e.fire) == 0 {
			return dst
		}
		// Slots depend on arrival order (and differ after a restore); the
		// customer id does not.
		slices.SortFunc(e.fire, func(a, b dueItem) int {
			if a.due != b.due {
				if a.due < b.due {
					return -1
				}
				return 1
			}
			return strings.Compare(a.c.ID(), b.c.ID())
		})
		for _, it := range e.fire {
			e.stats.TimersFired++
			dst = e.onTimer(dst, it.c, it.due, now)
		}
		// The pointers would keep the chunks of customers that leave.
		clear(e.fire)
		if cap(e.fire) > 1<<16 {
			e.fire = nil
		}
		e.evictQueued()
	}
}

func (e *Engine) applyEvent(dst []event.Trigger, c *Customer, ev *event.Event, h uint32, now time.Time) []event.Trigger {
	if h != 0 {
		c.remember(h)
	}
	e.touch(c, ev.Time)
	var cause uint8
	evalSpend := false
	switch ev.Kind {
	case event.KindOrder:
		dst = e.applyOrder(dst, c, ev, now)
		evalSpend = true
	case event.KindEmail:
		cause = e.applyEmail(c, ev)
	case event.KindSupport:
		cause = e.applySupport(c, ev)
	}
	e.refresh(c, ev.Kind == event.KindOrder)
	dst = e.evaluate(dst, c, c.lastChange, ev.Time, cause, false, evalSpend, now)
	e.rearm(c)
	return dst
}

func (e *Engine) applyOrder(dst []event.Trigger, c *Customer, ev *event.Event, now time.Time) []event.Trigger {
	amount := ev.Amount
	if math.IsNaN(amount) || math.IsInf(amount, 0) {
		amount = 0
	}
	cents := int64(math.Round(min(math.Abs(amount), maxAmount) * 100))
	var n int32
	switch ev.OrderType {
	case event.OrderPlaced:
		n = 1
	case event.OrderCancelled:
		n, cents = -1, -cents
	case event.OrderRefunded:
		cents = -cents
	default:
		return dst
	}
	t := ev.Time
	c.ordWin.Add(window.Day(t), n, cents, window.Day(c.lastChange), e.p.maxOrderDays)
	c.spend += cents
	switch {
	case n > 0:
		c.orders++
	case n < 0 && c.orders > 0:
		c.orders--
	}
	if ev.OrderType != event.OrderPlaced {
		return dst
	}
	c.modelGap = 0 // the orders behind it change
	if c.firstOrder == 0 || seconds(t) < c.firstOrder {
		c.firstOrder = max(seconds(t), 1)
	}
	prev := c.lastOrder
	if t > prev {
		if prev != 0 && t-prev >= e.p.minInterval {
			c.iv.Push(t - prev)
			c.repeats++
		}
		c.lastOrder = t
		if c.flags&flagOpen == 0 || seconds(t) >= c.openAsOf {
			c.flags &^= flagLapseDone // a new silence starts
		}
		// Else a late order from before the open episode's trigger: not
		// a return, nor a new silence to fire a lapse for; the open
		// episode stays the one the customer's return closes.
	}
	e.dropHeld(c, window.Day(t)) // the customer is back: nothing waits on the budget
	if c.flags&flagOpen != 0 && seconds(t) >= c.openAsOf {
		e.refresh(c, true)
		dst = append(dst, e.recovered(c, t, cents, prev, now))
		c.flags &^= flagOpen | flagOpenControl
	}
	return dst
}

// campaignKey tags a campaign's 16-bit hash with the event kind (open or
// click); never 0.
func campaignKey(campaign string, click bool) uint16 {
	k := uint16(hash32(campaign)) &^ 1
	if click {
		k |= 1
	}
	if k == 0 {
		k = 2
	}
	return k
}

func (e *Engine) applyEmail(c *Customer, ev *event.Event) uint8 {
	day := window.Day(ev.Time)
	hl := e.decay
	if h := c.mail.Head(); h != 0 && window.EmailBucket(day) > h-1 && ev.EmailType >= event.EmailSent && ev.EmailType <= event.EmailClicked {
		// The newest bucket is complete: the sequential test takes it.
		e.cusumFold(c, h-1)
	}
	switch ev.EmailType {
	case event.EmailSent:
		c.mail.Add(day, window.EmailSent, hl)
	case event.EmailDelivered:
		c.mail.Add(day, window.EmailDelivered, hl)
		if c.afterLastBounce(day) {
			// The address works again; a delivery of the last bounce's
			// day or before it (arriving late) does not say so.
			c.flags &^= flagHardBounced
		}
	case event.EmailOpened:
		if ev.CampaignID == "" || !c.campaignSeen(campaignKey(ev.CampaignID, false)) {
			c.mail.Add(day, window.EmailOpened, hl)
		}
	case event.EmailClicked:
		// A click implies an open (images may be blocked).
		if ev.CampaignID == "" || !c.campaignSeen(campaignKey(ev.CampaignID, true)) {
			c.mail.Add(day, window.EmailClicked, hl)
		}
		if ev.CampaignID != "" && !c.campaignSeen(campaignKey(ev.CampaignID, false)) {
			c.mail.Add(day, window.EmailOpened, hl)
		}
	case event.EmailBounced:
		if c.afterLastBounce(day) {
			c.bounceDay[1], c.bounceDay[0] = c.bounceDay[0], uint16(min(day+1, window.MaxDay))
		}
		// A bounce reported late, after a delivery of a later bucket,
		// is history: the address has worked since.
		if c.flags&flagHardBounced == 0 && !c.deliveredAfter(day) {
			c.flags |= flagHardBounced
			return bitBounce
		}
	case event.EmailUnsubscribed, event.EmailComplained:
		if c.flags&flagUnsubscribed == 0 {
			c.flags |= flagUnsubscribed
			c.unsubDay = uint16(day)
			return bitUnsub
		}
	}
	return 0
}

func (e *Engine) isComplaint(ev *event.Event) bool {
	if e.p.cfg.Support.UrgentIsComplaint && ev.Priority == event.PriorityUrgent {
		return true
	}
	if ev.Category == "" {
		return false
	}
	cat := strings.TrimSpace(ev.Category)
	for _, want := range e.p.complaint {
		if strings.EqualFold(cat, want) {
			return true
		}
	}
	return false
}

func (e *Engine) applySupport(c *Customer, ev *event.Event) uint8 {
	if c.sup == nil {
		c.sup = new(window.Support)
	}
	s := c.sup
	t, day := ev.Time, window.Day(ev.Time)
	id := hash32(ev.TicketID)
	var flags, cause uint8
	switch ev.SupportType {
	case event.SupportOpened:
		flags = window.SupportOpened
		if e.isComplaint(ev) {
			flags |= window.SupportComplaint
			cause |= bitFriction
		}
		s.OpenTicket(id, t, false)
	case event.SupportReopened:
		flags = window.SupportReopened
		s.OpenTicket(id, t, true)
		if e.p.cfg.Support.ReopenFires {
			cause |= bitFriction
		}
	case event.SupportResolved:
		flags = window.SupportResolved
		s.ResolveTicket(id)
	}
	if flags != 0 {
		s.Record(day, flags, window.Day(c.lastChange))
	}
	if ev.CSAT >= 1 && ev.CSAT <= 5 {
		if _, d, ok := s.CSAT(); !ok || day >= d {
			s.SetCSAT(ev.CSAT, day)
			if int(ev.CSAT) <= e.p.cfg.Satisfaction.MaxCSAT {
				cause |= bitLowSat
			}
		}
	}
	if ev.NPS >= 0 && ev.NPS <= 10 {
		if _, d, ok := s.NPS(); !ok || day >= d {
			s.SetNPS(ev.NPS, day)
			if int(ev.NPS) <= e.p.cfg.Satisfaction.MaxNPS {
				cause |= bitLowSat
			}
		}
	}
	return cause
}

// refresh updates what a change of c derives from the task: its cells in
// the sketches (if ordered, i.e. its orders, spend or intervals changed:
// nothing else moves them), the cohort interval and its value tier.
func (e *Engine) refresh(c *Customer, ordered bool) {
	if ordered {
		e.resketch(c)
	}
	c.cohortH = e.cohortHours()
	c.tier = e.tierOf(c)
}

func (e *Engine) onTimer(dst []event.Trigger, c *Customer, due int64, now time.Time) []event.Trigger {
	if e.expired(c, due) {
		e.evict(c)
		return dst
	}
	e.touch(c, due)
	var cause uint8
	if c.sup != nil && c.sup.Breach(due, e.p.sla) > 0 {
		cause |= bitFriction
	}
	e.refresh(c, false)
	dst = e.evaluate(dst, c, due, due, cause, true, true, now)
	e.rearm(c)
	return dst
}

// rearm sets c's timer to its next due time: the lapse due, an open
// ticket's SLA, or the end of a cooldown that holds back a pending reason.
func (e *Engine) rearm(c *Customer) {
	due := int64(0)
	pick := func(t int64) {
		if t != 0 && (due == 0 || t < due) {
			due = t
		}
	}
	if e.ttl > 0 {
		pick(e.evictAt(c)) // eviction (forget.go)
	}
	if c.lastOrder != 0 && c.flags&flagLapseDone == 0 && (c.pending|c.held)&bitLapse == 0 {
		g := e.gap(c)
		pick(c.lastOrder + g.ms)
	}
	if c.sup != nil {
		if t, ok := c.sup.NextSLA(e.p.sla); ok {
			pick(t)
		}
	}
	for r := 0; r < nReasons; r++ {
		if c.pending&deferBits&(1<<r) != 0 {
			pick(e.cooldownEnd(c, r))
		}
	}
	if t := e.budgetFree(c); c.held != 0 && t > c.lastChange {
		pick(t)
	}
	if due == 0 {
		e.timers.Remove(c.slot)
	} else if old, ok := e.timers.Due(c.slot); !ok || old != due {
		e.timers.Set(c.slot, due)
	}
}

// cooldownEnd returns when reason r's cooldown for c ends (start of day).
func (e *Engine) cooldownEnd(c *Customer, r int) int64 {
	if c.firedDay[r] == 0 {
		return 1
	}
	return (int64(c.firedDay[r]) - 1 + int64(e.p.cooldown[r])) * window.MsPerDay
}
