package decode

import (
	"errors"
	"math"
	"strconv"
	"unicode/utf8"
)

// The JSON form of an input record is one object with the contract's field
// names. This is a small hand-rolled scanner rather than encoding/json: it
// matches names exactly (encoding/json matches them case-insensitively), it
// rejects duplicate fields, it tells a wrong type from a syntax error, it
// bounds nesting, and it does not allocate on the way. FuzzDecodeJSON checks
// it against encoding/json.

var (
	errJSONEnd   = errors.New("unexpected end of JSON")
	errJSONAfter = errors.New("data after the JSON object")
)

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

type jscanner struct {
	b        []byte
	i        int
	maxDepth int
	depth    int // of the values of the object being read: 1 at the top
}

func (d *Decoder) decodeJSON(s *spec, value []byte, start int, f *fields) error {
	sc := jscanner{b: value, i: start + 1, maxDepth: d.opts.MaxJSONDepth}
	if _, err := sc.object(s, f, 0, 1); err != nil {
		return err
	}
	if sc.space(); sc.i != len(sc.b) {
		return newErr(ReasonJSONSyntax, "", errJSONAfter)
	}
	if f.amount64 != nil {
		return d.connectAmount(f)
	}
	return nil
}

// object reads the fields of the object whose '{' has been read, up to its
// '}', its values at depth; seen has a bit per target read before, and it
// returns them with those it read. In the outermost one, a field "payload"
// whose value is an object is the envelope of Kafka Connect's JsonConverter
// with schemas.enable=true ({"schema": {…}, "payload": {…}}): the
// payload's fields are the record's (the schema, like any field winback
// does not know, is skipped). "payload" given twice is a field given
// twice, whatever its values.
func (sc *jscanner) object(s *spec, f *fields, seen uint32, depth int) (uint32, error) {
	sc.depth = depth
	sc.space()
	if sc.peek() == '}' {
		sc.i++
		return seen, nil
	}
	payloads := 0
	for {
		if sc.peek() != '"' {
			return seen, sc.syntax("expected a field name")
		}
		key, err := sc.str()
		if err != nil {
			return seen, err
		}
		sc.space()
		if sc.peek() != ':' {
			return seen, sc.syntax("expected ':' after a field name")
		}
		sc.i++
		sc.space()
		var t target
		if key.own {
			t = s.target(key.s)
		} else {
			t = s.target(string(key.b))
		}
		if t != tNone {
			if seen&bit(t) != 0 {
				f.invalid(t, newErr(ReasonFieldInvalid, "", ErrDuplicateField))
			}
			seen |= bit(t)
			if err := sc.field(s, t, f); err != nil {
				return seen, err
			}
		} else if depth == 1 && key.equal(payloadKey) {
			if payloads++; payloads == 2 && f.bad == nil {
				f.bad = newErr(ReasonFieldInvalid, "payload", ErrDuplicateField)
			}
			if sc.peek() != '{' {
				if err := sc.skip(depth); err != nil {
					return seen, err
				}
			} else {
				sc.i++
				if seen, err = sc.object(s, f, seen, depth+1); err != nil {
					return seen, err
				}
				sc.depth = depth
			}
		} else if depth == 1 && key.equal(schemaKey) {
			// Kept for a base64 amount in the payload (connect.go);
			// the last one counts, as for any JSON reader.
			start := sc.i
			if err := sc.skip(depth); err != nil {
				return seen, err
			}
			if f.schema = nil; sc.b[start] == '{' {
				f.schema = sc.b[start:sc.i]
			}
		} else if err := sc.skip(depth); err != nil {
			return seen, err
		}
		sc.space()
		c := sc.peek()
		sc.i++
		if c == '}' {
			return seen, nil
		}
		if c != ',' {
			sc.i--
			return seen, sc.syntax("expected ',' or '}' after a field value")
		}
		sc.space()
	}
}

var payloadKey, schemaKey = []byte("payload"), []byte("schema")

func (sc *jscanner) space() { sc.i = skipSpace(sc.b, sc.i) }

// peek returns the next byte, or 0 at the end.
func (sc *jscanner) peek() byte {
	if sc.i < len(sc.b) {
		return sc.b[sc.i]
	}
	return 0
}

func (sc *jscanner) syntax(msg string) *Error {
	if sc.i >= len(sc.b) {
		return newErr(ReasonJSONSyntax, "", errJSONEnd)
	}
	return errorf(ReasonJSONSyntax, "", "offset %d: %s", sc.i, msg)
}

// field reads the value of target t.
func (sc *jscanner) field(s *spec, t target, f *fields) error {
	c := sc.peek()
	if c == 'n' {
		if err := sc.literal("null"); err != nil {
			return err
		}
		f.set &^= bit(t)
		return nil
	}
	switch {
	case t.isString() || t == tType || t == tPriority:
		if c != '"' {
			return sc.wrongType(t, "a string")
		}
		v, err := sc.str()
		if err != nil {
			return err
		}
		if t.isString() {
			f.str[t] = v
			break
		}
		var e uint8
		if v.own {
			e = s.enumValue(t, v.s)
		} else {
			e = s.enumValue(t, string(v.b))
		}
		if !f.symbol(t, e) {
			f.invalid(t, errorf(ReasonFieldInvalid, "", "unknown symbol %q", v.String()))
			return nil
		}
	case t == tEventTime && c == '"':
		v, err := sc.str()
		if err != nil {
			return err
		}
		f.rfc3339(v.String())
	case t == tAmount:
		var num []byte
		if c == '"' {
			// A decimal string, as shops' webhooks and Debezium's
			// decimal.handling.mode=string write money. It must have a
			// point: a base64 string (Kafka Connect's default for a
			// DECIMAL) never has one, so it is never misread as a number.
			v, err := sc.str()
			if err != nil {
				return err
			}
			if v.own {
				num = []byte(v.s) // unescaped: rare
			} else {
				num = v.b
			}
			if !isDecimalString(num) {
				if sc.depth == 2 {
					// In a Kafka Connect envelope's payload: base64,
					// read with the schema's scale once the whole
					// record is (connect.go).
					f.amount64 = num
					break
				}
				return errorf(ReasonJSONType, t.String(), "got the string %q, want a number or a decimal string with a point such as \"42.50\"", truncate(num, 40))
			}
		} else {
			if !isNumberStart(c) {
				return sc.wrongType(t, "a number")
			}
			var err error
			if num, _, err = sc.number(); err != nil {
				return err
			}
		}
		x, perr := strconv.ParseFloat(string(num), 64)
		if perr != nil && !math.IsInf(x, 0) {
			f.invalid(t, newErr(ReasonFieldInvalid, "", perr))
			return nil
		}
		f.amount = x // ±Inf on overflow: rejected by validation
	default: // event_time as epoch ms, items, csat, nps
		want := "an integer"
		if t == tEventTime {
			want = "epoch milliseconds or an RFC 3339 string"
		}
		if !isNumberStart(c) {
			return sc.wrongType(t, want)
		}
		start := sc.i
		num, isInt, err := sc.number()
		if err != nil {
			return err
		}
		if !isInt {
			sc.i = start
			return sc.wrongType(t, want)
		}
		n, perr := strconv.ParseInt(string(num), 10, 64)
		if perr != nil {
			r := ReasonFieldInvalid
			if t == tEventTime {
				r = ReasonTimeOutOfRange
			}
			f.invalid(t, newErr(r, "", perr))
			return nil
		}
		switch t {
		case tEventTime:
			f.time, f.epoch = n, true
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

// wrongType reports a value of the wrong JSON type for t, or a syntax error
// if the value is not valid JSON at all.
func (sc *jscanner) wrongType(t target, want string) error {
	got := jsonTypeName(sc.peek())
	if err := sc.skip(sc.depth); err != nil {
		return err
	}
	return errorf(ReasonJSONType, t.String(), "got %s, want %s", got, want)
}

func isNumberStart(c byte) bool { return c == '-' || (c >= '0' && c <= '9') }

// isDecimalString reports whether b is a plain decimal number with a
// point: an optional '-', digits, '.', digits.
func isDecimalString(b []byte) bool {
	if len(b) > 0 && b[0] == '-' {
		b = b[1:]
	}
	digits := func(b []byte) int {
		n := 0
		for n < len(b) && b[n] >= '0' && b[n] <= '9' {
			n++
		}
		return n
	}
	n := digits(b)
	if n == 0 || n >= len(b) || b[n] != '.' {
		return false
	}
	m := digits(b[n+1:])
	return m > 0 && n+1+m == len(b)
}

func jsonTypeName(c byte) string {
	switch c {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	if isNumberStart(c) {
		return "a number"
	}
	return "something"
}

func (sc *jscanner) literal(lit string) error {
	if len(sc.b)-sc.i < len(lit) {
		sc.i = len(sc.b)
		return sc.syntax("")
	}
	if string(sc.b[sc.i:sc.i+len(lit)]) != lit {
		return sc.syntax("invalid literal")
	}
	sc.i += len(lit)
	return nil
}

// number scans a JSON number and returns its text; isInt is false if it has
// a fraction or an exponent.
func (sc *jscanner) number() (num []byte, isInt bool, err error) {
	b, start, i := sc.b, sc.i, sc.i
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		sc.i = i
		return nil, false, sc.syntax("invalid number")
	}
	isInt = true
	if i < len(b) && b[i] == '.' {
		i++
		isInt = false
		if digits() == 0 {
			sc.i = i
			return nil, false, sc.syntax("invalid number")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		isInt = false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			sc.i = i
			return nil, false, sc.syntax("invalid number")
		}
	}
	sc.i = i
	return b[start:i], isInt, nil
}

// str scans a JSON string starting at its opening quote. Without escapes
// the result points into the record; with escapes it is unescaped into a new
// string. A lone surrogate escape is kept as its (invalid) UTF-8 encoding, so
// that validation rejects it in the fields winback reads.
func (sc *jscanner) str() (str, error) {
	b := sc.b
	start := sc.i + 1
	for i := start; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			sc.i = i + 1
			return str{b: b[start:i]}, nil
		case c == '\\':
			return sc.unescape(start, i)
		case c < 0x20:
			sc.i = i
			return str{}, sc.syntax("control character in a string")
		}
	}
	sc.i = len(b)
	return str{}, sc.syntax("")
}

func (sc *jscanner) unescape(start, i int) (str, error) {
	b := sc.b
	out := make([]byte, 0, i-start+16)
	out = append(out, b[start:i]...)
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			sc.i = i + 1
			return str{s: string(out), own: true}, nil
		case c < 0x20:
			sc.i = i
			return str{}, sc.syntax("control character in a string")
		case c != '\\':
			out = append(out, c)
			i++
			continue
		}
		if i+1 >= len(b) {
			break
		}
		switch e := b[i+1]; e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := hex4(b, i+2)
			if !ok {
				sc.i = i
				return str{}, sc.syntax("invalid \\u escape")
			}
			i += 4
			if utf16IsHigh(r) && i+7 < len(b) && b[i+2] == '\\' && b[i+3] == 'u' {
				if lo, ok := hex4(b, i+4); ok && utf16IsLow(lo) {
					out = utf8.AppendRune(out, 0x10000+(r-0xD800)<<10+(lo-0xDC00))
					i += 6
					break
				}
			}
			if r >= 0xD800 && r <= 0xDFFF { // lone surrogate: invalid UTF-8 on purpose
				out = append(out, byte(0xE0|r>>12), byte(0x80|(r>>6)&0x3F), byte(0x80|r&0x3F))
				break
			}
			out = utf8.AppendRune(out, r)
		default:
			sc.i = i
			return str{}, sc.syntax("invalid escape")
		}
		i += 2
	}
	sc.i = len(b)
	return str{}, sc.syntax("")
}

func utf16IsHigh(r rune) bool { return r >= 0xD800 && r < 0xDC00 }
func utf16IsLow(r rune) bool  { return r >= 0xDC00 && r < 0xE000 }

func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// skip scans past any JSON value at nesting depth (the enclosing object's).
func (sc *jscanner) skip(depth int) error {
	switch c := sc.peek(); {
	case c == '"':
		_, err := sc.strRaw()
		return err
	case c == '{' || c == '[':
		if depth+1 > sc.maxDepth {
			return errorf(ReasonJSONTooDeep, "", "offset %d: nesting deeper than %d", sc.i, sc.maxDepth)
		}
		close := byte('}')
		if c == '[' {
			close = ']'
		}
		sc.i++
		sc.space()
		if sc.peek() == close {
			sc.i++
			return nil
		}
		for {
			if c == '{' {
				if sc.peek() != '"' {
					return sc.syntax("expected a field name")
				}
				if _, err := sc.strRaw(); err != nil {
					return err
				}
				sc.space()
				if sc.peek() != ':' {
					return sc.syntax("expected ':' after a field name")
				}
				sc.i++
				sc.space()
			}
			if err := sc.skip(depth + 1); err != nil {
				return err
			}
			sc.space()
			switch sc.peek() {
			case ',':
				sc.i++
				sc.space()
			case close:
				sc.i++
				return nil
			default:
				return sc.syntax("expected ',' or a closing bracket")
			}
		}
	case c == 't':
		return sc.literal("true")
	case c == 'f':
		return sc.literal("false")
	case c == 'n':
		return sc.literal("null")
	case isNumberStart(c):
		_, _, err := sc.number()
		return err
	}
	return sc.syntax("expected a value")
}

// strRaw scans past a string, checking its escapes but not unescaping it.
func (sc *jscanner) strRaw() ([]byte, error) {
	b := sc.b
	start := sc.i + 1
	for i := start; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			sc.i = i + 1
			return b[start:i], nil
		case c < 0x20:
			sc.i = i
			return nil, sc.syntax("control character in a string")
		case c == '\\':
			if i+1 >= len(b) {
				sc.i = len(b)
				return nil, sc.syntax("")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if _, ok := hex4(b, i+2); !ok {
					sc.i = i
					return nil, sc.syntax("invalid \\u escape")
				}
				i += 5
			default:
				sc.i = i
				return nil, sc.syntax("invalid escape")
			}
		}
	}
	sc.i = len(b)
	return nil, sc.syntax("")
}
