package merge

// chunkLen is the number of entries in one chunk of a Queue.
const chunkLen = 256

type chunk[T any] [chunkLen]T

// Queue is an input's records, first in, first out, in fixed-size chunks:
// it grows a chunk at a time and never copies entries. Emptied chunks are
// kept for reuse, so, like a slice's capacity, a queue holds on to its
// peak size, and a stream that stays below it allocates nothing. The zero
// Queue is empty and ready to use.
type Queue[T any] struct {
	chunks     []*chunk[T] // chunks[0][head:] ... chunks[last][:tail]
	head, tail int
	free       []*chunk[T]
}

// Len returns the number of entries queued.
func (q *Queue[T]) Len() int {
	if len(q.chunks) == 0 {
		return 0
	}
	return (len(q.chunks)-1)*chunkLen + q.tail - q.head
}

// Add appends a zero entry and returns it, to be filled in place.
func (q *Queue[T]) Add() *T {
	if len(q.chunks) == 0 || q.tail == chunkLen {
		var c *chunk[T]
		if n := len(q.free); n > 0 {
			c, q.free = q.free[n-1], q.free[:n-1]
		} else {
			c = new(chunk[T])
		}
		q.chunks, q.tail = append(q.chunks, c), 0
	}
	e := &q.chunks[len(q.chunks)-1][q.tail]
	var zero T
	*e = zero
	q.tail++
	return e
}

// DropLast removes the entry Add returned last.
func (q *Queue[T]) DropLast() {
	q.tail--
	if n := len(q.chunks); q.tail == 0 && n > 1 {
		q.free, q.chunks = append(q.free, q.chunks[n-1]), q.chunks[:n-1]
		q.tail = chunkLen
	}
	if len(q.chunks) == 1 && q.head == q.tail {
		q.head, q.tail = 0, 0
	}
}

// Peek returns the first entry; the queue must not be empty.
func (q *Queue[T]) Peek() *T { return &q.chunks[0][q.head] }

// At returns the entry i places behind the first; i must be below Len.
func (q *Queue[T]) At(i int) *T {
	i += q.head
	return &q.chunks[i/chunkLen][i%chunkLen]
}

// Pop removes the first entry and returns it, valid until the next Add.
func (q *Queue[T]) Pop() *T {
	c := q.chunks[0]
	e := &c[q.head]
	q.head++
	switch {
	case len(q.chunks) == 1 && q.head == q.tail:
		q.head, q.tail = 0, 0 // empty: start the chunk over
	case q.head == chunkLen:
		q.chunks = append(q.chunks[:0], q.chunks[1:]...)
		q.head, q.free = 0, append(q.free, c)
	}
	return e
}
