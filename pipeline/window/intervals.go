package window

import "errors"

// MaxIntervals is how many inter-purchase intervals Intervals keeps.
const MaxIntervals = 7

// MaxIntervalHours is the longest interval Intervals stores; longer ones are
// clamped.
const MaxIntervalHours = 1<<16 - 1

// Intervals keeps a customer's last MaxIntervals inter-purchase intervals in
// whole hours, oldest first.
type Intervals struct {
	h [MaxIntervals]uint16
	n uint8
	// Stats' median × 2 and MAD × 2, kept by Push and DecodeBinary: a
	// view of the customer asks for them, and there are several views per
	// order but one Push. Exact: a median of whole hours is a multiple of
	// 1/2, and so is the MAD.
	med2, mad2 uint32
}

var errIntervals = errors.New("window: corrupt intervals")

// Push appends an interval of ms milliseconds, dropping the oldest when full.
func (iv *Intervals) Push(ms int64) {
	h := ms / 3_600_000
	h = min(max(h, 1), MaxIntervalHours)
	if int(iv.n) == MaxIntervals {
		copy(iv.h[:], iv.h[1:])
		iv.n--
	}
	iv.h[iv.n] = uint16(h)
	iv.n++
	iv.stats()
}

// Len returns how many intervals are stored.
func (iv *Intervals) Len() int { return int(iv.n) }

// At returns the i-th stored interval in hours, oldest first
// (0 <= i < Len()).
func (iv *Intervals) At(i int) uint16 { return iv.h[:iv.n][i] }

// Hours returns the stored intervals, oldest first.
func (iv *Intervals) Hours() []uint16 { return append([]uint16(nil), iv.h[:iv.n]...) }

// Max returns the longest stored interval in hours (0 if none).
func (iv *Intervals) Max() float64 {
	m := uint16(0)
	for _, h := range iv.h[:iv.n] {
		m = max(m, h)
	}
	return float64(m)
}

// Stats returns the median of the stored intervals and their median
// absolute deviation from it, in hours (0, 0 if none). With an even count the
// median is the mean of the middle two.
func (iv *Intervals) Stats() (median, mad float64) {
	return float64(iv.med2) / 2, float64(iv.mad2) / 2
}

// stats sets med2 and mad2 from the intervals.
func (iv *Intervals) stats() {
	n := int(iv.n)
	if n == 0 {
		iv.med2, iv.mad2 = 0, 0
		return
	}
	var v [MaxIntervals]float64
	for i := 0; i < n; i++ {
		v[i] = float64(iv.h[i])
	}
	median := medianOf(v[:n])
	for i := 0; i < n; i++ {
		d := v[i] - median
		if d < 0 {
			d = -d
		}
		v[i] = d
	}
	iv.med2, iv.mad2 = uint32(median*2), uint32(medianOf(v[:n])*2)
}

// medianOf sorts v in place (insertion sort: v is tiny) and returns its
// median.
func medianOf(v []float64) float64 {
	for i := 1; i < len(v); i++ {
		for j := i; j > 0 && v[j] < v[j-1]; j-- {
			v[j], v[j-1] = v[j-1], v[j]
		}
	}
	m := len(v) / 2
	if len(v)%2 == 1 {
		return v[m]
	}
	return (v[m-1] + v[m]) / 2
}

// AppendBinary appends the intervals to dst.
func (iv *Intervals) AppendBinary(dst []byte) []byte {
	dst = append(dst, iv.n)
	for i := 0; i < int(iv.n); i++ {
		dst = appendUvarint(dst, uint64(iv.h[i]))
	}
	return dst
}

// DecodeBinary reads intervals written by AppendBinary and returns the rest
// of b.
func (iv *Intervals) DecodeBinary(b []byte) ([]byte, error) {
	if len(b) < 1 || b[0] > MaxIntervals {
		return nil, errIntervals
	}
	var out Intervals
	out.n = b[0]
	b = b[1:]
	for i := 0; i < int(out.n); i++ {
		v, k := uvarint(b)
		if k <= 0 || v == 0 || v > MaxIntervalHours {
			return nil, errIntervals
		}
		out.h[i] = uint16(v)
		b = b[k:]
	}
	out.stats()
	*iv = out
	return b, nil
}
