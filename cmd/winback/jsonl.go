package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/winback/winback/config"
	"github.com/winback/winback/gen"
	"github.com/winback/winback/pipeline/event"
)

// readJSONLFile reads the JSON values in path ("-": standard input), one
// event each, and calls fn with each event's kind (from its "topic"
// field), key (its customer_id) and value (the object, compacted), in file
// order. Any valid JSON is read: any spacing, any key order, one value per
// line or pretty-printed over several lines. A value that is not JSON, not
// an object, or names no input topic is passed to unroutable (with the
// line it starts on) and reading goes on after it. fn must not keep key or
// value. backtest and evaluate share it.
func readJSONLFile(path string, topics gen.Topics, fn func(k event.Kind, key, value []byte) error, unroutable func(*gen.JSONLError)) error {
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	if err := readJSONL(r, topics, fn, unroutable); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// maxJSONValue bounds one value (a line, or the lines of a pretty-printed
// value).
const maxJSONValue = 1 << 20

// maxJSONValueLines bounds the lines of one value: each new line of an
// unfinished value parses it again from its start.
const maxJSONValueLines = 1000

// readJSONL is readJSONLFile on a reader. It reads line by line and keeps
// the lines of a value that is not complete yet; a value found to be
// broken is reported at its first line and reading resumes on the next
// line, so one bad line costs only itself.
func readJSONL(r io.Reader, topics gen.Topics, fn func(k event.Kind, key, value []byte) error, unroutable func(*gen.JSONLError)) error {
	kinds := map[string]event.Kind{}
	var names []string
	for k, t := range topics.Kinds() {
		kinds[t] = k
		names = append(names, t)
	}
	sort.Strings(names)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxJSONValue)
	var (
		pending   []byte // lines not yet consumed, each ending in \n
		startLine = 1    // line number of pending[0]
		compact   bytes.Buffer
	)
	lineOf := func(off int) int { return startLine + bytes.Count(pending[:off], []byte{'\n'}) }
	// drop removes pending[:off] (which ends at a line start).
	drop := func(off int) {
		startLine = lineOf(off)
		pending = append(pending[:0], pending[off:]...)
	}
	emit := func(line int, raw []byte) error {
		env, ok := envelopeOf(raw)
		switch {
		case !ok:
			unroutable(&gen.JSONLError{Line: line, Msg: fmt.Sprintf("not a JSON object (starts with %q)", truncateBytes(raw, 16))})
			return nil
		case env.topic == nil:
			unroutable(&gen.JSONLError{Line: line, Msg: "no \"topic\" field (a string); each event names its input topic: " + strings.Join(names, ", ")})
			return nil
		}
		k, ok := kinds[string(env.topic)]
		if !ok {
			msg := fmt.Sprintf("unknown topic %q; the input topics are %s", env.topic, strings.Join(names, ", "))
			if s := config.Suggest(string(env.topic), names); s != "" {
				msg += "; did you mean " + s + "?"
			}
			unroutable(&gen.JSONLError{Line: line, Msg: msg})
			return nil
		}
		key := env.customerID
		if !bytes.ContainsAny(raw, " \t\r\n") {
			return fn(k, key, raw) // compact already (as gen writes it)
		}
		compact.Reset()
		if err := json.Compact(&compact, raw); err != nil {
			return err // cannot happen: raw was decoded
		}
		return fn(k, key, compact.Bytes())
	}
	// scan consumes every complete value in pending; more tells whether
	// more lines may follow.
	scan := func(more bool) error {
		for {
			off := skipJSONSpace(pending, 0)
			if off == len(pending) {
				pending, startLine = pending[:0], startLine+bytes.Count(pending, []byte{'\n'})
				return nil
			}
			dec := json.NewDecoder(bytes.NewReader(pending[off:]))
			var raw json.RawMessage
			err := dec.Decode(&raw)
			switch {
			case err == nil:
				end := off + int(dec.InputOffset())
				if err := emit(lineOf(off), raw); err != nil {
					return err
				}
				// Keep the rest of the line (another value may follow).
				startLine = lineOf(end)
				pending = append(pending[:0], pending[end:]...)
				continue
			case errors.Is(err, io.ErrUnexpectedEOF) && more && len(pending) < maxJSONValue &&
				bytes.Count(pending[off:], []byte{'\n'}) < maxJSONValueLines:
				drop(lineStart(pending, off))
				return nil // the value goes on on the next line
			}
			// Broken: report it at its first line and resume on the next.
			msg := "not valid JSON: " + err.Error()
			if errors.Is(err, io.ErrUnexpectedEOF) {
				msg = "not valid JSON: the value is not closed"
				if more {
					msg = fmt.Sprintf("not valid JSON: the value is not closed within %d lines or %d bytes", maxJSONValueLines, maxJSONValue)
				}
			}
			unroutable(&gen.JSONLError{Line: lineOf(off), Msg: msg})
			nl := bytes.IndexByte(pending[off:], '\n')
			if nl < 0 {
				pending, startLine = pending[:0], lineOf(len(pending))
				return nil
			}
			drop(off + nl + 1)
		}
	}
	for sc.Scan() {
		// The common case, one whole value on its own line, skips the
		// decoder.
		if line := bytes.TrimSpace(sc.Bytes()); len(pending) == 0 && len(line) > 0 && line[0] == '{' && json.Valid(line) {
			if err := emit(startLine, line); err != nil {
				return err
			}
			startLine++
			continue
		}
		pending = append(pending, sc.Bytes()...)
		pending = append(pending, '\n')
		if err := scan(true); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("line %d is longer than %d bytes", startLine+bytes.Count(pending, []byte{'\n'}), maxJSONValue)
		}
		return err
	}
	return scan(false)
}

// envelope is what routing needs of an event: its top-level "topic" and
// "customer_id" strings (nil when absent or not strings).
type envelope struct {
	topic, customerID []byte
}

// envelopeOf reads the top-level "topic" and "customer_id" of raw, a
// valid JSON value, without decoding the rest; ok is false when raw is not
// an object. A string with escapes is unquoted (allocating); the plain
// ones point into raw.
func envelopeOf(raw []byte) (env envelope, ok bool) {
	i := skipJSONSpace(raw, 0)
	if i == len(raw) || raw[i] != '{' {
		return env, false
	}
	i++
	for {
		i = skipJSONSpace(raw, i)
		if i >= len(raw) || raw[i] == '}' {
			return env, true
		}
		if raw[i] == ',' {
			i++
			continue
		}
		key, next := jsonString(raw, i)
		i = skipJSONSpace(raw, next)
		i = skipJSONSpace(raw, i+1) // the colon
		end := skipJSONValue(raw, i)
		if raw[i] == '"' && (string(key) == "topic" || string(key) == "customer_id") {
			v, _ := jsonString(raw, i)
			if string(key) == "topic" {
				env.topic = v
			} else {
				env.customerID = v
			}
		}
		i = end
	}
}

// jsonString reads the string starting at raw[i] (a '"'), unquoted, and
// returns it with the offset after it.
func jsonString(raw []byte, i int) ([]byte, int) {
	end := skipJSONString(raw, i)
	s := raw[i+1 : end-1]
	if bytes.IndexByte(s, '\\') < 0 {
		return s, end
	}
	var u string
	if err := json.Unmarshal(raw[i:end], &u); err != nil {
		return nil, end
	}
	return []byte(u), end
}

// skipJSONString returns the offset after the string starting at raw[i].
func skipJSONString(raw []byte, i int) int {
	for j := i + 1; j < len(raw); j++ {
		switch raw[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return len(raw)
}

// skipJSONValue returns the offset after the valid JSON value at raw[i]
// (a scalar ends at the next ',' or '}' of its object).
func skipJSONValue(raw []byte, i int) int {
	depth := 0
	for i < len(raw) {
		switch raw[i] {
		case '"':
			i = skipJSONString(raw, i)
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i
			}
			depth--
			if depth == 0 {
				return i + 1
			}
		case ',':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	return i
}

// truncateBytes cuts b to n bytes for a message.
func truncateBytes(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

func skipJSONSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// lineStart is the offset of the start of the line holding off.
func lineStart(b []byte, off int) int {
	return bytes.LastIndexByte(b[:off], '\n') + 1
}
