package decode

import (
	"encoding/base64"
	"encoding/json"
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
// schemas of up to maxCachedSchema bytes each: a topic's records share
// one, or a few across schema changes; a larger one is parsed every time.
const (
	maxConnectSchemas = 64
	maxCachedSchema   = 16 << 10
)

// amountScale returns the scale of the field "amount" of the Connect
// schema (the JSON text of an envelope's "schema"), if it is a Decimal.
func (d *Decoder) amountScale(schema []byte) (int, bool) {
	d.connectMu.Lock()
	scale, ok := d.connectScales[string(schema)]
	d.connectMu.Unlock()
	if !ok {
		scale = parseAmountScale(schema)
		if len(schema) <= maxCachedSchema {
			d.connectMu.Lock()
			if d.connectScales == nil || len(d.connectScales) >= maxConnectSchemas {
				d.connectScales = map[string]int{}
			}
			d.connectScales[string(schema)] = scale
			d.connectMu.Unlock()
		}
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
		return errorf(ReasonJSONType, tAmount.String(), "got the string %q, want a number or a decimal string with a point such as \"42.50\" (a Kafka Connect DECIMAL needs decimal.format=NUMERIC, or schemas.enable=true for winback to read its base64)", truncate(f.amount64, 40))
	}
	var buf [maxDecimalBytes]byte
	if base64.StdEncoding.DecodedLen(len(f.amount64)) > len(buf) {
		f.invalid(tAmount, errorf(ReasonFieldInvalid, "", "base64 decimal of %d characters: want at most %d bytes", len(f.amount64), maxDecimalBytes))
		return nil
	}
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
