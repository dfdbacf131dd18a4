package consume

import "github.com/twmb/franz-go/pkg/kgo"

// arena hands out changelog records and their bytes from blocks instead
// of one allocation each: a transaction writes a record per changed
// customer, tens of thousands of them. A block stays alive while any
// record carved from it does (until the producer is done with it); an
// arena is used by one task at a time.
type arena struct {
	recs []kgo.Record
	buf  []byte
}

const (
	arenaRecords = 256      // records per block
	arenaBytes   = 64 << 10 // bytes per block
	arenaSlack   = 1 << 10  // a new byte block starts below this much room
)

// record returns a zero record.
func (a *arena) record() *kgo.Record {
	if len(a.recs) == cap(a.recs) {
		a.recs = make([]kgo.Record, 0, arenaRecords)
	}
	a.recs = a.recs[:len(a.recs)+1]
	return &a.recs[len(a.recs)-1]
}

// bytes returns what fill appends to an empty slice, capacity clipped so
// that nothing appended to the result can reach its neighbours. A value
// larger than the room left moves the block (append's own growth); the
// values already handed out keep the old one.
func (a *arena) bytes(fill func([]byte) []byte) []byte {
	if cap(a.buf)-len(a.buf) < arenaSlack {
		a.buf = make([]byte, 0, arenaBytes)
	}
	start := len(a.buf)
	a.buf = fill(a.buf)
	return a.buf[start:len(a.buf):len(a.buf)]
}
