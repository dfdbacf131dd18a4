// Package event holds winback's data contracts: the input events decoded from
// the orders, email-events and support-events topics, the win-back triggers
// written to the output topic, the per-customer aggregate written to
// ClickHouse, and the dead-letter record.
//
// The types are plain structs with small enum types so that the hot path
// (decode → window update → signals) allocates little. Times are Unix
// milliseconds in UTC, the unit of Avro's timestamp-millis.
package event
