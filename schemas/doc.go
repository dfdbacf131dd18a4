// Package schemas embeds winback's schema files: the Avro schemas of the
// input topics and of the trigger topic (avro/*.avsc, namespace io.winback),
// and the ClickHouse DDL (clickhouse/*.sql).
//
// The .avsc files are the contract with producers and with marketing
// automation; their doc strings are the field documentation.
package schemas
