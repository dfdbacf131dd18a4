// Package codec holds winback's wire formats: how input events and
// win-back triggers are written as Confluent-framed Avro or JSON, and how
// triggers are read back. Decoding input events, with validation and typed
// errors for the dead-letter topic, is package decode's job; putting
// records on Kafka is package sinks/kafka's.
//
// # Input events
//
// EventEncoder registers the contract's schemas (schemas/avro) under
// <topic>-value (Subject) and writes an event.Event as Confluent-framed
// Avro: 0x00, the 4-byte big-endian schema id, the Avro binary.
// AppendEventAvro does the same for a schema id already known.
// AppendEventJSON writes the JSON form: the Avro schema's field names,
// enums as their symbols, event_time as epoch milliseconds, csat and nps
// null when absent. Both write invalid events as they are, so that tests
// and the traffic generator can build bad records.
//
// # Triggers
//
// TriggerEncoder writes event.Trigger as the WinbackTrigger record of
// schemas/avro/winback_trigger.avsc, in one of two formats:
//
//   - "avro": Confluent-framed Avro; the schema is registered under the
//     subject <topic>-value.
//   - "json": one JSON object with the Avro schema's field names, enums as
//     their symbols, as_of and emitted_at as epoch milliseconds, evidence as
//     an object with its names sorted, original_trigger_id null when there is
//     none.
//
// It refuses, with ErrInvalidTrigger, a trigger outside the contract.
// DecodeTrigger reads either form back; it shows consumers how to read the
// trigger topic. TriggerSchemaName is the contract's name and version.
//
// # Primitives
//
// AppendAvroLong, AppendAvroString and AppendJSONString are the building
// blocks of both, for tests that hand-craft records.
//
// The package exports no metrics.
package codec
