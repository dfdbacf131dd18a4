// Package decode turns the record values of winback's input topics (orders,
// email-events, support-events) into validated event.Event values, and
// rejects every bad record with a typed *Error whose Reason is a stable code
// for the dead-letter topic.
//
// # Encodings
//
// Both encodings may appear on the same topic; the first byte decides.
//
//   - 0x00: Confluent-framed Avro, 0x00 <4-byte big-endian schema id> <Avro
//     binary>. The writer schema is looked up by id in a Registry
//     (SchemaRegistry adapts a franz-go *sr.Client) and cached for good.
//   - '{' (after JSON blanks): a JSON object with the same field names as the
//     Avro schema, enums as their symbols, event_time as epoch milliseconds
//     (a JSON integer) or an RFC 3339 string, csat and nps null or absent.
//     Field names match exactly; unknown fields are skipped; a field given
//     twice is rejected. Kafka Connect's JsonConverter envelope
//     ({"schema": {…}, "payload": {…}}, schemas.enable=true) is read too:
//     the fields of a top-level "payload" object count as the record's.
//
// # Schema evolution
//
// Avro records are resolved by field name against the writer schema, not by
// position against a reader schema: fields winback does not know are
// skipped, fields may come in any order, a union with null is accepted where
// the contract has a plain type (null then counts as absent), and the usual
// promotions apply (int → long, int/long/float → double, bytes → string,
// timestamp-micros/nanos → millis). Beyond Avro's own rules, as written by
// Kafka Connect's AvroConverter and by producers that derive their schema
// from a database table: a string where the contract has an enum (the
// symbol, checked as in JSON), an RFC 3339 string for event_time (as in
// JSON; Debezium's ZonedTimestamp), and an amount that is a decimal (bytes
// or fixed of 1 to 32 bytes with logicalType decimal, rounded to the
// nearest double). The
// record may have any name but another input's: a writer schema named (or
// aliased) Order, EmailEvent or SupportEvent on another input's topic, or
// whose field of a known name has a type that cannot be read as the
// contract's, is avro.wrong_schema; one that lacks a required field is
// field.missing. Each
// schema id is compiled once into a plan that decodes straight into the
// event, without goavro's generic maps on the hot path; goavro validates
// every schema before it is used and is the reference in the tests.
//
// # Reasons
//
// Checked in this order, the first failing check decides:
//
//	value.empty             the value is empty or null (a tombstone)
//	value.too_large         the value exceeds Options.MaxValueBytes (1 MiB)
//	encoding.unknown        neither 0x00 (Avro) nor '{' (a JSON object), e.g. a JSON array
//	avro.truncated          the Avro data (or the 5-byte header) ends early
//	avro.unknown_schema_id  the registry does not know the schema id
//	avro.wrong_schema       the schema is not a usable record for this topic:
//	                        another input's record, a field of an incompatible
//	                        type, not Avro, or invalid
//	avro.decode             malformed Avro: bad varint, negative length, union
//	                        or enum index out of range, bytes after the record
//	registry.unavailable    the registry could not be reached within
//	                        Options.RegistryRetry (30 s); transient, see below
//	json.syntax             not valid JSON, or data after the object
//	json.type               a known field has the wrong JSON type, e.g. a
//	                        number as a string, or a fraction in an integer
//	json.too_deep           nesting deeper than Options.MaxJSONDepth (32)
//	field.missing           a required field is absent or null
//	field.invalid           a value outside the contract: unknown enum symbol,
//	                        invalid UTF-8, empty id, a control character in
//	                        customer_id, amount negative/NaN/Inf,
//	                        currency not three upper-case letters, items < 0,
//	                        csat outside 1–5, nps outside 0–10, an unparsable
//	                        RFC 3339 time, a field given twice in JSON
//	field.too_long          event_id, customer_id, order_id, campaign_id or
//	                        ticket_id longer than MaxIDBytes (256 bytes)
//	time.out_of_range       event_time before 2000-01-01, or not a number
//	                        that fits in Unix milliseconds
//	time.in_future          event_time more than Options.MaxFutureSkew
//	                        (5 minutes) after Options.Now
//	key.missing             the record has no key (null or empty)
//	key.mismatch            the key differs from customer_id
//
// Error.Field names the contract field where there is one. registry.unavailable
// is the only transient reason (Reason.Transient): the record itself may be
// fine, so a consumer should stop and retry rather than dead-letter it. A
// registry answering "not found" is not unavailable: that is
// avro.unknown_schema_id, remembered for Options.UnknownSchemaTTL (1 minute).
// While the registry is down, schema ids already cached keep decoding; an id
// whose lookup gave up is remembered as unavailable for
// Options.UnavailableTTL (2 s), so that the records behind it fail at once
// rather than each waiting RegistryRetry. Expired entries of both kinds are
// dropped before every registry request. Decoder.Prefetch looks an id up
// ahead (the consumer does so without holding its lock, with a context that
// ends soon after shutdown begins), and Decoder.Unavailable reports the registry's latest
// failure for a readiness check.
//
// # Producing
//
// The package only decodes. Package codec writes both encodings
// (codec.EventEncoder for Avro, codec.AppendEventJSON for JSON).
//
// # Hostile inputs
//
// testdata/hostile holds one file per kind of bad record and manifest.txt
// says, for each, the topic kind, the record key and the expected Reason;
// LoadHostileCorpus reads it (see hostile.go for the format).
//
// The package exports no metrics: the consumer counts records by Reason.
package decode
