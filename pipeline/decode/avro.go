package decode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
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
	kind akind    // aNull, aLong (int or long), aFloat, aDouble, aString (or bytes), aEnum
	int  bool     // writer type is int: check the 32-bit range
	div  int64    // event_time: divide the value by this to get ms
	enum []uint8  // aEnum: writer symbol index → event enum value, 0 = unknown
	syms []string // aEnum: the writer's symbols, for error messages
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
	if !recordNamed(root, s.record) {
		return nil, errorf(ReasonAvroWrongSchema, "", "schema is record %s; want %s", root.name, s.record)
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
		if w.kind != aLong && w.kind != aInt {
			return leaf{}, false
		}
		l := leaf{kind: aLong, int: w.kind == aInt, div: 1}
		switch w.logical {
		case "", "timestamp-millis", "local-timestamp-millis":
		case "timestamp-micros", "local-timestamp-micros":
			l.div = 1000
		case "timestamp-nanos", "local-timestamp-nanos":
			l.div = 1000000
		default:
			return leaf{}, false
		}
		return l, true
	case t == tType || t == tPriority:
		if w.kind == aEnum {
			l := leaf{kind: aEnum, enum: make([]uint8, len(w.symbols)), syms: w.symbols}
			for i, sym := range w.symbols {
				l.enum[i] = s.enumValue(t, sym)
			}
			return l, true
		}
	case t == tAmount:
		switch w.kind {
		case aDouble, aFloat:
			return leaf{kind: w.kind}, true
		case aInt, aLong:
			return leaf{kind: aLong, int: w.kind == aInt}, true
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
		f.str[t] = str{b: b}
	case aEnum:
		if n, err = r.int(); err != nil {
			return err
		}
		if n < 0 || n >= int64(len(l.enum)) {
			return errEnumIndex
		}
		v := l.enum[n]
		if v == 0 {
			f.invalid(t, errorf(ReasonFieldInvalid, "", "unknown symbol %q", l.syms[n]))
			return nil
		}
		if t == tPriority {
			f.prio = v
		} else {
			f.typ = v
		}
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
			f.time = floorDiv(n, l.div)
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
