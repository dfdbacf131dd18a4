package gen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/event"
)

// WriteJSONL writes the stream as JSON lines, in event-time order, with
// DefaultTopics' topic names: each line is `{"topic":"<topic>",` followed
// by the rest of codec.AppendEventJSON's object (see the package doc).
// Duplicates are written (as their repeated line); malformed records are
// left out, since cut-off and binary values do not fit a line format.
func (g *Generator) WriteJSONL(w io.Writer) error {
	return g.WriteJSONLTopics(w, DefaultTopics())
}

// WriteJSONLTopics is WriteJSONL with other topic names.
func (g *Generator) WriteJSONLTopics(w io.Writer, topics Topics) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var line []byte
	err := g.Each(func(r *Record) error {
		if r.Malformed != nil {
			return nil
		}
		line = AppendJSONL(line[:0], topics.For(r.Kind), &r.Event)
		line = append(line, '\n')
		_, err := bw.Write(line)
		return err
	})
	if err != nil {
		return fmt.Errorf("gen: writing JSON lines: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("gen: writing JSON lines: %w", err)
	}
	return nil
}

// AppendJSONL appends ev as one JSON line (without the newline) naming
// topic.
func AppendJSONL(dst []byte, topic string, ev *event.Event) []byte {
	dst = append(dst, `{"topic":`...)
	dst = appendQuoted(dst, topic)
	dst = append(dst, ',')
	start := len(dst)
	dst = codec.AppendEventJSON(dst, ev)
	// drop AppendEventJSON's opening brace: `{"topic":"t",` + `"event_id":…}`
	return append(dst[:start], dst[start+1:]...)
}

func appendQuoted(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20:
			dst = append(dst, fmt.Sprintf(`\u%04x`, c)...)
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// JSONLError reports a line ReadJSONL cannot route.
type JSONLError struct {
	Line int
	Msg  string
}

func (e *JSONLError) Error() string {
	return fmt.Sprintf("gen: JSON lines: line %d: %s", e.Line, e.Msg)
}

// ErrJSONL is matched by every *JSONLError.
var ErrJSONL = errors.New("gen: bad JSON line")

// Is reports whether target is ErrJSONL.
func (e *JSONLError) Is(target error) bool { return target == ErrJSONL }

// maxJSONLLine bounds one line.
const maxJSONLLine = 1 << 20

// ReadJSONL reads JSON lines as WriteJSONLTopics writes them and calls fn
// with each line's kind, key (its customer_id) and value: the line itself,
// which pipeline/decode reads as the event's JSON (it skips the "topic"
// field). It only routes: the value is not validated, and a line whose
// customer_id cannot be found gets a nil key, so that decoding reports it.
// Blank lines are skipped. A line whose topic is not one of topics, or
// that does not start with a "topic" field, is a *JSONLError. fn must not
// keep key or value.
func ReadJSONL(r io.Reader, topics Topics, fn func(k event.Kind, key, value []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxJSONLLine)
	kinds := map[string]event.Kind{}
	for k, t := range topics.Kinds() {
		kinds[t] = k
	}
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		topic, ok := leadingString(line, `{"topic":`)
		if !ok {
			return &JSONLError{n, `does not start with {"topic":"<topic>",`}
		}
		k, ok := kinds[topic]
		if !ok {
			return &JSONLError{n, fmt.Sprintf("unknown topic %q", topic)}
		}
		key, _ := fieldString(line, `"customer_id":`)
		if err := fn(k, key, line); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("gen: reading JSON lines: %w", err)
	}
	return nil
}

// leadingString reads the plain (unescaped) string after prefix.
func leadingString(line []byte, prefix string) (string, bool) {
	if !bytes.HasPrefix(line, []byte(prefix)) {
		return "", false
	}
	s, ok := plainString(line[len(prefix):])
	return string(s), ok
}

// fieldString finds name (with its colon) and reads the plain string after
// it. It is a router's shortcut, not a JSON parser: it finds the first
// occurrence, which in AppendJSON's output is the field.
func fieldString(line []byte, name string) ([]byte, bool) {
	i := bytes.Index(line, []byte(name))
	if i < 0 {
		return nil, false
	}
	return plainString(line[i+len(name):])
}

func plainString(b []byte) ([]byte, bool) {
	if len(b) < 2 || b[0] != '"' {
		return nil, false
	}
	end := bytes.IndexByte(b[1:], '"')
	if end < 0 || bytes.IndexByte(b[1:1+end], '\\') >= 0 {
		return nil, false
	}
	return b[1 : 1+end], true
}
