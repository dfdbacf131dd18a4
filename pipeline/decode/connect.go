package decode

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"hash/maphash"
	"strconv"
)

// Kafka Connect's JsonConverter writes a DECIMAL column as base64 of the
// unscaled value's two's-complement bytes (decimal.format=BASE64, its
// default), and with schemas.enable=true (also its default) the record's
// schema names the field's type, org.apache.kafka.connect.data.Decimal,
// and its scale. A base64 amount in an envelope's payload is kept until
// the whole record is read (the schema may come after the payload), then
// decoded with the scale its schema gives.

const connectDecimal = "org.apache.kafka.connect.data.Decimal"

// The Decoder caches the scale of up to maxConnectSchemas envelope
// schemas by a hash of their text: a topic's records share one, or a few
// across schema changes. A schema larger than maxSchemaBytes is not read
// (a table of a thousand columns takes about 60 KiB).
const (
	maxConnectSchemas = 256
	maxSchemaBytes    = 64 << 10
)

// amountScale returns the scale of the field "amount" of the Connect
// schema (the JSON text of an envelope's "schema"), if it is a Decimal.
func (d *Decoder) amountScale(schema []byte) (int, bool) {
	if len(schema) > maxSchemaBytes {
		return -1, false
	}
	h := maphash.Bytes(d.connectSeed, schema)
	d.connectMu.Lock()
	scale, ok := d.connectScales[h]
	d.connectMu.Unlock()
	if !ok {
		scale = parseAmountScale(schema) // outside the lock: other records go on
		d.connectMu.Lock()
		if d.connectScales == nil || len(d.connectScales) >= maxConnectSchemas {
			d.connectScales = map[uint64]int{}
		}
		d.connectScales[h] = scale
		d.connectMu.Unlock()
	}
	return scale, scale >= 0
}

// parseAmountScale returns the scale of schema's Decimal field "amount",
// -1 if it has none. Names match exactly, as in the record (a struct
// would match them case-insensitively).
func parseAmountScale(schema []byte) int {
	var cs map[string]any
	if json.Unmarshal(schema, &cs) != nil {
		return -1
	}
	scale := -1
	fields, _ := cs["fields"].([]any)
	for _, x := range fields {
		f, _ := x.(map[string]any)
		params, _ := f["parameters"].(map[string]any)
		s, _ := params["scale"].(string)
		if f["field"] != "amount" || f["name"] != connectDecimal {
			continue
		}
		if n, err := strconv.Atoi(s); err == nil && n >= 0 && n <= maxDecimalScale {
			scale = n
		}
	}
	return scale
}

// connectAmount sets f's amount from its base64 text (f.amount64) with the
// scale of the envelope's schema (f.schema), or reports why it cannot.
func (d *Decoder) connectAmount(f *fields) error {
	scale, ok := d.amountScale(f.schema)
	if !ok {
		return errorf(ReasonJSONType, tAmount.String(), "got the string %q, want a number or a decimal string with a point such as \"42.50\" (a Kafka Connect DECIMAL needs decimal.format=NUMERIC, or schemas.enable=true and a schema of at most 64 KiB for winback to read its base64)", truncate(f.amount64, 40))
	}
	// Kafka Connect writes plain base64; encoding/base64 would skip line
	// breaks in it.
	if len(f.amount64) > base64.StdEncoding.EncodedLen(maxDecimalBytes) || bytes.ContainsAny(f.amount64, "\r\n") {
		f.invalid(tAmount, errorf(ReasonFieldInvalid, "", "Kafka Connect decimal: %d characters of base64, want the bytes of at most %d", len(f.amount64), maxDecimalBytes))
		return nil
	}
	var buf [maxDecimalBytes + 2]byte
	n, err := base64.StdEncoding.Strict().Decode(buf[:], f.amount64)
	if err != nil {
		f.invalid(tAmount, errorf(ReasonFieldInvalid, "", "Kafka Connect decimal: %v", err))
		return nil
	}
	x, ok := decimal(buf[:n], scale)
	if !ok {
		f.invalid(tAmount, errorf(ReasonFieldInvalid, "", "Kafka Connect decimal of %d bytes: want 1 to %d", n, maxDecimalBytes))
		return nil
	}
	f.amount = x
	return nil
}
