package clickhouse

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/winback/winback/sinks/clickhouse/internal/chsql"
)

// executor runs migrations and queries through clickhouse-go
// (chsql.Executor).
type executor struct{ conn driver.Conn }

func (e executor) Exec(ctx context.Context, query string) error { return e.conn.Exec(ctx, query) }

func (e executor) Query(ctx context.Context, query string) ([][]string, error) {
	return queryStrings(ctx, e.conn, query)
}

// queryStrings runs query and returns each value as text: NULL as \N,
// Date as 2006-01-02, DateTime as 2006-01-02 15:04:05 (UTC), floats in
// the shortest form that round-trips, arrays as [a,b].
func queryStrings(ctx context.Context, conn driver.Conn, query string) ([][]string, error) {
	rows, err := conn.Query(ctx, query)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	var out [][]string
	for rows.Next() {
		dest := make([]any, len(types))
		for i, t := range types {
			dest[i] = reflect.New(t.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		row := make([]string, len(types))
		for i, t := range types {
			row[i] = formatValue(reflect.ValueOf(dest[i]).Elem(), strings.Contains(t.DatabaseTypeName(), "Date") && !strings.Contains(t.DatabaseTypeName(), "DateTime"))
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

func formatValue(v reflect.Value, date bool) string {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return `\N`
		}
		v = v.Elem()
	}
	switch x := v.Interface().(type) {
	case time.Time:
		if date {
			return x.UTC().Format(time.DateOnly)
		}
		return x.UTC().Format(time.DateTime)
	case float64:
		return chsql.FloatLiteral(x)
	case float32:
		return chsql.FloatLiteral(float64(x))
	case bool:
		if x {
			return "1"
		}
		return "0"
	case string:
		return x
	case []byte:
		return string(x)
	}
	switch v.Kind() {
	case reflect.Slice, reflect.Array:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = formatValue(v.Index(i), date)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(v.Uint(), 10)
	}
	return fmt.Sprint(v.Interface())
}
