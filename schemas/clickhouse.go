package schemas

import (
	"embed"
	"io/fs"
)

//go:embed clickhouse/*.sql
var clickhouseFS embed.FS

// ClickHouseMigrations returns the ClickHouse migrations: the files
// NNN_name.sql at the root of the returned FS, Go text/templates that
// sinks/clickhouse renders (database, activity window, version-dependent
// types and settings) and applies in order.
func ClickHouseMigrations() fs.FS {
	sub, err := fs.Sub(clickhouseFS, "clickhouse")
	if err != nil {
		panic("schemas: " + err.Error()) // "clickhouse" is a valid path
	}
	return sub
}
