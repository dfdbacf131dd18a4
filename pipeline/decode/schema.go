package decode

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// akind is an Avro type.
type akind uint8

const (
	aNull akind = iota + 1
	aBoolean
	aInt
	aLong
	aFloat
	aDouble
	aBytes
	aString
	aRecord
	aEnum
	aArray
	aMap
	aUnion
	aFixed
)

var primitives = map[string]akind{
	"null": aNull, "boolean": aBoolean, "int": aInt, "long": aLong,
	"float": aFloat, "double": aDouble, "bytes": aBytes, "string": aString,
}

// atype is a parsed Avro writer schema, enough to decode the fields winback
// reads and to skip every other field.
type atype struct {
	kind     akind
	logical  string   // logicalType, e.g. "timestamp-millis"
	name     string   // full name of a record, enum or fixed
	aliases  []string // full names
	fields   []afield // record
	symbols  []string // enum
	elem     *atype   // array items, map values
	branches []*atype // union
	size     int      // fixed
	scale    int      // bytes or fixed with logicalType decimal
}

type afield struct {
	name string
	typ  *atype
}

// shortName is the name without its namespace.
func shortName(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[i+1:]
	}
	return full
}

// parseSchema parses the JSON text of an Avro schema. The text has already
// been accepted by goavro, so this is lenient about what goavro checks and
// strict only about what it needs.
func parseSchema(text string) (*atype, error) {
	var v any
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	p := &schemaParser{named: make(map[string]*atype)}
	return p.parse(v, "")
}

type schemaParser struct {
	named map[string]*atype
	depth int
}

func fullName(name, namespace, enclosing string) string {
	if strings.Contains(name, ".") {
		return name
	}
	if namespace == "" {
		namespace = enclosing
	}
	if namespace == "" {
		return name
	}
	return namespace + "." + name
}

func namespaceOf(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[:i]
	}
	return ""
}

func (p *schemaParser) parse(v any, ns string) (*atype, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > 64 {
		return nil, errors.New("schema nested too deeply")
	}
	switch v := v.(type) {
	case string:
		return p.ref(v, ns)
	case []any:
		t := &atype{kind: aUnion}
		for _, b := range v {
			bt, err := p.parse(b, ns)
			if err != nil {
				return nil, err
			}
			t.branches = append(t.branches, bt)
		}
		if len(t.branches) == 0 {
			return nil, errors.New("empty union")
		}
		return t, nil
	case map[string]any:
		return p.object(v, ns)
	}
	return nil, fmt.Errorf("unexpected schema element %T", v)
}

func (p *schemaParser) ref(name, ns string) (*atype, error) {
	if k, ok := primitives[name]; ok {
		return &atype{kind: k}, nil
	}
	if t, ok := p.named[fullName(name, "", ns)]; ok {
		return t, nil
	}
	if t, ok := p.named[name]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("unknown type %q", name)
}

func (p *schemaParser) define(t *atype, m map[string]any, ns string) (string, error) {
	name, _ := m["name"].(string)
	if name == "" {
		return "", errors.New("named type without a name")
	}
	space, _ := m["namespace"].(string)
	t.name = fullName(name, space, ns)
	if aliases, ok := m["aliases"].([]any); ok {
		for _, a := range aliases {
			if s, ok := a.(string); ok {
				t.aliases = append(t.aliases, fullName(s, "", namespaceOf(t.name)))
			}
		}
	}
	p.named[t.name] = t
	return namespaceOf(t.name), nil
}

func (p *schemaParser) object(m map[string]any, ns string) (*atype, error) {
	typ, ok := m["type"].(string)
	if !ok {
		// {"type": {...}} or {"type": [...]}: the inner value is the schema.
		inner, ok := m["type"]
		if !ok {
			return nil, errors.New("schema object without a type")
		}
		return p.parse(inner, ns)
	}
	switch typ {
	case "record", "error":
		t := &atype{kind: aRecord}
		rns, err := p.define(t, m, ns)
		if err != nil {
			return nil, err
		}
		fs, ok := m["fields"].([]any)
		if !ok {
			return nil, fmt.Errorf("record %s without fields", t.name)
		}
		for _, f := range fs {
			fm, ok := f.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("record %s: field is %T", t.name, f)
			}
			name, _ := fm["name"].(string)
			ft, err := p.parse(fm["type"], rns)
			if err != nil {
				return nil, fmt.Errorf("record %s field %s: %w", t.name, name, err)
			}
			t.fields = append(t.fields, afield{name: name, typ: ft})
		}
		return t, nil
	case "enum":
		t := &atype{kind: aEnum}
		if _, err := p.define(t, m, ns); err != nil {
			return nil, err
		}
		syms, _ := m["symbols"].([]any)
		for _, s := range syms {
			str, _ := s.(string)
			t.symbols = append(t.symbols, str)
		}
		return t, nil
	case "fixed":
		t := &atype{kind: aFixed}
		if _, err := p.define(t, m, ns); err != nil {
			return nil, err
		}
		n, ok := m["size"].(json.Number)
		if !ok {
			return nil, fmt.Errorf("fixed %s without a size", t.name)
		}
		size, err := n.Int64()
		if err != nil || size < 0 || size > 1<<30 {
			return nil, fmt.Errorf("fixed %s: bad size %v", t.name, n)
		}
		t.size = int(size)
		setLogical(t, m) // on the definition: a reference by name has it too
		return t, nil
	case "array", "map":
		key := "items"
		t := &atype{kind: aArray}
		if typ == "map" {
			key, t.kind = "values", aMap
		}
		elem, err := p.parse(m[key], ns)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", typ, err)
		}
		t.elem = elem
		return t, nil
	}
	t, err := p.ref(typ, ns)
	if err != nil {
		return nil, err
	}
	if _, ok := m["logicalType"]; ok && t.kind < aRecord {
		c := *t
		setLogical(&c, m)
		return &c, nil
	}
	return t, nil
}

// setLogical sets t's logicalType from m, and a decimal's scale. A decimal
// with a scale out of range is left a plain bytes or fixed, which the
// contract does not read as a number.
func setLogical(t *atype, m map[string]any) {
	lt, ok := m["logicalType"].(string)
	if !ok {
		return
	}
	t.logical = lt
	if lt == "decimal" {
		scale := int64(0) // the spec's default
		if n, ok := m["scale"].(json.Number); ok {
			var err error
			if scale, err = n.Int64(); err != nil {
				scale = -1
			}
		}
		if scale < 0 || scale > maxDecimalScale {
			t.logical = ""
		}
		t.scale = int(scale)
	}
}
