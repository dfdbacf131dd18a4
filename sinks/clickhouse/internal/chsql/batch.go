package chsql

import (
	"cmp"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/winback/winback/pipeline/event"
)

// Table names. customer_daily is not among them: the materialized view
// customer_daily_feed fills it from the rows inserted into
// customer_aggregates.
const (
	TableAggregates  = "customer_aggregates"
	TableTriggers    = "winback_triggers"
	TableDeadLetters = "dlq_records"
)

// Tables lists the tables a Batch writes, in the order it writes them.
var Tables = []string{TableAggregates, TableTriggers, TableDeadLetters}

// Caps on what a dead-letter row keeps.
const (
	DefaultSampleBytes = 256  // dlq_records.sample
	MaxDetailBytes     = 4096 // dlq_records.detail
)

const msPerDay = 24 * 60 * 60 * 1000

type dayKey struct {
	customer string
	day      int64 // days since 1970-01-01 (UTC)
}

type dlqKey struct {
	topic     string
	partition int32
	offset    int64
}

// Batch is the rows waiting for the next flush. Within a batch only the
// latest version of a customer-day (the UTC day of the aggregate's AsOf) is
// kept, and one row per trigger id and per dead-lettered record. A
// customer has one row per day, not one in all, so that the daily
// snapshots customer_daily_feed derives from them lose no day, even when
// the rows of a failed flush are merged with later ones. It copies what it
// is given. It is not safe for concurrent use.
type Batch struct {
	sampleBytes int
	// aggs maps a customer-day to its row in rows. The rows are kept by
	// value in blocks of rowBlock (one allocation per block, and a batch
	// of a backlog grows no large array by doubling), nrows of them, and
	// their reasons in one arena; a replaced row is overwritten, a
	// forgotten one stays behind until Drop.
	aggs     map[dayKey]int32
	rows     [][]event.Aggregate
	nrows    int32
	reasons  []event.Reason
	triggers map[string]*event.Trigger
	dlq      map[dlqKey]*event.DeadLetter
	// evicted holds the customers whose evicted row was added: the
	// flush deletes their earlier rows before it inserts (Evicted).
	evicted map[string]bool
	// What Build made last, kept for the next Build (aggColumns).
	cols    aggColumns
	keyed   []keyed
	sortTmp []keyed
	sel     []*event.Aggregate
}

// NewBatch returns an empty batch whose dead-letter samples keep at most
// sampleBytes bytes (0 means DefaultSampleBytes).
func NewBatch(sampleBytes int) *Batch {
	if sampleBytes <= 0 {
		sampleBytes = DefaultSampleBytes
	}
	return &Batch{
		sampleBytes: sampleBytes,
		aggs:        map[dayKey]int32{},
		triggers:    map[string]*event.Trigger{},
		dlq:         map[dlqKey]*event.DeadLetter{},
		evicted:     map[string]bool{},
	}
}

// Len is the number of rows the batch would write.
func (b *Batch) Len() int { return len(b.aggs) + len(b.triggers) + len(b.dlq) }

// TableLen is the number of rows the batch would write to table.
func (b *Batch) TableLen(table string) int {
	switch table {
	case TableAggregates:
		return len(b.aggs)
	case TableTriggers:
		return len(b.triggers)
	case TableDeadLetters:
		return len(b.dlq)
	}
	return 0
}

func dayOf(ms int64) int64 {
	d := ms / msPerDay
	if ms < 0 && ms%msPerDay != 0 {
		d--
	}
	return d
}

// AddAggregate adds a's row to customer_aggregates (and so, through the
// view, to customer_daily for the UTC day of a.AsOf), unless the batch
// holds a newer version of the customer-day.
func (b *Batch) AddAggregate(a *event.Aggregate) { b.addAggregate(a, true, true) }

// addAggregate keeps a copy of a unless the batch holds a newer version of
// its customer-day (or, unless newer, the same version); with copyReasons
// its reasons are copied into the batch's arena, else shared (a row of
// another batch, whose reasons nobody changes).
func (b *Batch) addAggregate(a *event.Aggregate, newer, copyReasons bool) {
	if a.Evicted {
		b.evicted[a.CustomerID] = true
	}
	k := dayKey{a.CustomerID, dayOf(a.AsOf)}
	i, ok := b.aggs[k]
	if ok {
		if cur := b.row(i); !(a.Version > cur.Version || (newer && a.Version == cur.Version)) {
			return
		}
	} else {
		i = b.nrows
		if int(i/rowBlock) == len(b.rows) {
			b.rows = append(b.rows, make([]event.Aggregate, rowBlock))
		}
		b.nrows++
		b.aggs[k] = i
	}
	r := b.row(i)
	*r = *a
	if copyReasons {
		r.ActiveReasons = b.keepReasons(a.ActiveReasons)
	}
}

// rowBlock is the rows of one block of Batch.rows.
const rowBlock = 512

// row returns the i-th row of b.rows.
func (b *Batch) row(i int32) *event.Aggregate { return &b.rows[i/rowBlock][i%rowBlock] }

// keepReasons copies rs into the batch's arena (nil and empty stay as
// they are, as slices.Clone leaves them). The arena only grows: a copy
// handed out is never written again.
func (b *Batch) keepReasons(rs []event.Reason) []event.Reason {
	if len(rs) == 0 {
		return rs[:0:0]
	}
	lo := len(b.reasons)
	b.reasons = append(b.reasons, rs...)
	return b.reasons[lo:len(b.reasons):len(b.reasons)]
}

// AddTrigger adds t's row to winback_triggers, replacing a row with the
// same trigger id unless that one was emitted later.
func (b *Batch) AddTrigger(t *event.Trigger) {
	c := *t
	c.Reasons = slices.Clone(t.Reasons)
	c.Evidence = maps.Clone(t.Evidence)
	b.addTrigger(&c, true)
}

func (b *Batch) addTrigger(t *event.Trigger, newer bool) {
	if cur, ok := b.triggers[t.TriggerID]; !ok || t.EmittedAt > cur.EmittedAt || (newer && t.EmittedAt == cur.EmittedAt) {
		b.triggers[t.TriggerID] = t
	}
}

// AddDeadLetter adds d's row to dlq_records, with the sample cut to the
// batch's sample size and the detail to MaxDetailBytes.
func (b *Batch) AddDeadLetter(d *event.DeadLetter) {
	c := *d
	c.Key = slices.Clone(d.Key)
	c.Sample = slices.Clone(d.Sample[:min(len(d.Sample), b.sampleBytes)])
	c.Detail = truncateUTF8(d.Detail, MaxDetailBytes)
	b.addDeadLetter(&c, true)
}

func (b *Batch) addDeadLetter(d *event.DeadLetter, newer bool) {
	k := dlqKey{d.Topic, d.Partition, d.Offset}
	if cur, ok := b.dlq[k]; !ok || d.At > cur.At || (newer && d.At == cur.At) {
		b.dlq[k] = d
	}
}

// truncateUTF8 cuts s to at most n bytes without splitting a rune.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Merge adds the rows of older, a batch filled before b, where b holds
// nothing newer: the rows of a failed flush go back in front of what was
// added since.
//
// A customer evicted in b drops older's rows of it: they came before the
// eviction, and the flush deletes them from ClickHouse.
func (b *Batch) Merge(older *Batch) {
	// Only b's own evictions drop older rows: older's are older than
	// every row of b, and an eviction within older keeps older's other
	// rows of the customer, as it did in older. (Deciding by b.evicted as
	// the loop fills it made the outcome depend on map order.)
	evicted := maps.Clone(b.evicted)
	for _, i := range older.aggs {
		if a := older.row(i); !evicted[a.CustomerID] {
			b.addAggregate(a, false, false)
		}
	}
	for id := range older.evicted {
		b.evicted[id] = true
	}
	for _, t := range older.triggers {
		b.addTrigger(t, false)
	}
	for _, d := range older.dlq {
		b.addDeadLetter(d, false)
	}
}

// Forget drops the rows of the customers in ids: their aggregates and
// triggers, and the dead letters keyed by their id (an erasure).
func (b *Batch) Forget(ids map[string]bool) {
	for k := range b.aggs {
		if ids[k.customer] {
			delete(b.aggs, k)
		}
	}
	for k, t := range b.triggers {
		if ids[t.CustomerID] {
			delete(b.triggers, k)
		}
	}
	for k, d := range b.dlq {
		if ids[string(d.Key)] {
			delete(b.dlq, k)
		}
	}
}

// Evicted returns the ids of the customers whose evicted row was added
// to the batch (a later row of a customer seen again may have replaced
// it), sorted: their earlier rows in customer_aggregates are deleted
// before the batch is inserted.
func (b *Batch) Evicted() []string {
	ids := slices.Collect(maps.Keys(b.evicted))
	slices.Sort(ids)
	return ids
}

// Drop forgets the rows of table (after they were written).
func (b *Batch) Drop(table string) {
	switch table {
	case TableAggregates:
		clear(b.aggs)
		for _, blk := range b.rows {
			clear(blk) // let go of the ids
		}
		b.nrows = 0
		b.reasons = nil // rows of another batch may share it (Merge)
		clear(b.evicted)
		clear(b.keyed)
		clear(b.sortTmp)
		clear(b.sel)
		b.cols.release()
	case TableTriggers:
		clear(b.triggers)
	case TableDeadLetters:
		clear(b.dlq)
	}
}

// Table is the rows of one table, column by column, sorted by the table's
// key, ready for a columnar insert.
type Table struct {
	Name    string
	Columns []Column
	Rows    int
	// Token is a hash of the content (every column but updated_at), hex:
	// the same rows give the same token on every replay. Set by Build
	// when asked for.
	Token string
}

// Column is one column's values: []string, []uint8, []uint32, []uint64,
// []int32, []int64, []float64, []time.Time, []*time.Time, []*uint8,
// [][]string or [][]float64.
type Column struct {
	Name   string
	Values any
	// Date marks a Date column ([]time.Time at midnight UTC).
	Date bool
	// Volatile marks a column left out of Token (updated_at).
	Volatile bool
}

// Build returns the batch's rows per non-empty table, in Tables order.
// now is updated_at; with tokens, every table gets its Token. The
// customer_aggregates Table is valid until the next Build of b.
func (b *Batch) Build(now time.Time, tokens bool) []*Table {
	var out []*Table
	if len(b.aggs) > 0 {
		skip := -1
		var first string
		for k := range b.aggs {
			if skip < 0 {
				first, skip = k.customer, len(k.customer)
			}
			skip = commonPrefix(first[:skip], k.customer)
		}
		ks := b.keyed[:0]
		for k, i := range b.aggs {
			ks = append(ks, keyed{idPrefix(k.customer, skip), k, i})
		}
		b.sortTmp = sortKeyed(ks, b.sortTmp)
		rows := sized(b.sel, len(ks))
		for j := range ks {
			rows[j] = b.row(ks[j].i)
		}
		b.keyed, b.sel = ks, rows
		out = append(out, b.cols.table(rows, now))
	}
	if len(b.triggers) > 0 {
		rows := slices.SortedFunc(maps.Values(b.triggers), func(x, y *event.Trigger) int { return cmp.Compare(x.TriggerID, y.TriggerID) })
		out = append(out, triggersTable(rows))
	}
	if len(b.dlq) > 0 {
		rows := slices.SortedFunc(maps.Values(b.dlq), func(x, y *event.DeadLetter) int {
			return cmp.Or(cmp.Compare(x.Topic, y.Topic), cmp.Compare(x.Partition, y.Partition), cmp.Compare(x.Offset, y.Offset))
		})
		out = append(out, deadLettersTable(rows))
	}
	if tokens {
		for _, t := range out {
			t.Token = t.contentHash()
		}
	}
	return out
}

// keyed is an aggregate row's place in Batch.rows with its key, and with
// the 8 bytes of its id after the prefix all ids of the batch share (see
// idPrefix), so that most of the sort works on one integer.
type keyed struct {
	pre uint64
	dayKey
	i int32
}

// sortKeyed sorts ks by customer id (bytewise) and day: a radix sort on
// pre (skipping the bytes all keys share), then a comparison sort of each
// run of equal pre (one customer's days, or ids alike in those 8 bytes).
// tmp is room for the radix passes, returned (grown to len(ks)) for reuse.
func sortKeyed(ks, tmp []keyed) []keyed {
	if len(ks) < 2 {
		return tmp
	}
	var count [8][256]int
	for _, k := range ks {
		for b := range 8 {
			count[b][byte(k.pre>>(8*b))]++
		}
	}
	tmp = sized(tmp, len(ks))
	src, dst := ks, tmp
	for b := range 8 {
		c := &count[b]
		if c[byte(src[0].pre>>(8*b))] == len(src) {
			continue // every key has the same byte here
		}
		off := 0
		for v := range c {
			c[v], off = off, off+c[v]
		}
		for _, k := range src {
			v := byte(k.pre >> (8 * b))
			dst[c[v]] = k
			c[v]++
		}
		src, dst = dst, src
	}
	if &src[0] != &ks[0] {
		copy(ks, src)
	}
	for lo := 0; lo < len(ks); {
		hi := lo + 1
		for hi < len(ks) && ks[hi].pre == ks[lo].pre {
			hi++
		}
		if hi-lo > 1 {
			slices.SortFunc(ks[lo:hi], func(x, y keyed) int {
				return cmp.Or(strings.Compare(x.customer, y.customer), cmp.Compare(x.day, y.day))
			})
		}
		lo = hi
	}
	return tmp
}

// commonPrefix is the length of the longest common prefix of a and b.
func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// idPrefix is bytes skip to skip+8 of id, big-endian, zero padded: for
// ids that share their first skip bytes, idPrefix(a) < idPrefix(b)
// implies a < b, and only equal prefixes need the strings compared.
func idPrefix(id string, skip int) uint64 {
	var p uint64
	for i := skip; i < skip+8; i++ {
		p <<= 8
		if i < len(id) {
			p |= uint64(id[i])
		}
	}
	return p
}

// dateTime is ms as a DateTime: time.UnixMilli(ms).UTC() truncated to the
// second, without Truncate's general case.
func dateTime(ms int64) time.Time {
	s := ms / 1000
	if ms%1000 < 0 {
		s--
	}
	return time.Unix(s, 0).UTC()
}

func optTime(ms int64, backing *time.Time) *time.Time {
	if ms == 0 {
		return nil
	}
	*backing = dateTime(ms)
	return backing
}

func optScore(s int8, backing *uint8) *uint8 {
	if s < 0 {
		return nil
	}
	*backing = uint8(s)
	return backing
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// reasonsCol builds an Array(String) column of the reasons of every row,
// the arrays cut from one backing slice.
func reasonsCol(name string, n int, f func(i int) []event.Reason) Column {
	total := 0
	for i := range n {
		total += len(f(i))
	}
	backing := make([]string, total)
	k := 0
	return col(name, n, func(i int) []string {
		out := backing[k : k+len(f(i)) : k+len(f(i))]
		for j, r := range f(i) {
			out[j] = string(r)
		}
		k += len(out)
		return out
	})
}
