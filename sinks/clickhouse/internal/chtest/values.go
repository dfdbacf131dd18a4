package chtest

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/winback/winback/sinks/clickhouse/internal/chsql"
)

// ValuesSQL renders t's rows as one INSERT ... VALUES statement, with its
// settings (strings quoted, in name order). For executors that take SQL
// text only (chDB).
func ValuesSQL(t *chsql.Table, db string, settings map[string]any) string {
	var b strings.Builder
	b.WriteString(t.InsertQuery(db))
	for i, name := range slices.Sorted(maps.Keys(settings)) {
		if i == 0 {
			b.WriteString(" SETTINGS ")
		} else {
			b.WriteString(", ")
		}
		b.WriteString(name)
		b.WriteString(" = ")
		if v, ok := settings[name].(string); ok {
			b.WriteString(chsql.Quote(v))
		} else {
			fmt.Fprint(&b, settings[name])
		}
	}
	b.WriteString(" VALUES ")
	for i := 0; i < t.Rows; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j, c := range t.Columns {
			if j > 0 {
				b.WriteString(", ")
			}
			writeLiteral(&b, c, i)
		}
		b.WriteByte(')')
	}
	return b.String()
}

func writeLiteral(b *strings.Builder, c chsql.Column, i int) {
	switch v := c.Values.(type) {
	case []string:
		b.WriteString(chsql.Quote(v[i]))
	case []uint8:
		b.WriteString(strconv.FormatUint(uint64(v[i]), 10))
	case []uint32:
		b.WriteString(strconv.FormatUint(uint64(v[i]), 10))
	case []uint64:
		b.WriteString(strconv.FormatUint(v[i], 10))
	case []int32:
		b.WriteString(strconv.FormatInt(int64(v[i]), 10))
	case []int64:
		b.WriteString(strconv.FormatInt(v[i], 10))
	case []float64:
		b.WriteString(chsql.FloatLiteral(v[i]))
	case []time.Time:
		if c.Date {
			b.WriteString(chsql.Quote(v[i].UTC().Format(time.DateOnly)))
		} else {
			b.WriteString(chsql.Quote(v[i].UTC().Format(time.DateTime)))
		}
	case []*time.Time:
		if v[i] == nil {
			b.WriteString("NULL")
		} else {
			b.WriteString(chsql.Quote(v[i].UTC().Format(time.DateTime)))
		}
	case []*uint8:
		if v[i] == nil {
			b.WriteString("NULL")
		} else {
			b.WriteString(strconv.FormatUint(uint64(*v[i]), 10))
		}
	case [][]string:
		writeArray(b, v[i], chsql.Quote)
	case [][]float64:
		writeArray(b, v[i], chsql.FloatLiteral)
	default:
		panic(fmt.Sprintf("chsql: column %s: unsupported type %T", c.Name, c.Values))
	}
}

// writeArray writes xs as an array literal, each element as literal renders
// it.
func writeArray[T any](b *strings.Builder, xs []T, literal func(T) string) {
	b.WriteByte('[')
	for k, x := range xs {
		if k > 0 {
			b.WriteString(", ")
		}
		b.WriteString(literal(x))
	}
	b.WriteByte(']')
}
