package gen

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/winback/winback/pipeline/event"
)

const (
	msMinute = int64(60_000)
	msHour   = 60 * msMinute
	msDay    = 24 * msHour
)

func days(d float64) int64 { return int64(d * float64(msDay)) }

// campaign is one marketing e-mail sent to every subscribed customer.
type campaign struct {
	at int64
	id string
}

// ticketPlan is a planned support ticket.
type ticketPlan struct {
	at       int64
	category string
	priority event.TicketPriority
	// outcome
	resolveAfter float64 // days
	reopen       bool
	csat, nps    int8 // on the (final) RESOLVED; event.NoScore if none
}

// plan is everything about a customer decided up front, from the plan
// stream. The simulation (Each) and the truth (New) both follow it.
type plan struct {
	arch     Archetype
	currency string
	amount   float64 // median order value
	hour     float64 // preferred hour of day of orders, UTC

	// Orders. With interval > 0 the customer buys every interval days
	// (±jitter) from firstOrder; with times set, exactly at times.
	interval   float64
	jitter     float64 // grid jitter, a share of the interval (total width)
	sigma      float64 // log-normal spread of order values
	refund     float64 // largest share of an order refunded
	firstOrder int64
	pauseAt    int64 // no order at or after pauseAt …
	resumeAt   int64 // … until resumeAt (returners); 0: never again
	maxOrders  int   // 0: no limit
	times      []int64
	dropAt     int64   // spend decliners: amounts fall from here …
	dropFactor float64 // … to this share of the personal median

	// E-mail.
	emailFrom   int64 // receives campaigns sent at or after this
	openP       float64
	clickP      float64 // share of opens that click
	disengageAt int64   // open propensity falls to lowOpen from here
	unsubAt     int64   // unsubscribes at the first campaign at or after
	unsubType   event.EmailType
	bounceAt    int64 // hard-bounces at the first campaign at or after

	// Support.
	ticketGap float64      // mean days between background tickets; 0: none
	tickets   []ticketPlan // planted tickets (friction, low satisfaction)
}

// orderClock yields a plan's order times in order. It draws from its own
// stream so that New can replay it to compute the truth.
//
// A rhythm buyer's k-th order falls on the day of base + k·interval, at
// their habitual hour ±2 h, moved by up to ±orderJitter/2 of the interval:
// gaps stay within about ±(orderJitter + 1 day) of the interval, and, since
// the jitter does not accumulate, any 90-day window holds nearly the same
// number of orders.
type orderClock struct {
	p    *plan
	r    *rand.Rand
	end  int64
	base int64 // grid origin
	k    int   // grid index of next
	next int64
	n    int
	done bool
}

func newOrderClock(p *plan, r *rand.Rand, end int64) *orderClock {
	c := &orderClock{p: p, r: r, end: end}
	switch {
	case len(p.times) > 0:
		c.next = p.times[0]
	case p.interval > 0:
		c.base = p.firstOrder
		c.next = p.firstOrder
	default:
		c.done = true
	}
	c.check()
	return c
}

func (c *orderClock) check() {
	if c.done {
		return
	}
	if c.p.pauseAt > 0 && c.next >= c.p.pauseAt && (c.p.resumeAt == 0 || c.next < c.p.resumeAt) {
		if c.p.resumeAt == 0 {
			c.done = true
			return
		}
		c.next, c.base, c.k = c.p.resumeAt, c.p.resumeAt, 0
	}
	if c.next >= c.end || (c.p.maxOrders > 0 && c.n >= c.p.maxOrders) {
		c.done = true
	}
}

// peek returns the next order time, or false.
func (c *orderClock) peek() (int64, bool) { return c.next, !c.done }

// advance moves past the current order.
func (c *orderClock) advance() {
	c.n++
	if len(c.p.times) > 0 {
		if c.n >= len(c.p.times) {
			c.done = true
			return
		}
		c.next = c.p.times[c.n]
		c.check()
		return
	}
	c.k++
	grid := c.base + days(float64(c.k)*c.p.interval)
	t := atHour(grid, c.p.hour+uniform(c.r, -2, 2))
	t += days(c.p.interval * uniform(c.r, -c.p.jitter/2, c.p.jitter/2))
	if t <= c.next {
		t = c.next + msHour
	}
	c.next = t
	c.check()
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// pending is a customer's queue of generated but not yet emitted events.
type pending []pendingEvent

type pendingEvent struct {
	ev  event.Event
	seq uint32
}

func (q pending) less(i, j int) bool {
	if q[i].ev.Time != q[j].ev.Time {
		return q[i].ev.Time < q[j].ev.Time
	}
	return q[i].seq < q[j].seq
}

// push and pop keep q a binary min-heap (container/heap would box every
// event in an interface).
func (q *pending) push(pe pendingEvent) {
	*q = append(*q, pe)
	h := *q
	for i := len(h) - 1; i > 0; {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			break
		}
		h[i], h[parent] = h[parent], h[i]
		i = parent
	}
}

func (q *pending) pop() pendingEvent {
	h := *q
	top := h[0]
	last := len(h) - 1
	h[0] = h[last]
	h[last] = pendingEvent{}
	h = h[:last]
	for i := 0; ; {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(h) && h.less(l, m) {
			m = l
		}
		if r < len(h) && h.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
	*q = h
	return top
}

// customer is the running simulation of one customer.
type customer struct {
	idx int
	id  string
	p   *plan
	g   *Generator

	orders  *orderClock
	ro, re  *rand.Rand // order contents, e-mail behaviour
	rs      *rand.Rand // support
	queue   pending
	seq     uint32
	nOrder  int // order events
	nPlaced int // order ids
	nEmail  int
	nSupp   int
	nTicket int

	// e-mail
	campaign     int // next campaign index
	sendOffset   int64
	openAcc      float64
	clickAcc     float64
	subscribed   bool
	unsubscribed bool
	bounced      bool

	// support
	nextTicket int64
	planned    int // next planned ticket
}

func (g *Generator) newCustomer(idx int) *customer {
	p := &g.plans[idx]
	c := &customer{
		idx:        idx,
		id:         customerID(idx),
		p:          p,
		g:          g,
		orders:     newOrderClock(p, newRand(g.cfg.Seed, idx, streamOrderTimes), g.end),
		ro:         newRand(g.cfg.Seed, idx, streamOrders),
		re:         newRand(g.cfg.Seed, idx, streamEmail),
		rs:         newRand(g.cfg.Seed, idx, streamSupport),
		subscribed: true,
	}
	c.sendOffset = int64(c.re.Float64() * float64(90*msMinute))
	c.openAcc = c.re.Float64()
	c.clickAcc = c.re.Float64()
	c.campaign = g.firstCampaign(p.emailFrom)
	c.nextTicket = math.MaxInt64
	if p.ticketGap > 0 {
		c.nextTicket = g.start + days(backgroundTicketMinGap*c.rs.Float64()+c.rs.ExpFloat64()*p.ticketGap)
	}
	return c
}

func customerID(idx int) string { return fmt.Sprintf("c%06d", idx+1) }

// nextWake returns the time of the customer's next source (order, campaign
// or ticket) that has not been expanded into events yet.
func (c *customer) nextWake() int64 {
	t := int64(math.MaxInt64)
	if o, ok := c.orders.peek(); ok {
		t = o
	}
	if at, ok := c.campaignAt(); ok && at < t {
		t = at
	}
	if c.nextTicket < t {
		t = c.nextTicket
	}
	if c.planned < len(c.p.tickets) && c.p.tickets[c.planned].at < t {
		t = c.p.tickets[c.planned].at
	}
	return t
}

func (c *customer) campaignAt() (int64, bool) {
	if !c.subscribed || c.campaign >= len(c.g.campaigns) {
		return 0, false
	}
	return c.g.campaigns[c.campaign].at + c.sendOffset, true
}

// emitUntil expands every source due before t and appends the customer's
// events before t, in order, to out.
func (c *customer) emitUntil(t int64, out []event.Event) []event.Event {
	for {
		w := c.nextWake()
		if w >= t {
			break
		}
		switch {
		case c.orderDue(w):
			c.expandOrder(w)
		case c.campaignDue(w):
			c.expandCampaign(w)
		case c.planned < len(c.p.tickets) && c.p.tickets[c.planned].at == w:
			c.expandTicket(&c.p.tickets[c.planned])
			c.planned++
		default: // background ticket, unless a planted one is near
			if !c.nearPlanted(w) {
				c.expandTicket(c.backgroundTicket(w))
			}
			c.nextTicket = w + days(backgroundTicketMinGap+c.rs.ExpFloat64()*c.p.ticketGap)
		}
	}
	for len(c.queue) > 0 && c.queue[0].ev.Time < t {
		pe := c.queue.pop()
		if pe.ev.Time < c.g.end {
			out = append(out, pe.ev)
		}
	}
	return out
}

func (c *customer) nearPlanted(t int64) bool {
	for _, tp := range c.p.tickets {
		if d := t - tp.at; d > -days(plantedTicketQuiet) && d < days(plantedTicketQuiet) {
			return true
		}
	}
	return false
}

func (c *customer) orderDue(w int64) bool {
	o, ok := c.orders.peek()
	return ok && o == w
}

func (c *customer) campaignDue(w int64) bool {
	at, ok := c.campaignAt()
	return ok && at == w
}

func (c *customer) push(ev event.Event) {
	ev.CustomerID = c.id
	c.seq++
	c.queue.push(pendingEvent{ev: ev, seq: c.seq})
}

var currencies = []string{"EUR", "USD", "GBP"}

func (c *customer) expandOrder(t int64) {
	c.orders.advance()
	p := c.p
	median := p.amount
	if p.dropAt > 0 && t >= p.dropAt {
		median *= p.dropFactor
	}
	amount := cents(lognormal(c.ro, median, p.sigma))
	items := int32(1 + math.Floor(amount/35*uniform(c.ro, 0.5, 1.5)))
	if items > 25 {
		items = 25
	}
	c.nPlaced++
	orderID := fmt.Sprintf("ord-%s-%04d", c.id, c.nPlaced)
	c.push(c.orderEvent(t, event.OrderPlaced, orderID, amount, items))
	// A partial refund now and then: a returned item, days later. It
	// never touches more than p.refund of the order (a third, a sixth for
	// monthly buyers), so it cannot make a steady customer's spend fall by
	// the decline threshold.
	if c.ro.Float64() < refundShare {
		back := cents(amount * uniform(c.ro, 0.3, 1) * p.refund)
		c.push(c.orderEvent(t+days(uniform(c.ro, 3, 14)), event.OrderRefunded, orderID, back, 1))
	}
}

func (c *customer) orderEvent(t int64, typ event.OrderType, orderID string, amount float64, items int32) event.Event {
	c.nOrder++
	return event.Event{
		Kind:      event.KindOrder,
		EventID:   fmt.Sprintf("o-%s-%d", c.id, c.nOrder),
		Time:      t,
		OrderType: typ,
		OrderID:   orderID,
		Amount:    amount,
		Currency:  c.p.currency,
		Items:     items,
	}
}

func cents(x float64) float64 {
	x = math.Round(x*100) / 100
	if x < 0.5 {
		x = 0.5
	}
	return x
}

func (c *customer) emailEvent(t int64, typ event.EmailType, cmp string) event.Event {
	c.nEmail++
	return event.Event{
		Kind:       event.KindEmail,
		EventID:    fmt.Sprintf("e-%s-%d", c.id, c.nEmail),
		Time:       t,
		EmailType:  typ,
		CampaignID: cmp,
	}
}

// openPropensity is the customer's chance to open an e-mail sent at t.
func (c *customer) openPropensity(t int64) float64 {
	p := c.p
	if p.disengageAt == 0 || t < p.disengageAt {
		return p.openP
	}
	f := float64(t-p.disengageAt) / float64(days(disengageRampDays))
	if f > 1 {
		f = 1
	}
	return p.openP + (disengagedOpen-p.openP)*f
}

func (c *customer) expandCampaign(t int64) {
	cmp := c.g.campaigns[c.campaign].id
	planned := c.g.campaigns[c.campaign].at // the truth keys on this, not on t
	c.campaign++
	p := c.p
	c.push(c.emailEvent(t, event.EmailSent, cmp))
	if p.bounceAt > 0 && planned >= p.bounceAt {
		// A hard bounce: the address is gone. The e-mail platform
		// suppresses it from then on.
		c.push(c.emailEvent(t+int64(uniform(c.re, 5, 120)*1000), event.EmailBounced, cmp))
		c.bounced = true
		c.subscribed = false
		return
	}
	delivered := t + int64(uniform(c.re, 2, 60)*1000)
	c.push(c.emailEvent(delivered, event.EmailDelivered, cmp))
	if p.unsubAt > 0 && planned >= p.unsubAt {
		// Opens the e-mail and unsubscribes from it, or marks it as
		// spam without opening it.
		at := delivered + int64(math.Min(lognormal(c.re, 3, 1), 18)*float64(msHour))
		if p.unsubType == event.EmailUnsubscribed {
			c.push(c.emailEvent(at, event.EmailOpened, cmp))
			at += int64(uniform(c.re, 10, 120) * 1000)
		}
		c.push(c.emailEvent(at, p.unsubType, cmp))
		c.unsubscribed = true
		c.subscribed = false
		return
	}
	// Opens follow the propensity closely over any run of e-mails (error
	// diffusion from a random phase, with a little noise), so a steady
	// customer's 30-day open rate stays within one e-mail of their norm
	// instead of swinging with a coin toss.
	c.openAcc += c.openPropensity(t) + uniform(c.re, -0.03, 0.03)
	if c.openAcc < 1 {
		return
	}
	c.openAcc--
	opened := delivered + int64(math.Min(lognormal(c.re, 3, 1), 72)*float64(msHour))
	c.push(c.emailEvent(opened, event.EmailOpened, cmp))
	c.clickAcc += p.clickP + uniform(c.re, -0.03, 0.03)
	if c.clickAcc >= 1 {
		c.clickAcc--
		c.push(c.emailEvent(opened+int64(uniform(c.re, 15, 600)*1000), event.EmailClicked, cmp))
	}
}

var (
	backgroundCategories = []string{"delivery", "billing", "product", "account"}
	backgroundCatWeights = []float64{0.4, 0.2, 0.3, 0.1}
)

func (c *customer) backgroundTicket(t int64) *ticketPlan {
	tp := &ticketPlan{
		at:           t,
		category:     pick(c.rs, backgroundCategories, backgroundCatWeights),
		priority:     pick(c.rs, []event.TicketPriority{event.PriorityLow, event.PriorityNormal}, []float64{0.3, 0.7}),
		resolveAfter: uniform(c.rs, 0.2, quickResolveDays),
		csat:         event.NoScore,
		nps:          event.NoScore,
	}
	// Satisfied customers: CSAT 4–5 when they answer, NPS 8–10.
	if c.rs.Float64() < 0.55 {
		tp.csat = int8(4 + c.rs.IntN(2))
	}
	if c.rs.Float64() < 0.2 {
		tp.nps = int8(8 + c.rs.IntN(3))
	}
	return tp
}

func (c *customer) supportEvent(t int64, typ event.SupportType, tp *ticketPlan, id string) event.Event {
	c.nSupp++
	return event.Event{
		Kind:        event.KindSupport,
		EventID:     fmt.Sprintf("s-%s-%d", c.id, c.nSupp),
		Time:        t,
		SupportType: typ,
		TicketID:    id,
		Category:    tp.category,
		Priority:    tp.priority,
		CSAT:        event.NoScore,
		NPS:         event.NoScore,
	}
}

// expandTicket plans the whole life of a ticket: opened, an agent's
// update, resolved (with the scores), and, if planned, reopened and
// resolved again.
func (c *customer) expandTicket(tp *ticketPlan) {
	c.nTicket++
	id := fmt.Sprintf("t-%s-%d", c.id, c.nTicket)
	t := tp.at
	c.push(c.supportEvent(t, event.SupportOpened, tp, id))
	upd := t + int64(math.Min(lognormal(c.rs, 3, 0.8), 20)*float64(msHour))
	c.push(c.supportEvent(upd, event.SupportUpdated, tp, id))
	res := t + days(tp.resolveAfter)
	if res <= upd {
		res = upd + 30*msMinute
	}
	resolved := c.supportEvent(res, event.SupportResolved, tp, id)
	if !tp.reopen {
		resolved.CSAT, resolved.NPS = tp.csat, tp.nps
		c.push(resolved)
		return
	}
	c.push(resolved)
	re := res + days(uniform(c.rs, 0.5, 3))
	c.push(c.supportEvent(re, event.SupportReopened, tp, id))
	upd = re + int64(math.Min(lognormal(c.rs, 2, 0.8), 20)*float64(msHour))
	c.push(c.supportEvent(upd, event.SupportUpdated, tp, id))
	final := c.supportEvent(upd+days(uniform(c.rs, 0.5, 3)), event.SupportResolved, tp, id)
	final.CSAT, final.NPS = tp.csat, tp.nps
	c.push(final)
}
