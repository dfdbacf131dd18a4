package decode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/big"
)

// Errors of the Avro binary reader; mapped to Reasons by avroErr.
var (
	errVarint     = errors.New("varint longer than 10 bytes")
	errNegative   = errors.New("negative length")
	errIntRange   = errors.New("int out of 32-bit range")
	errUnionIndex = errors.New("union branch index out of range")
	errEnumIndex  = errors.New("enum symbol index out of range")
	errTooDeep    = errors.New("data nested too deeply")
	errTooMany    = errors.New("too many items for the size of the record")
	errBoolean    = errors.New("boolean byte neither 0 nor 1")
)

const maxAvroDepth = 64

// areader reads Avro binary encoding.
type areader struct {
	b []byte
	i int
	// budget bounds the work of skipping arrays and maps of empty items,
	// which take no bytes each and could otherwise claim 2^63 of them.
	budget int
}

func (r *areader) long() (int64, error) {
	var u uint64
	for n := uint(0); ; n++ {
		if r.i >= len(r.b) {
			return 0, ErrTruncated
		}
		c := r.b[r.i]
		r.i++
		if n == 9 && c > 1 {
			return 0, errVarint
		}
		u |= uint64(c&0x7f) << (7 * n)
		if c < 0x80 {
			return int64(u>>1) ^ -int64(u&1), nil
		}
	}
}

func (r *areader) int() (int64, error) {
	v, err := r.long()
	if err == nil && (v < math.MinInt32 || v > math.MaxInt32) {
		return 0, errIntRange
	}
	return v, err
}

func (r *areader) fixed(n int) ([]byte, error) {
	if n < 0 {
		return nil, errNegative
	}
	if len(r.b)-r.i < n {
		return nil, ErrTruncated
	}
	b := r.b[r.i : r.i+n]
	r.i += n
	return b, nil
}

func (r *areader) bytes() ([]byte, error) {
	n, err := r.long()
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, errNegative
	}
	if int64(len(r.b)-r.i) < n {
		return nil, ErrTruncated
	}
	return r.fixed(int(n))
}

func (r *areader) double() (float64, error) {
	b, err := r.fixed(8)
	if err != nil {
		return 0, err
	}
	return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
}

func (r *areader) float() (float64, error) {
	b, err := r.fixed(4)
	if err != nil {
		return 0, err
	}
	return float64(math.Float32frombits(binary.LittleEndian.Uint32(b))), nil
}

// skip reads past one value of type t.
func (r *areader) skip(t *atype, depth int) error {
	if depth > maxAvroDepth {
		return errTooDeep
	}
	r.budget--
	if r.budget < 0 {
		return errTooMany
	}
	var err error
	switch t.kind {
	case aNull:
	case aBoolean:
		var b []byte
		if b, err = r.fixed(1); err == nil && b[0] > 1 {
			err = errBoolean
		}
	case aInt, aLong, aEnum:
		_, err = r.long()
	case aFloat:
		_, err = r.fixed(4)
	case aDouble:
		_, err = r.fixed(8)
	case aBytes, aString:
		_, err = r.bytes()
	case aFixed:
		_, err = r.fixed(t.size)
	case aRecord:
		for i := range t.fields {
			if err = r.skip(t.fields[i].typ, depth+1); err != nil {
				return err
			}
		}
	case aUnion:
		var i int64
		if i, err = r.long(); err != nil {
			return err
		}
		if i < 0 || i >= int64(len(t.branches)) {
			return errUnionIndex
		}
		return r.skip(t.branches[i], depth+1)
	case aArray, aMap:
		for {
			var n int64
			if n, err = r.long(); err != nil || n == 0 {
				return err
			}
			if n < 0 {
				// A negative count is followed by the block's size in bytes.
				if n == math.MinInt64 {
					return errNegative
				}
				n = -n
				if _, err = r.long(); err != nil {
					return err
				}
			}
			for ; n > 0; n-- {
				if t.kind == aMap {
					if _, err = r.bytes(); err != nil {
						return err
					}
				}
				if err = r.skip(t.elem, depth+1); err != nil {
					return err
				}
			}
		}
	default:
		return fmt.Errorf("cannot skip Avro type %d", t.kind)
	}
	return err
}

// leaf says how to read one (non-union) writer type into a target.
type leaf struct {
	kind  akind    // aNull, aLong (int or long), aFloat, aDouble, aString (or bytes), aEnum, aBytes or aFixed (a decimal)
	int   bool     // writer type is int: check the 32-bit range
	div   int64    // event_time: divide the value by this to get ms; 0: no unit given (epochMillis)
	enum  []uint8  // aEnum: writer symbol index → event enum value, 0 = unknown
	syms  []string // aEnum: the writer's symbols, for error messages
	size  int      // aFixed: its size
	scale int      // aBytes, aFixed: the decimal's scale
}

// fieldOp reads one writer field.
type fieldOp struct {
	target target // tNone: skip the field
	name   string
	typ    *atype
	leaves []leaf // one, or one per union branch
	union  bool
}

// avroPlan decodes the records of one writer schema into one kind of event.
type avroPlan struct {
	ops []fieldOp
}

// compile builds the plan for decoding records written with root into
// events of spec s: fields are matched by name, fields winback does not know
// are skipped, and a writer type that cannot be read as the contract's type
// makes the schema wrong for the topic.
func compile(s *spec, root *atype) (*avroPlan, *Error) {
	if root.kind != aRecord {
		return nil, errorf(ReasonAvroWrongSchema, "", "schema is not a record; want %s", s.record)
	}
	if other := otherInput(root, s); other != "" {
		return nil, errorf(ReasonAvroWrongSchema, "", "schema is record %s, the contract's record of another input; want %s", root.name, s.record)
	}
	p := &avroPlan{ops: make([]fieldOp, 0, len(root.fields))}
	var present uint32
	for _, f := range root.fields {
		op := fieldOp{name: f.name, typ: f.typ, target: s.target(f.name)}
		if op.target != tNone && present&bit(op.target) != 0 {
			op.target = tNone // a duplicate name: the first one wins
		}
		if op.target != tNone {
			branches := []*atype{f.typ}
			if f.typ.kind == aUnion {
				branches, op.union = f.typ.branches, true
			}
			for _, b := range branches {
				l, ok := leafFor(s, op.target, b)
				if !ok {
					return nil, errorf(ReasonAvroWrongSchema, f.name, "writer type %s cannot be read as the contract's type", describe(b))
				}
				op.leaves = append(op.leaves, l)
				if l.kind != aNull {
					present |= bit(op.target)
				}
			}
		}
		p.ops = append(p.ops, op)
	}
	for t := tNone + 1; t < nTargets; t++ {
		if s.required&bit(t) != 0 && present&bit(t) == 0 {
			return nil, errorf(ReasonFieldMissing, t.String(), "writer schema %s has no such field", root.name)
		}
	}
	return p, nil
}

// otherInput returns the contract record name of another input that t is
// named (or aliased) after, "" if none. Records of other names are read by
// their fields: Kafka Connect's AvroConverter, for one, names them after
// the source table or ConnectDefault.
func otherInput(t *atype, s *spec) string {
	if recordNamed(t, s.record) {
		return ""
	}
	for _, o := range specs {
		if o != nil && o != s && recordNamed(t, o.record) {
			return o.record
		}
	}
	return ""
}

func recordNamed(t *atype, want string) bool {
	if shortName(t.name) == want {
		return true
	}
	for _, a := range t.aliases {
		if shortName(a) == want {
			return true
		}
	}
	return false
}

func describe(t *atype) string {
	for name, k := range primitives {
		if k == t.kind {
			if t.logical != "" {
				return name + "(" + t.logical + ")"
			}
			return name
		}
	}
	switch t.kind {
	case aRecord:
		return "record " + t.name
	case aEnum:
		return "enum " + t.name
	case aFixed:
		return "fixed " + t.name
	case aArray:
		return "array"
	case aMap:
		return "map"
	case aUnion:
		return "union"
	}
	return "unknown"
}

// leafFor says how to read writer type w into target t.
func leafFor(s *spec, t target, w *atype) (leaf, bool) {
	if w.kind == aNull {
		return leaf{kind: aNull}, true
	}
	switch {
	case t.isString():
		if w.kind == aString || w.kind == aBytes {
			return leaf{kind: aString}, true
		}
	case t == tEventTime:
		if w.kind == aString {
			// An RFC 3339 time, as in JSON (Debezium's ZonedTimestamp).
			return leaf{kind: aString}, true
		}
		if w.kind != aLong && w.kind != aInt {
			return leaf{}, false
		}
		l := leaf{kind: aLong, int: w.kind == aInt, div: 1}
		switch w.logical {
		case "":
			l.div = 0 // a plain number: Debezium's MicroTimestamp, say
		case "timestamp-millis", "local-timestamp-millis":
		case "timestamp-micros", "local-timestamp-micros":
			l.div = 1000
		case "timestamp-nanos", "local-timestamp-nanos":
			l.div = 1000000
		default:
			return leaf{}, false
		}
		return l, true
	case t == tType || t == tPriority:
		switch w.kind {
		case aEnum:
			l := leaf{kind: aEnum, enum: make([]uint8, len(w.symbols)), syms: w.symbols}
			for i, sym := range w.symbols {
				l.enum[i] = s.enumValue(t, sym)
			}
			return l, true
		case aString:
			// The symbol as a string, as in JSON: Kafka Connect has no
			// enums, and many producers write strings.
			return leaf{kind: aString}, true
		}
	case t == tAmount:
		switch w.kind {
		case aDouble, aFloat:
			return leaf{kind: w.kind}, true
		case aInt, aLong:
			return leaf{kind: aLong, int: w.kind == aInt}, true
		case aBytes, aFixed:
			// A decimal, as databases keep money (Kafka Connect's
			// Decimal, Debezium). A fixed too small or too large for
			// any value read is the wrong schema, not a bad record.
			if w.logical == "decimal" && (w.kind == aBytes || w.size >= 1 && w.size <= maxDecimalBytes) {
				return leaf{kind: w.kind, size: w.size, scale: w.scale}, true
			}
		}
	case t == tItems || t == tCSAT || t == tNPS:
		if w.kind == aInt || w.kind == aLong {
			return leaf{kind: aLong, int: w.kind == aInt}, true
		}
	}
	return leaf{}, false
}

// decode reads one record of the plan's writer schema into f.
func (p *avroPlan) decode(s *spec, data []byte, f *fields) error {
	r := areader{b: data, budget: 4*len(data) + 64}
	for i := range p.ops {
		op := &p.ops[i]
		if op.target == tNone {
			if err := r.skip(op.typ, 0); err != nil {
				return avroErr(op.name, err)
			}
			continue
		}
		l := &op.leaves[0]
		if op.union {
			b, err := r.long()
			if err != nil {
				return avroErr(op.name, err)
			}
			if b < 0 || b >= int64(len(op.leaves)) {
				return avroErr(op.name, errUnionIndex)
			}
			l = &op.leaves[b]
		}
		if err := p.read(s, &r, op.target, l, f); err != nil {
			return avroErr(op.name, err)
		}
	}
	if r.i != len(r.b) {
		return errorf(ReasonAvroDecode, "", "%d bytes after the end of the record", len(r.b)-r.i)
	}
	return nil
}

func (p *avroPlan) read(s *spec, r *areader, t target, l *leaf, f *fields) error {
	var (
		n   int64
		x   float64
		err error
	)
	switch l.kind {
	case aNull:
		f.set &^= bit(t)
		return nil
	case aString:
		var b []byte
		if b, err = r.bytes(); err != nil {
			return err
		}
		if t.isString() {
			f.str[t] = str{b: b}
			break
		}
		if t == tEventTime {
			f.rfc3339(string(b))
			break
		}
		if !f.symbol(t, s.enumValue(t, string(b))) {
			f.invalid(t, errorf(ReasonFieldInvalid, "", "unknown symbol %q", b))
			return nil
		}
	case aEnum:
		if n, err = r.int(); err != nil {
			return err
		}
		if n < 0 || n >= int64(len(l.enum)) {
			return errEnumIndex
		}
		if !f.symbol(t, l.enum[n]) {
			f.invalid(t, errorf(ReasonFieldInvalid, "", "unknown symbol %q", l.syms[n]))
			return nil
		}
	case aBytes, aFixed:
		var b []byte
		if l.kind == aBytes {
			b, err = r.bytes()
		} else {
			b, err = r.fixed(l.size)
		}
		if err != nil {
			return err
		}
		x, ok := decimal(b, l.scale)
		if !ok {
			f.invalid(t, errorf(ReasonFieldInvalid, "", "decimal of %d bytes: want 1 to %d", len(b), maxDecimalBytes))
			return nil
		}
		f.amount = x
	case aDouble, aFloat:
		if l.kind == aDouble {
			x, err = r.double()
		} else {
			x, err = r.float()
		}
		if err != nil {
			return err
		}
		f.amount = x
	case aLong:
		if l.int {
			n, err = r.int()
		} else {
			n, err = r.long()
		}
		if err != nil {
			return err
		}
		switch t {
		case tEventTime:
			if l.div == 0 {
				f.time, f.epoch = n, true
			} else {
				f.time = floorDiv(n, l.div)
			}
		case tAmount:
			f.amount = float64(n)
		case tItems:
			f.items = n
		case tCSAT:
			f.csat = n
		case tNPS:
			f.nps = n
		}
	}
	f.set |= bit(t)
	return nil
}

// Bounds of the decimals read as amounts. 38 digits, the most of Kafka
// Connect's, Debezium's and most databases' decimals, take 16 bytes; twice
// that leaves room for any precision in use and bounds the work of a
// hostile record.
const (
	maxDecimalBytes = 32
	maxDecimalScale = 64
)

var pow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// decimal is the value of an Avro decimal, the big-endian two's-complement
// unscaled integer b times 10^-scale, rounded to the nearest float64 (as
// strconv.ParseFloat rounds the same number written out); false for an
// empty or oversized b.
func decimal(b []byte, scale int) (float64, bool) {
	if len(b) == 0 || len(b) > maxDecimalBytes {
		return 0, false
	}
	if len(b) <= 8 && scale < len(pow10) {
		n := int64(int8(b[0])) // sign-extended
		for _, c := range b[1:] {
			n = n<<8 | int64(c)
		}
		if n >= -1<<53 && n <= 1<<53 {
			// Both exact, so one correctly rounded division.
			return float64(n) / pow10[scale], true
		}
	}
	u := new(big.Int).SetBytes(b)
	if b[0]&0x80 != 0 {
		u.Sub(u, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	x, _ := new(big.Rat).SetFrac(u, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(scale)), nil)).Float64()
	return x, true
}

func floorDiv(n, d int64) int64 {
	q := n / d
	if n%d < 0 {
		q--
	}
	return q
}

// avroErr maps a reader error in the named field to an *Error.
func avroErr(field string, err error) *Error {
	var de *Error
	if errors.As(err, &de) {
		de.Field = field
		return de
	}
	if errors.Is(err, ErrTruncated) {
		return newErr(ReasonAvroTruncated, field, err)
	}
	return newErr(ReasonAvroDecode, field, err)
}
