package lapse

import "hash/maphash"

// index maps customer ids to slots with open addressing over one []uint64:
// each cell holds slot+1 in the high 32 bits and the low 32 bits of the id's
// hash in the low ones, so growing never rehashes a string and a lookup
// compares an id only when 32 hash bits match. A customer that leaves
// (forget.go) is deleted by shifting the cells after it back (linear
// probing needs no tombstones), and the table halves when it is less than
// an eighth full. A customer keeps its id's length and first 8
// bytes, so confirming a match reads the id itself only for longer ids. It costs about 11–21 bytes per customer,
// against about 40 for a Go map[string]uint32.
type index struct {
	tab  []uint64
	n    int
	seed maphash.Seed
}

func (ix *index) init() {
	ix.seed = maphash.MakeSeed()
	ix.tab = make([]uint64, 64)
}

// hash returns the 32 bits of id's hash the cells hold.
func (ix *index) hash(id string) uint32 { return uint32(maphash.String(ix.seed, id)) }

// find returns the slot of id, whose hash is h.
func (ix *index) find(e *Engine, id string, h uint32) (uint32, bool) {
	tag := idTag(id)
	i := ix.start(h)
	for {
		slot, at, ok := ix.next(h, i)
		if !ok || e.at(slot).hasID(id, tag) {
			return slot, ok
		}
		i = at + 1
	}
}

// peek returns the slot of the first cell holding hash h: the id's slot,
// unless another id shares its 32 hash bits (good enough for a prefetch).
func (ix *index) peek(h uint32) (uint32, bool) {
	slot, _, ok := ix.next(h, ix.start(h))
	return slot, ok
}

// start returns the position of the first cell a lookup of hash h reads.
func (ix *index) start(h uint32) uint64 { return uint64(h) & uint64(len(ix.tab)-1) }

// cell returns the first cell a lookup of hash h reads.
func (ix *index) cell(h uint32) *uint64 { return &ix.tab[ix.start(h)] }

// next returns the slot in the first cell from position i on that holds
// hash h, and that cell's position; ok is false if an empty cell comes
// first (no id with hash h lies beyond it).
func (ix *index) next(h uint32, i uint64) (slot uint32, at uint64, ok bool) {
	mask := uint64(len(ix.tab) - 1)
	for i &= mask; ; i = (i + 1) & mask {
		v := ix.tab[i]
		if v == 0 {
			return 0, i, false
		}
		if uint32(v) == h {
			return uint32(v>>32) - 1, i, true
		}
	}
}

// insert adds slot under an id whose hash is h.
func (ix *index) insert(h uint32, slot uint32) {
	if (ix.n+1)*4 > len(ix.tab)*3 {
		ix.grow()
	}
	ix.put(uint64(slot+1)<<32 | uint64(h))
	ix.n++
}

func (ix *index) put(v uint64) {
	mask := uint64(len(ix.tab) - 1)
	for i := uint64(uint32(v)) & mask; ; i = (i + 1) & mask {
		if ix.tab[i] == 0 {
			ix.tab[i] = v
			return
		}
	}
}

func (ix *index) grow() {
	old := ix.tab
	ix.tab = make([]uint64, 2*len(old))
	for _, v := range old {
		if v != 0 {
			ix.put(v)
		}
	}
}

// at returns the position of the cell holding slot under hash h.
func (ix *index) cellOf(h uint32, slot uint32) (uint64, bool) {
	want := uint64(slot+1)<<32 | uint64(h)
	mask := uint64(len(ix.tab) - 1)
	for i := uint64(h) & mask; ; i = (i + 1) & mask {
		switch ix.tab[i] {
		case want:
			return i, true
		case 0:
			return 0, false
		}
	}
}

// move re-points the cell of slot from (hash h) to slot to.
func (ix *index) move(h uint32, from, to uint32) {
	if i, ok := ix.cellOf(h, from); ok {
		ix.tab[i] = uint64(to+1)<<32 | uint64(h)
	}
}

// remove deletes the cell of slot (hash h): the cells after it in its run
// that may sit at or before it move back, so every lookup still finds its
// id before an empty cell.
func (ix *index) remove(h uint32, slot uint32) {
	i, ok := ix.cellOf(h, slot)
	if !ok {
		return
	}
	mask := uint64(len(ix.tab) - 1)
	for j := (i + 1) & mask; ix.tab[j] != 0; j = (j + 1) & mask {
		k := uint64(uint32(ix.tab[j])) & mask // where the cell wants to be
		// The cell at j stays if k lies cyclically in (i, j].
		if (i < j && (k <= i || k > j)) || (i > j && k <= i && k > j) {
			ix.tab[i] = ix.tab[j]
			i = j
		}
	}
	ix.tab[i] = 0
	ix.n--
}

// shrink halves the table while it is less than an eighth full, down to
// a quarter full at least.
func (ix *index) shrink() {
	if len(ix.tab) <= 64 || ix.n*8 >= len(ix.tab) {
		return
	}
	size := len(ix.tab)
	for size > 64 && ix.n*4 < size {
		size /= 2
	}
	old := ix.tab
	ix.tab = make([]uint64, size)
	for _, v := range old {
		if v != 0 {
			ix.put(v)
		}
	}
}
