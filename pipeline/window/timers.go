package window

import (
	"unsafe"

	"github.com/winback/winback/pipeline/internal/prefetch"
)

// Timers is a min-heap of (due time, key) with at most one timer per key.
// Keys are small dense integers (a customer's slot in its task); the heap is
// two parallel slices plus a position index by key, so it holds no pointers
// and costs 16 bytes per timer. Set, Remove and PopDue are O(log n). Ties
// on the due time pop the smaller key first, so the pop order depends only
// on the timers' contents, not on the order they were set in.
type Timers struct {
	due []int64
	key []uint32
	pos []int32 // pos[key] = heap index + 1; 0 = no timer
}

// Len returns the number of pending timers.
func (t *Timers) Len() int { return len(t.due) }

// Due returns the due time of key's timer.
func (t *Timers) Due(key uint32) (int64, bool) {
	if int(key) >= len(t.pos) || t.pos[key] == 0 {
		return 0, false
	}
	return t.due[t.pos[key]-1], true
}

// Prefetch starts loading key's place in the position index into the CPU
// caches; PrefetchDue, called later, reads it and starts loading the
// timer's due time. Together they take the cache misses of a Due, Set or
// Remove of key off the path of the call.
func (t *Timers) Prefetch(key uint32) {
	if int(key) < len(t.pos) {
		prefetch.Addr(unsafe.Pointer(&t.pos[key]))
	}
}

// PrefetchDue: see Prefetch.
func (t *Timers) PrefetchDue(key uint32) {
	if int(key) < len(t.pos) {
		if i := t.pos[key]; i > 0 && int(i) <= len(t.due) {
			prefetch.Addr(unsafe.Pointer(&t.due[i-1]))
		}
	}
}

// Set arms key's timer at due, or resets it if it is armed already.
func (t *Timers) Set(key uint32, due int64) {
	if int(key) >= len(t.pos) {
		n := max(int(key)+1, 2*len(t.pos), 64)
		p := make([]int32, n)
		copy(p, t.pos)
		t.pos = p
	}
	if i := t.pos[key]; i != 0 {
		old := t.due[i-1]
		t.due[i-1] = due
		if due < old {
			t.up(int(i - 1))
		} else {
			t.down(int(i - 1))
		}
		return
	}
	t.due = append(t.due, due)
	t.key = append(t.key, key)
	t.pos[key] = int32(len(t.due))
	t.up(len(t.due) - 1)
}

// Remove disarms key's timer and reports whether there was one.
func (t *Timers) Remove(key uint32) bool {
	if int(key) >= len(t.pos) || t.pos[key] == 0 {
		return false
	}
	t.removeAt(int(t.pos[key] - 1))
	return true
}

// Peek returns the earliest timer without removing it.
func (t *Timers) Peek() (key uint32, due int64, ok bool) {
	if len(t.due) == 0 {
		return 0, 0, false
	}
	return t.key[0], t.due[0], true
}

// PopDue removes and returns the earliest timer if it is due at or before
// watermark.
func (t *Timers) PopDue(watermark int64) (key uint32, due int64, ok bool) {
	if len(t.due) == 0 || t.due[0] > watermark {
		return 0, 0, false
	}
	key, due = t.key[0], t.due[0]
	t.removeAt(0)
	return key, due, true
}

func (t *Timers) removeAt(i int) {
	last := len(t.due) - 1
	t.pos[t.key[i]] = 0
	if i != last {
		t.due[i], t.key[i] = t.due[last], t.key[last]
		t.pos[t.key[i]] = int32(i + 1)
	}
	t.due, t.key = t.due[:last], t.key[:last]
	if i != last {
		t.down(i)
		t.up(i)
	}
}

func (t *Timers) less(i, j int) bool {
	if t.due[i] != t.due[j] {
		return t.due[i] < t.due[j]
	}
	return t.key[i] < t.key[j]
}

func (t *Timers) swap(i, j int) {
	t.due[i], t.due[j] = t.due[j], t.due[i]
	t.key[i], t.key[j] = t.key[j], t.key[i]
	t.pos[t.key[i]] = int32(i + 1)
	t.pos[t.key[j]] = int32(j + 1)
}

func (t *Timers) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !t.less(i, p) {
			return
		}
		t.swap(i, p)
		i = p
	}
}

func (t *Timers) down(i int) {
	n := len(t.due)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && t.less(r, l) {
			m = r
		}
		if !t.less(m, i) {
			return
		}
		t.swap(i, m)
		i = m
	}
}

// Shrink gives back memory once the timers use much less than they hold:
// keys must all be below n (the engine's customers after one left), and
// the heap's slices are reallocated when they are mostly empty.
func (t *Timers) Shrink(n int) {
	if len(t.pos) > 2*n+128 {
		p := make([]int32, max(n, 64))
		copy(p, t.pos)
		t.pos = p
	}
	if cap(t.due) > 4*len(t.due)+128 {
		t.due = append(make([]int64, 0, 2*len(t.due)), t.due...)
		t.key = append(make([]uint32, 0, 2*len(t.key)), t.key...)
	}
}
