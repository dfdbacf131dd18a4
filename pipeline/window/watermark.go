package window

import (
	"encoding/binary"
	"errors"
	"math"
	"time"
)

// NoWatermark is the watermark before any event: math.MinInt64.
const NoWatermark = math.MinInt64

// MaxSources is the largest number of sources a Watermark tracks.
const MaxSources = 64

// Watermark tracks the event-time progress of a task's input sources.
//
// The watermark is the minimum over the active sources of (max event time −
// allowed lateness). A source is idle when it produced nothing for
// IdleTimeout of wall time (the injected now); an idle source stops holding
// the watermark back. A source that never produced anything counts as idle
// once IdleTimeout has passed since the tracker started (or was restored),
// or at once when the caller knows it has nothing to deliver (SetDrained:
// its input is read to its end); until then it holds the watermark back,
// so that a slow topic fetched a moment after the others does not let
// timers fire early. If every source is idle, the watermark is the most
// advanced source's (max − lateness).
// The watermark never moves backwards. An IdleTimeout of zero disables
// idleness.
type Watermark struct {
	lateness int64 // ms
	idle     int64 // ms; 0 = never idle
	start    int64 // wall ms when the tracker started or was restored
	src      []srcState
	wm       int64
}

type srcState struct {
	max     int64 // max event time; NoWatermark if none
	seen    int64 // wall ms of the last event, or start
	drained bool  // SetDrained: read to its end (not persisted)
}

var errWatermark = errors.New("window: corrupt watermark state")

// NewWatermark returns a tracker of n sources (clamped to [1, MaxSources]).
func NewWatermark(n int, allowedLateness, idleTimeout time.Duration, start time.Time) *Watermark {
	n = min(max(n, 1), MaxSources)
	w := &Watermark{
		lateness: max(allowedLateness.Milliseconds(), 0),
		idle:     max(idleTimeout.Milliseconds(), 0),
		start:    start.UnixMilli(),
		src:      make([]srcState, n),
		wm:       NoWatermark,
	}
	for i := range w.src {
		w.src[i] = srcState{max: NoWatermark, seen: w.start}
	}
	return w
}

// Sources returns the number of tracked sources.
func (w *Watermark) Sources() int { return len(w.src) }

// Observe records an event of source src at eventTime, seen at wall time
// now. It does not move the watermark: call Advance. Out-of-range sources
// are ignored.
func (w *Watermark) Observe(src int, eventTime int64, now time.Time) {
	if src < 0 || src >= len(w.src) {
		return
	}
	s := &w.src[src]
	s.max = max(s.max, eventTime)
	s.seen = max(s.seen, now.UnixMilli())
}

// SetDrained tells whether source src's input is read to its end, with
// nothing left to deliver. A source drained that never produced anything
// counts as idle at once instead of after IdleTimeout: an input that is
// empty (an orders-only shop's e-mail topic) then holds nobody back after
// a start. A source that did produce stays subject to IdleTimeout, drained
// or not: a live input is read to its end between most of its records.
// It is not persisted; a restored tracker starts with no source drained.
func (w *Watermark) SetDrained(src int, drained bool) {
	if src >= 0 && src < len(w.src) {
		w.src[src].drained = drained
	}
}

// Idle reports whether source src counts as idle at wall time now.
func (w *Watermark) Idle(src int, now time.Time) bool {
	if w.idle == 0 || src < 0 || src >= len(w.src) {
		return false
	}
	s := &w.src[src]
	return (s.drained && s.max == NoWatermark) || now.UnixMilli()-s.seen >= w.idle
}

// Max returns the largest event time seen from src, or NoWatermark.
func (w *Watermark) Max(src int) int64 {
	if src < 0 || src >= len(w.src) {
		return NoWatermark
	}
	return w.src[src].max
}

// Restart restarts every source's idle clock at now, as if the tracker
// started then.
func (w *Watermark) Restart(now time.Time) {
	w.start = now.UnixMilli()
	for i := range w.src {
		w.src[i].seen = w.start
	}
}

// Raise moves the watermark up to t (never down) from outside the
// sources: the pipeline's event time, followed by a task whose own inputs
// are silent. It reports whether the watermark moved. A later Advance
// never takes it back.
func (w *Watermark) Raise(t int64) bool {
	if t <= w.wm {
		return false
	}
	w.wm = t
	return true
}

// Current returns the watermark as of the last Advance.
func (w *Watermark) Current() int64 { return w.wm }

func (w *Watermark) minus(t int64) int64 {
	if t < NoWatermark+w.lateness {
		return NoWatermark
	}
	return t - w.lateness
}

// Advance recomputes the watermark at wall time now and returns it.
func (w *Watermark) Advance(now time.Time) int64 {
	cand, active, hold := int64(math.MaxInt64), false, false
	for i, s := range w.src {
		if w.Idle(i, now) {
			continue
		}
		active = true
		if s.max == NoWatermark {
			hold = true
			break
		}
		cand = min(cand, w.minus(s.max))
	}
	if !active {
		cand = NoWatermark
		for _, s := range w.src {
			if s.max != NoWatermark {
				cand = max(cand, w.minus(s.max))
			}
		}
	}
	if !hold && cand > w.wm {
		w.wm = cand
	}
	return w.wm
}

// AppendBinary appends the sources' max event times and the watermark.
// Wall-clock state is not written: a restored tracker restarts its idle
// clocks (see Restore).
func (w *Watermark) AppendBinary(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(w.src)))
	for _, s := range w.src {
		dst = binary.AppendVarint(dst, s.max)
	}
	return binary.AppendVarint(dst, w.wm)
}

// Restore reads what AppendBinary wrote and returns the rest of b. The idle
// clocks of all sources restart at now, so each source gets IdleTimeout to
// show up again. Sources beyond the tracker's count are dropped; missing ones
// start empty.
func (w *Watermark) Restore(b []byte, now time.Time) ([]byte, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n == 0 || n > MaxSources {
		return nil, errWatermark
	}
	b = b[k:]
	maxes := make([]int64, n)
	for i := range maxes {
		v, k := binary.Varint(b)
		if k <= 0 {
			return nil, errWatermark
		}
		maxes[i] = v
		b = b[k:]
	}
	wm, k := binary.Varint(b)
	if k <= 0 {
		return nil, errWatermark
	}
	b = b[k:]
	w.start = now.UnixMilli()
	for i := range w.src {
		w.src[i] = srcState{max: NoWatermark, seen: w.start}
		if i < len(maxes) {
			w.src[i].max = maxes[i]
		}
	}
	w.wm = wm
	return b, nil
}
