// Package kafka makes winback's output records for Kafka: win-back trigger
// records for marketing automation, and dead-letter records (and rows) for
// input that could not be decoded, each checked against the producer's
// batch limit. The trigger value's wire format is package codec's.
//
// # Triggers
//
// Trigger records (TriggerRecord) hold a value from codec.TriggerEncoder,
// are keyed by customer_id and carry the headers
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
