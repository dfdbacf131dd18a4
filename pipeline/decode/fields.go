package decode

import (
	"encoding/binary"
	"math"
	"math/bits"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/winback/winback/pipeline/event"
)

// target is an event field that a record field decodes into.
type target uint8

const (
	tNone target = iota
	// string targets first: they index fields.str
	tEventID
	tCustomerID
	tOrderID
	tCurrency
	tCampaignID
	tTicketID
	tCategory
	tEventTime
	tType
	tAmount
	tItems
	tPriority
	tCSAT
	tNPS
	nTargets
)

const nStr = int(tCategory) + 1 // fields.str is indexed by target

var targetNames = [nTargets]string{
	tEventID: "event_id", tCustomerID: "customer_id", tOrderID: "order_id",
	tCurrency: "currency", tCampaignID: "campaign_id", tTicketID: "ticket_id",
	tCategory: "category", tEventTime: "event_time", tType: "type",
	tAmount: "amount", tItems: "items", tPriority: "priority", tCSAT: "csat", tNPS: "nps",
}

func (t target) String() string { return targetNames[t] }

func (t target) isString() bool { return t >= tEventID && t <= tCategory }

// spec is what one input kind's record looks like.
type spec struct {
	kind     event.Kind
	record   string // the Avro record name, without namespace
	fields   uint32 // bit per target of the kind
	required uint32 // bit per target
	ids      uint32 // string targets that must not be empty
}

// target returns the target of the contract field name, tNone if the kind
// has no such field. A switch, not a map: it is on the JSON hot path.
func (s *spec) target(name string) target {
	var t target
	switch name {
	case "event_id":
		t = tEventID
	case "customer_id":
		t = tCustomerID
	case "event_time":
		t = tEventTime
	case "type":
		t = tType
	case "order_id":
		t = tOrderID
	case "amount":
		t = tAmount
	case "currency":
		t = tCurrency
	case "items":
		t = tItems
	case "campaign_id":
		t = tCampaignID
	case "ticket_id":
		t = tTicketID
	case "category":
		t = tCategory
	case "priority":
		t = tPriority
	case "csat":
		t = tCSAT
	case "nps":
		t = tNPS
	default:
		return tNone
	}
	if s.fields&bit(t) == 0 {
		return tNone
	}
	return t
}

func bit(t target) uint32 { return 1 << t }

func newSpec(k event.Kind, record string, optional uint32, ts ...target) *spec {
	s := &spec{kind: k, record: record}
	for _, t := range ts {
		s.fields |= bit(t)
		if optional&bit(t) == 0 {
			s.required |= bit(t)
		}
		if t.isString() && t != tCategory {
			s.ids |= bit(t)
		}
	}
	return s
}

var specs = [...]*spec{
	event.KindOrder: newSpec(event.KindOrder, "Order", 0,
		tEventID, tCustomerID, tEventTime, tType, tOrderID, tAmount, tCurrency, tItems),
	event.KindEmail: newSpec(event.KindEmail, "EmailEvent", 0,
		tEventID, tCustomerID, tEventTime, tType, tCampaignID),
	event.KindSupport: newSpec(event.KindSupport, "SupportEvent", bit(tCSAT)|bit(tNPS),
		tEventID, tCustomerID, tEventTime, tType, tTicketID, tCategory, tPriority, tCSAT, tNPS),
}

func specFor(k event.Kind) *spec {
	if int(k) < len(specs) && k != 0 {
		return specs[k]
	}
	return nil
}

// enumValue maps a contract symbol of target t (tType or tPriority) to the
// event's enum value; 0 if unknown.
func (s *spec) enumValue(t target, sym string) uint8 {
	if t == tPriority {
		v, _ := event.ParseTicketPriority(sym)
		return uint8(v)
	}
	switch s.kind {
	case event.KindOrder:
		v, _ := event.ParseOrderType(sym)
		return uint8(v)
	case event.KindEmail:
		v, _ := event.ParseEmailType(sym)
		return uint8(v)
	case event.KindSupport:
		v, _ := event.ParseSupportType(sym)
		return uint8(v)
	}
	return 0
}

// str is a decoded string field: raw bytes of the record when no unescaping
// was needed, or a string built while unescaping JSON.
type str struct {
	b   []byte
	s   string
	own bool // s holds the value
}

func (v *str) len() int {
	if v.own {
		return len(v.s)
	}
	return len(v.b)
}

func (v *str) valid() bool {
	if v.own {
		return utf8.ValidString(v.s)
	}
	// Ids are ASCII: check them 8 bytes at a time and skip the call.
	b := v.b
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b)&0x8080808080808080 != 0 {
			return utf8.Valid(b)
		}
		b = b[8:]
	}
	for i, c := range b {
		if c >= utf8.RuneSelf {
			return utf8.Valid(b[i:])
		}
	}
	return true
}

func (v *str) String() string {
	if v.own {
		return v.s
	}
	return string(v.b)
}

func (v *str) equal(b []byte) bool {
	if v.own {
		return v.s == string(b)
	}
	return string(v.b) == string(b)
}

// fields collects a record's values before validation. Nulls leave a target
// unset, as if the field were absent.
type fields struct {
	set    uint32 // bit per target
	bad    *Error // the first bad value, reported once the whole record is read
	str    [nStr]str
	time   int64
	typ    uint8
	prio   uint8
	amount float64
	items  int64
	csat   int64
	nps    int64
	// A Kafka Connect envelope's schema, and a base64 amount of its
	// payload waiting for it (connect.go); slices of the record.
	schema, amount64 []byte
	// epoch: time is a number of no stated unit (epochMillis).
	epoch bool
}

func (f *fields) has(t target) bool { return f.set&bit(t) != 0 }

// symbol sets tType or tPriority to the enum value v (spec.enumValue); false
// for 0, an unknown symbol.
func (f *fields) symbol(t target, v uint8) bool {
	if v == 0 {
		return false
	}
	if t == tPriority {
		f.prio = v
	} else {
		f.typ = v
	}
	return true
}

// rfc3339 sets event_time from an RFC 3339 text (JSON's string form, and
// an Avro string such as Debezium's ZonedTimestamp), or records it invalid.
func (f *fields) rfc3339(text string) {
	tm, err := time.Parse(time.RFC3339Nano, text)
	if err != nil && len(text) > 10 && (text[10] == 't' || text[len(text)-1] == 'z') {
		// RFC 3339 allows a lower-case "t" and "z" (section 5.6), which
		// Go's layout does not.
		b := []byte(text)
		if b[10] == 't' {
			b[10] = 'T'
		}
		if b[len(b)-1] == 'z' {
			b[len(b)-1] = 'Z'
		}
		tm, err = time.Parse(time.RFC3339Nano, string(b))
	}
	if err != nil {
		f.invalid(tEventTime, newErr(ReasonFieldInvalid, "", err))
		return
	}
	f.time = tm.UnixMilli()
}

// invalid records a bad value of target t: it counts as present, and the
// error is reported after the record has been read to its end, so that a
// malformed record is reported as such whatever values come first.
func (f *fields) invalid(t target, err *Error) {
	f.set |= bit(t)
	if f.bad == nil {
		err.Field = t.String()
		f.bad = err
	}
}

// firstMissing returns the first target in contract order that is in want
// but not set.
// Targets are numbered in contract order, so it is the lowest bit missing.
func (f *fields) firstMissing(want uint32) target {
	if m := want &^ f.set &^ bit(tNone); m != 0 {
		return target(bits.TrailingZeros32(m))
	}
	return tNone
}

// MaxIDBytes is the longest event_id, customer_id, order_id, campaign_id or
// ticket_id accepted; a longer one fails with field.too_long. Every output
// record (trigger, changelog state, dead letter, ClickHouse row) carries ids,
// so bounding them bounds the outputs: a 500 KB customer_id would make
// output records that the producer refuses on every replay.
const MaxIDBytes = 256

// limited are the targets that MaxIDBytes bounds.
const limited = 1<<tEventID | 1<<tCustomerID | 1<<tOrderID | 1<<tCampaignID | 1<<tTicketID

// bounds on event_time, Unix ms.
const minEventTime = 946684800000 // 2000-01-01T00:00:00Z

// epochMillis reads an epoch number of no stated unit (JSON, a plain Avro
// long) as milliseconds, as the contract says, unless as milliseconds it
// is before 2000 and as seconds between 2000 and 2100, or as milliseconds
// after the year 31,900 and as microseconds or nanoseconds after 2000: the
// four units' readings of the years 2000 to 31,900 do not overlap, so the
// unit is never in doubt. (Python's time.time() and Unix tools write
// seconds, Debezium's MicroTimestamp microseconds.) A number that is none
// of these stays milliseconds, for the error to say what it is as such
// (1999 in milliseconds is before 2000, not seconds of the year 31,900).
func epochMillis(n int64) int64 {
	const secondsOf2100 = 4102444800
	switch {
	case n >= minEventTime/1000 && n < secondsOf2100:
		return n * 1000
	case n >= minEventTime*1_000_000:
		return n / 1_000_000
	case n >= minEventTime*1000:
		return n / 1000
	}
	return n
}

// finish validates f and fills ev. The order of checks is part of the
// contract: presence, then field values, then time, then the key.
func (d *Decoder) finish(s *spec, f *fields, key []byte, ev *event.Event) error {
	if m := f.firstMissing(s.required); m != tNone {
		return errorf(ReasonFieldMissing, m.String(), "required field is absent or null")
	}
	if f.bad != nil {
		return f.bad
	}
	for t := tEventID; t <= tCategory; t++ {
		if !f.has(t) {
			continue
		}
		v := &f.str[t]
		if limited&bit(t) != 0 && v.len() > MaxIDBytes {
			return errorf(ReasonFieldTooLong, t.String(), "%d bytes; the limit is %d", v.len(), MaxIDBytes)
		}
		if !v.valid() {
			return errorf(ReasonFieldInvalid, t.String(), "invalid UTF-8")
		}
		if s.ids&bit(t) != 0 && v.len() == 0 {
			return errorf(ReasonFieldInvalid, t.String(), "empty")
		}
	}
	if i := controlAt(&f.str[tCustomerID]); i >= 0 {
		return errorf(ReasonFieldInvalid, "customer_id", "control character at byte %d", i)
	}
	if f.has(tCurrency) && !isCurrency(&f.str[tCurrency]) {
		return errorf(ReasonFieldInvalid, "currency", "%q is not three upper-case letters", f.str[tCurrency].String())
	}
	if f.has(tAmount) && (f.amount < 0 || math.IsNaN(f.amount) || math.IsInf(f.amount, 0)) {
		return errorf(ReasonFieldInvalid, "amount", "%v is not a finite, non-negative number", f.amount)
	}
	if f.has(tItems) && (f.items < 0 || f.items > math.MaxInt32) {
		return errorf(ReasonFieldInvalid, "items", "%d is out of range 0–%d", f.items, math.MaxInt32)
	}
	if f.has(tCSAT) && (f.csat < 1 || f.csat > 5) {
		return errorf(ReasonFieldInvalid, "csat", "%d is out of range 1–5", f.csat)
	}
	if f.has(tNPS) && (f.nps < 0 || f.nps > 10) {
		return errorf(ReasonFieldInvalid, "nps", "%d is out of range 0–10", f.nps)
	}
	if f.epoch {
		f.time = epochMillis(f.time)
	}
	if f.time < minEventTime {
		return errorf(ReasonTimeOutOfRange, "event_time", "%s is before 2000-01-01", fmtMillis(f.time))
	}
	if f.time > d.latest.Load() {
		max := d.now().UnixMilli() + d.maxSkewMs
		d.latest.Store(max)
		if f.time > max {
			return errorf(ReasonTimeInFuture, "event_time", "%s is more than %v after the clock (%s)", fmtMillis(f.time), d.opts.MaxFutureSkew, fmtMillis(max-d.maxSkewMs))
		}
	}
	// A key that is not the customer_id is reported after the event is
	// filled in: the event itself is valid, and the caller may route it
	// to its customer's partition (IsKeyError).
	var keyErr *Error
	if len(key) == 0 {
		keyErr = errorf(ReasonKeyMissing, "", "record has no key; want the customer_id")
	} else if !f.str[tCustomerID].equal(key) {
		keyErr = errorf(ReasonKeyMismatch, "customer_id", "record key %q differs from customer_id", truncate(key, 64))
	}

	// CustomerID gets its own allocation, so that keeping it (as a map key,
	// say) keeps nothing else alive; the other strings share one.
	var strs [nStr]string
	f.strings(s, &strs)
	*ev = event.Event{
		Kind:       s.kind,
		EventID:    strs[tEventID],
		CustomerID: f.str[tCustomerID].String(),
		Time:       f.time,
	}
	switch s.kind {
	case event.KindOrder:
		ev.OrderType = event.OrderType(f.typ)
		ev.OrderID = strs[tOrderID]
		ev.Amount = f.amount
		ev.Currency = strs[tCurrency]
		ev.Items = int32(f.items)
	case event.KindEmail:
		ev.EmailType = event.EmailType(f.typ)
		ev.CampaignID = strs[tCampaignID]
	case event.KindSupport:
		ev.SupportType = event.SupportType(f.typ)
		ev.TicketID = strs[tTicketID]
		ev.Category = strs[tCategory]
		ev.Priority = event.TicketPriority(f.prio)
		ev.CSAT, ev.NPS = event.NoScore, event.NoScore
		if f.has(tCSAT) {
			ev.CSAT = int8(f.csat)
		}
		if f.has(tNPS) {
			ev.NPS = int8(f.nps)
		}
	}
	if keyErr != nil {
		return keyErr
	}
	return nil
}

// strings makes the string fields of s other than customer_id, with one
// allocation.
func (f *fields) strings(s *spec, out *[nStr]string) {
	n := 0
	for t := tEventID; t <= tCategory; t++ {
		if t != tCustomerID && f.has(t) {
			n += f.str[t].len()
		}
	}
	var b strings.Builder
	b.Grow(n)
	for t := tEventID; t <= tCategory; t++ {
		if t != tCustomerID && f.has(t) {
			if v := &f.str[t]; v.own {
				b.WriteString(v.s)
			} else {
				b.Write(v.b)
			}
		}
	}
	all, at := b.String(), 0
	for t := tEventID; t <= tCategory; t++ {
		if t != tCustomerID && f.has(t) {
			l := f.str[t].len()
			out[t] = all[at : at+l]
			at += l
		}
	}
}

// controlAt returns the offset of the first control character (C0, DEL or
// C1) in a valid UTF-8 string, or -1. customer_id may hold none: it is a
// Kafka key, a ClickHouse key and a log field, and winback's own changelog
// keys start with one (the task's meta record is "\x00meta"), so no
// customer can collide with them.
func controlAt(v *str) int {
	if v.own {
		return controlIn(v.s)
	}
	return controlIn(v.b)
}

func controlIn[T string | []byte](b T) int {
	for i := 0; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c == 0x7f || (c == 0xc2 && i+1 < len(b) && b[i+1] < 0xa0) {
			return i
		}
	}
	return -1
}

func isCurrency(v *str) bool {
	if v.len() != 3 {
		return false
	}
	for i := range 3 {
		var c byte
		if v.own {
			c = v.s[i]
		} else {
			c = v.b[i]
		}
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

func fmtMillis(ms int64) string {
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
