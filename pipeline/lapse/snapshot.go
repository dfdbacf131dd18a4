package lapse

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/winback/winback/pipeline/btyd"
	"github.com/winback/winback/pipeline/window"
)

// Snapshot format versions: the first byte of every snapshot. A customer
// snapshot of version 2 adds the engagement CUSUM (statistic and run
// baseline) at the end, and version 3 the repeat purchase count after it;
// older snapshots still restore, with the statistic at 0 (the sequential
// test starts over) and the repeats counted from what they keep. Version 4
// adds the contact budget (the days of the last triggers, the held reasons
// and since when) and the open episode's treatment (a flag); before it the
// budget's last send is the newest day any reason fired, nothing is held
// and an open episode is TREATED.
//
// A meta snapshot of version 2 adds the purchase model after the
// watermark: the boundary of the last refit, the parameters and the task's value per
// purchase; a version 1 meta restores with the defaults (no refit yet).
const (
	customerSnapshotV1 = 1
	customerSnapshotV2 = 2
	customerSnapshotV3 = 3
	customerSnapshotV4 = 4
	metaSnapshotV1     = 1
	metaSnapshotV2     = 2
	metaSnapshotV3     = 3
)

// Errors of RestoreCustomer and RestoreMeta, wrapped in a *SnapshotError.
var (
	ErrCorruptSnapshot = errors.New("corrupt snapshot")
	ErrSnapshotVersion = errors.New("unsupported snapshot version")
)

// SnapshotError reports a snapshot that cannot be restored.
type SnapshotError struct {
	What  string // "customer" or "meta"
	ID    string // customer id, if any
	Field string // where decoding stopped
	Err   error  // ErrCorruptSnapshot or ErrSnapshotVersion
}

func (e *SnapshotError) Error() string {
	if e.ID != "" {
		return fmt.Sprintf("lapse: %s snapshot %q: %s: %v", e.What, e.ID, e.Field, e.Err)
	}
	return fmt.Sprintf("lapse: %s snapshot: %s: %v", e.What, e.Field, e.Err)
}

func (e *SnapshotError) Unwrap() error { return e.Err }

// AppendSnapshot appends c's state to dst: a binary record whose first byte
// is the format version, holding everything the customer needs to go on
// exactly as before, including its timer's due time. The task sketches are
// not in it (RestoreCustomer rebuilds them). Snapshots are deterministic:
// the same history gives the same bytes.
func (e *Engine) AppendSnapshot(dst []byte, c *Customer) []byte {
	due, _ := e.timers.Due(c.slot)
	return e.appendSnapshot(dst, c, due)
}

// appendSnapshot is AppendSnapshot with c's timer due at due (0: none).
func (e *Engine) appendSnapshot(dst []byte, c *Customer, due int64) []byte {
	b := append(dst, customerSnapshotV4)
	b = binary.AppendUvarint(b, uint64(c.version))
	for _, v := range [...]int64{c.lastChange, due, c.lastOrder, c.spend, c.lastEpisode, c.openEpisode} {
		b = binary.AppendVarint(b, v)
	}
	for _, v := range [...]uint32{c.firstOrder, c.lastAsOf, c.openAsOf} {
		b = binary.AppendUvarint(b, uint64(v))
	}
	b = binary.AppendUvarint(b, uint64(c.orders))
	b = c.ordWin.AppendBinary(b)
	b = c.iv.AppendBinary(b)
	b = append(b, c.tier, c.flags&^(flagDirty|flagUndo))
	b = binary.AppendUvarint(b, uint64(c.cohortH))
	b = c.mail.AppendBinary(b)
	b = binary.LittleEndian.AppendUint64(b, c.campaigns)
	b = binary.AppendUvarint(b, uint64(c.unsubDay))
	b = binary.AppendUvarint(b, uint64(c.bounceDay[0]))
	b = binary.AppendUvarint(b, uint64(c.bounceDay[1]))
	if c.sup == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = c.sup.AppendBinary(b)
	}
	for _, h := range c.seen {
		b = binary.LittleEndian.AppendUint32(b, h)
	}
	b = append(b, c.seenPos, c.active, c.pending)
	for r := 0; r < nReasons; r++ {
		b = binary.AppendUvarint(b, uint64(c.firedDay[r]))
	}
	b = append(b, c.firedPrio[:]...)
	b = append(b, c.lastKind, c.lastReason, c.openReason)
	b = binary.AppendUvarint(b, uint64(c.engS))
	b = append(b, c.engP0)
	b = binary.AppendUvarint(b, uint64(c.repeats))
	for _, d := range c.sent {
		b = binary.AppendUvarint(b, uint64(d))
	}
	b = binary.AppendUvarint(b, uint64(c.heldDay))
	return append(b, c.held)
}

// reader decodes a snapshot and remembers the first failure.
type reader struct {
	b     []byte
	field string
	err   error
}

func (r *reader) fail(field string) {
	if r.err == nil {
		r.field, r.err = field, ErrCorruptSnapshot
	}
}

func (r *reader) uvarint(field string, maxV uint64) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > maxV {
		r.fail(field)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint(field string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail(field)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte(field string, maxV byte) byte {
	if r.err != nil {
		return 0
	}
	if len(r.b) < 1 || r.b[0] > maxV {
		r.fail(field)
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

func (r *reader) fixed(field string, n int) []byte {
	if r.err != nil {
		return make([]byte, n)
	}
	if len(r.b) < n {
		r.fail(field)
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) sub(field string, dec func([]byte) ([]byte, error)) {
	if r.err != nil {
		return
	}
	rest, err := dec(r.b)
	if err != nil {
		r.fail(field)
		return
	}
	r.b = rest
}

const (
	maxFlags = flagUnsubscribed | flagHardBounced | flagOpen | flagLapseDone | flagSpendSeen | flagOpenControl
	allBits  = 1<<nReasons - 1
)

func decodeCustomer(c *Customer, due *int64, snap []byte) (string, error) {
	if len(snap) == 0 {
		return "version", ErrCorruptSnapshot
	}
	version := snap[0]
	if version < customerSnapshotV1 || version > customerSnapshotV4 {
		return "version", ErrSnapshotVersion
	}
	r := &reader{b: snap[1:]}
	c.version = uint32(r.uvarint("version", 1<<32-1))
	for _, p := range [...]*int64{&c.lastChange, due, &c.lastOrder, &c.spend, &c.lastEpisode, &c.openEpisode} {
		*p = r.varint("times")
	}
	for _, p := range [...]*uint32{&c.firstOrder, &c.lastAsOf, &c.openAsOf} {
		*p = uint32(r.uvarint("times", 1<<32-1))
	}
	if *due < 0 {
		r.fail("due")
	}
	c.orders = uint32(r.uvarint("orders", 1<<32-1))
	r.sub("order windows", c.ordWin.DecodeBinary)
	r.sub("intervals", c.iv.DecodeBinary)
	c.tier = r.byte("tier", tierHigh)
	c.flags = r.byte("flags", 255)
	if c.flags&^maxFlags != 0 || (version < customerSnapshotV4 && c.flags&flagOpenControl != 0) {
		r.fail("flags")
	}
	c.cohortH = uint16(r.uvarint("cohort interval", 1<<16-1))
	r.sub("e-mail windows", c.mail.DecodeBinary)
	c.campaigns = binary.LittleEndian.Uint64(r.fixed("campaigns", 8))
	c.unsubDay = uint16(r.uvarint("unsubscribe day", window.MaxDay))
	c.bounceDay[0] = uint16(r.uvarint("bounce day", window.MaxDay))
	c.bounceDay[1] = uint16(r.uvarint("bounce day", window.MaxDay))
	if r.byte("support", 1) == 1 {
		c.sup = new(window.Support)
		r.sub("support", c.sup.DecodeBinary)
	}
	seen := r.fixed("event ids", 4*dedupSlots)
	for i := range c.seen {
		c.seen[i] = binary.LittleEndian.Uint32(seen[4*i:])
	}
	c.seenPos = r.byte("event id position", dedupSlots-1)
	c.active = r.byte("active reasons", allBits)
	c.pending = r.byte("pending reasons", allBits)
	for i := range c.firedDay {
		c.firedDay[i] = uint16(r.uvarint("cooldowns", window.MaxDay))
	}
	for i := range c.firedPrio {
		c.firedPrio[i] = r.byte("cooldown priorities", 100)
	}
	c.lastKind = r.byte("last trigger", 2)
	c.lastReason = r.byte("last trigger reason", nReasons-1)
	c.openReason = r.byte("open episode reason", nReasons-1)
	if version >= customerSnapshotV2 {
		c.engS = uint16(r.uvarint("engagement cusum", maxCUSUM))
		c.engP0 = r.byte("engagement cusum baseline", 254)
	}
	if version >= customerSnapshotV3 {
		c.repeats = uint32(r.uvarint("repeat purchases", 1<<32-1))
	} else if c.firstOrder != 0 {
		// Before V3 they were not counted: the kept intervals, or the
		// orders less the first, whichever is more.
		c.repeats = uint32(max(int64(c.orders)-1, int64(c.iv.Len()), 0))
	}
	if version >= customerSnapshotV4 {
		for i := range c.sent {
			c.sent[i] = uint16(r.uvarint("budget sends", window.MaxDay))
		}
		c.heldDay = uint16(r.uvarint("budget held day", window.MaxDay))
		c.held = r.byte("budget held reasons", allBits)
		if (c.held == 0) != (c.heldDay == 0) {
			r.fail("budget held day")
		}
	} else {
		// The budget's last send: the newest day any reason fired.
		c.sent[0] = slices.Max(c.firedDay[:])
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	return r.field, r.err
}

// RestoreCustomer replaces (or creates) customer id from a snapshot written
// by AppendSnapshot, re-arms its timer at the recorded due time and moves
// its cells in the task sketches. On corrupt input it returns a
// *SnapshotError and changes nothing. Restoring the same id twice (an
// uncompacted changelog) keeps the later one.
func (e *Engine) RestoreCustomer(id string, snap []byte) error {
	var tmp Customer
	var due int64
	if field, err := decodeCustomer(&tmp, &due, snap); err != nil {
		return &SnapshotError{What: "customer", ID: id, Field: field, Err: err}
	}
	c := e.customer(id)
	if e.undo.on && c.flags&flagUndo == 0 {
		e.keepTimer(c)
	}
	e.unsketch(c)
	e.timers.Remove(c.slot)
	tmp.eng, tmp.slot, tmp.idRef, tmp.idLen, tmp.idTag = e, c.slot, c.idRef, c.idLen, c.idTag
	tmp.flags |= c.flags & (flagDirty | flagUndo)
	*c = tmp
	e.resketch(c)
	if e.ttl > 0 && (due == 0 || e.evictAt(c) < due) {
		due = e.evictAt(c) // a snapshot written without the TTL
	}
	if due != 0 {
		e.timers.Set(c.slot, due)
	}
	return nil
}

// AppendMeta appends the task's own state to dst, after a format-version
// byte: the watermark and each source's newest event time, then the
// purchase model (the boundary of the last refit, the parameters, the
// task's value per purchase, the earliest boundary of the next refit). The cohort and value sketches are not in it:
// RestoreCustomer rebuilds them from the customers, so they can never
// disagree with them.
func (e *Engine) AppendMeta(dst []byte) []byte {
	dst = append(dst, metaSnapshotV3)
	dst = e.wm.AppendBinary(dst)
	dst = binary.AppendVarint(dst, e.refitAt)
	dst = append(dst, byte(e.model.Kind))
	dst = binary.AppendUvarint(dst, uint64(e.model.K))
	for _, v := range [...]float64{e.model.R, e.model.Alpha, e.model.A, e.model.B, e.popAOV} {
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v))
	}
	return binary.AppendVarint(dst, e.refitNext)
}

// RestoreMeta restores what AppendMeta wrote (version 1, 2 or 3). The
// sources' idle clocks restart, and every CLV cell and lapse timer is
// recomputed under the restored purchase model, at the next Apply,
// Advance or Follow. On corrupt input it returns a *SnapshotError and
// changes nothing.
func (e *Engine) RestoreMeta(snap []byte) error {
	if len(snap) == 0 {
		return &SnapshotError{What: "meta", Field: "version", Err: ErrCorruptSnapshot}
	}
	version := snap[0]
	if version < metaSnapshotV1 || version > metaSnapshotV3 {
		return &SnapshotError{What: "meta", Field: "version", Err: ErrSnapshotVersion}
	}
	cfg := e.p.cfg
	w := window.NewWatermark(e.wm.Sources(), cfg.AllowedLateness, cfg.IdleTimeout, e.start)
	rest, err := w.Restore(snap[1:], e.start)
	if err != nil {
		return &SnapshotError{What: "meta", Field: "watermark", Err: ErrCorruptSnapshot}
	}
	model, popAOV, refitAt, refitNext := btyd.DefaultParams(btyd.MBGNBD), 0.0, int64(0), int64(0)
	if version >= metaSnapshotV2 {
		r := &reader{b: rest}
		refitAt = r.varint("refit boundary")
		model.Kind = btyd.Kind(r.byte("model", byte(btyd.MBGNBD)))
		model.K = int(r.uvarint("model regularity", 64))
		for _, p := range [...]*float64{&model.R, &model.Alpha, &model.A, &model.B, &popAOV} {
			*p = math.Float64frombits(binary.LittleEndian.Uint64(r.fixed("model", 8)))
		}
		if version >= metaSnapshotV3 {
			refitNext = r.varint("next refit")
		}
		if r.err == nil && (!model.Valid() || !(popAOV >= 0) || math.IsInf(popAOV, 0) || refitAt < 0 || refitNext < 0) {
			r.fail("model")
		}
		if r.err != nil {
			return &SnapshotError{What: "meta", Field: r.field, Err: r.err}
		}
		rest = r.b
	}
	if len(rest) != 0 {
		return &SnapshotError{What: "meta", Field: "trailing bytes", Err: ErrCorruptSnapshot}
	}
	e.wm = w
	e.restartIdle = true
	e.model, e.popAOV, e.refitAt, e.refitNext = model, popAOV, refitAt, refitNext
	e.repriceDue = true
	return nil
}
