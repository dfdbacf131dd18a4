// Package kafka writes winback's output records: win-back triggers for
// marketing automation, and dead-letter records for input that could not be
// decoded.
//
// # Triggers
//
// TriggerEncoder writes event.Trigger as the WinbackTrigger record of
// schemas/avro/winback_trigger.avsc, in one of two formats:
//
//   - "avro": Confluent-framed Avro (0x00, 4-byte big-endian schema id,
//     Avro binary); the schema is registered under the subject
//     <topic>-value.
//   - "json": one JSON object with the Avro schema's field names, enums as
//     their symbols, as_of and emitted_at as epoch milliseconds, evidence as
//     an object with its names sorted, original_trigger_id null when there is
//     none.
//
// DecodeTrigger reads either form back; it shows consumers how to read the
// topic.
//
// Trigger records (TriggerRecord) are keyed by customer_id and carry the
// headers
//
//	winback.trigger_id   the trigger id, for deduplication without decoding
//	winback.kind         WINBACK or RECOVERED
//	winback.schema       WinbackTrigger/v1
//
// # Dead letters
//
// A dead-letter record (DeadLetterRecord) has the bad input record's key and
// value, so it can be replayed, its headers, and before them these:
//
//	winback.reason            the decode.Reason, e.g. avro.unknown_schema_id;
//	                          "internal" for errors that are not a *decode.Error
//	winback.error             the error message, at most 1 KiB
//	winback.source.topic      the input record's topic
//	winback.source.partition  its partition, decimal
//	winback.source.offset     its offset, decimal
//	winback.source.timestamp  its timestamp, Unix milliseconds, decimal
//	winback.source.size       the original value's size, when it was cut
//	winback.source.key_size   the original key's size, when it was cut
//	winback.source.headers_dropped  how many source headers were left out
//	winback.truncated         "true" when anything was cut
//
// A value longer than the cap passed to DeadLetterRecord is cut to it, a
// key to MaxDeadLetterKeyBytes (4 KiB), and the source headers to
// MaxDeadLetterHeaderBytes (16 KiB), so that the record always fits the
// dead-letter topic (a record the broker refuses would fail its transaction
// on every replay); the source coordinates still point at the whole
// original.
//
// # Size
//
// BatchSize is the size of a record in a batch of its own, as the producer
// counts it against ProducerBatchMaxBytes; CheckSize compares it with the
// limit. Check every output record before it joins a transaction. DeadLetter gives the same facts as an
// event.DeadLetter row for ClickHouse, with the value cut to a sample.
//
// The package exports no metrics.
package kafka
