package codec

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/schemas"
)

// Format is the encoding of trigger records.
type Format string

// The trigger formats.
const (
	FormatAvro Format = "avro" // Confluent-framed Avro
	FormatJSON Format = "json" // one JSON object
)

// TriggerSchemaName names the trigger contract and its version, for the
// winback.schema header of trigger records.
const TriggerSchemaName = "WinbackTrigger/v1"

// The symbols of the WinbackTrigger enums, in schema order: a symbol's
// index is its Avro encoding. A test checks them against the .avsc.
var (
	kindSymbols   = []event.TriggerKind{event.TriggerWinback, event.TriggerRecovered}
	reasonSymbols = event.Reasons
	tierSymbols   = []event.Tier{event.TierHigh, event.TierMedium, event.TierLow}
	actionSymbols = []event.Action{event.ActionWinbackOffer, event.ActionServiceRecovery,
		event.ActionReengagement, event.ActionChannelSwitch, event.ActionLoyaltyReward}
	treatmentSymbols = []event.Treatment{event.TreatmentTreated, event.TreatmentControl}
)

// ErrInvalidTrigger is wrapped by the errors of Encode and DecodeTrigger
// for a trigger that does not fit the WinbackTrigger contract.
var ErrInvalidTrigger = errors.New("invalid trigger")

// TriggerEncoder encodes triggers in one Format. It is safe for concurrent
// use.
type TriggerEncoder struct {
	format   Format
	schemaID int
}

// NewTriggerEncoder returns an encoder for the trigger topic. For FormatAvro
// it registers the WinbackTrigger schema under <topic>-value with client
// (registering an identical schema again returns the same id); for
// FormatJSON client may be nil.
func NewTriggerEncoder(ctx context.Context, client *sr.Client, topic string, format Format) (*TriggerEncoder, error) {
	switch format {
	case FormatJSON:
		return &TriggerEncoder{format: format}, nil
	case FormatAvro:
		if client == nil {
			return nil, errors.New("codec: avro triggers need a schema registry client")
		}
		subject := topic + "-value"
		ss, err := client.CreateSchema(ctx, subject, sr.Schema{
			Schema: schemas.Avro(schemas.AvroWinbackTrigger),
			Type:   sr.TypeAvro,
		})
		if err != nil {
			return nil, fmt.Errorf("codec: registering WinbackTrigger under %s: %w", subject, err)
		}
		return &TriggerEncoder{format: format, schemaID: ss.ID}, nil
	}
	return nil, fmt.Errorf("codec: unknown trigger format %q; want avro or json", format)
}

// Format returns the encoder's format.
func (e *TriggerEncoder) Format() Format { return e.format }

// SchemaID returns the registry id of the WinbackTrigger schema; 0 for JSON.
func (e *TriggerEncoder) SchemaID() int { return e.schemaID }

// Encode appends t to dst in the encoder's format. It fails, wrapping
// ErrInvalidTrigger, if t does not fit the contract: an empty id, an enum
// value outside the schema, a risk score that is not finite. Evidence
// entries that are not finite numbers are left out (JSON cannot carry them),
// in both formats alike.
func (e *TriggerEncoder) Encode(dst []byte, t *event.Trigger) ([]byte, error) {
	idx, err := indexes(t)
	if err != nil {
		return dst, err
	}
	keys := evidenceKeys(t.Evidence)
	if e.format == FormatJSON {
		return appendTriggerJSON(dst, t, keys), nil
	}
	return appendTriggerAvro(dst, e.schemaID, t, &idx, keys), nil
}

// triggerIndexes are the Avro enum indexes of a trigger's symbols.
type triggerIndexes struct {
	kind, primary, tier, action, treatment int
	reasons                                []int
}

func indexes(t *event.Trigger) (triggerIndexes, error) {
	var idx triggerIndexes
	bad := func(field string, v any) error {
		return fmt.Errorf("codec: trigger %q: %s %q is not in the contract: %w", t.TriggerID, field, v, ErrInvalidTrigger)
	}
	if t.TriggerID == "" || t.CustomerID == "" {
		return idx, fmt.Errorf("codec: trigger %q of customer %q: empty id: %w", t.TriggerID, t.CustomerID, ErrInvalidTrigger)
	}
	if !utf8.ValidString(t.TriggerID) || !utf8.ValidString(t.CustomerID) || !utf8.ValidString(t.OriginalTriggerID) {
		return idx, fmt.Errorf("codec: trigger %q: an id is not UTF-8: %w", t.TriggerID, ErrInvalidTrigger)
	}
	if math.IsNaN(t.RiskScore) || math.IsInf(t.RiskScore, 0) {
		return idx, fmt.Errorf("codec: trigger %q: risk_score %v is not finite: %w", t.TriggerID, t.RiskScore, ErrInvalidTrigger)
	}
	if t.PLapse != nil && !(*t.PLapse >= 0 && *t.PLapse <= 1) {
		return idx, fmt.Errorf("codec: trigger %q: p_lapse %v is not in [0, 1]: %w", t.TriggerID, *t.PLapse, ErrInvalidTrigger)
	}
	if idx.kind = slices.Index(kindSymbols, t.Kind); idx.kind < 0 {
		return idx, bad("kind", t.Kind)
	}
	if idx.primary = slices.Index(reasonSymbols, t.PrimaryReason); idx.primary < 0 {
		return idx, bad("primary_reason", t.PrimaryReason)
	}
	if idx.tier = slices.Index(tierSymbols, t.ValueTier); idx.tier < 0 {
		return idx, bad("value_tier", t.ValueTier)
	}
	if idx.action = slices.Index(actionSymbols, t.RecommendedAction); idx.action < 0 {
		return idx, bad("recommended_action", t.RecommendedAction)
	}
	if idx.treatment = slices.Index(treatmentSymbols, t.Arm()); idx.treatment < 0 {
		return idx, bad("treatment", t.Treatment)
	}
	idx.reasons = make([]int, len(t.Reasons))
	for i, r := range t.Reasons {
		if idx.reasons[i] = slices.Index(reasonSymbols, r); idx.reasons[i] < 0 {
			return idx, bad("reasons", r)
		}
	}
	for k := range t.Evidence {
		if !utf8.ValidString(k) {
			return idx, fmt.Errorf("codec: trigger %q: evidence name %q is not UTF-8: %w", t.TriggerID, k, ErrInvalidTrigger)
		}
	}
	return idx, nil
}

// evidenceKeys returns the names of the finite evidence values, sorted, so
// that a trigger always encodes to the same bytes.
func evidenceKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k, v := range m {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func appendTriggerAvro(dst []byte, id int, t *event.Trigger, idx *triggerIndexes, keys []string) []byte {
	dst = append(dst, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(id))
	dst = AppendAvroString(dst, t.TriggerID)
	dst = AppendAvroString(dst, t.CustomerID)
	dst = AppendAvroLong(dst, int64(idx.kind))
	if len(idx.reasons) > 0 {
		dst = AppendAvroLong(dst, int64(len(idx.reasons)))
		for _, r := range idx.reasons {
			dst = AppendAvroLong(dst, int64(r))
		}
	}
	dst = AppendAvroLong(dst, 0)
	dst = AppendAvroLong(dst, int64(idx.primary))
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(t.RiskScore))
	dst = AppendAvroLong(dst, int64(idx.tier))
	dst = AppendAvroLong(dst, int64(t.Priority))
	dst = AppendAvroLong(dst, int64(idx.action))
	if len(keys) > 0 {
		dst = AppendAvroLong(dst, int64(len(keys)))
		for _, k := range keys {
			dst = AppendAvroString(dst, k)
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(t.Evidence[k]))
		}
	}
	dst = AppendAvroLong(dst, 0)
	if t.OriginalTriggerID == "" {
		dst = AppendAvroLong(dst, 0)
	} else {
		dst = AppendAvroString(AppendAvroLong(dst, 1), t.OriginalTriggerID)
	}
	dst = AppendAvroLong(dst, t.AsOf)
	dst = AppendAvroLong(dst, t.EmittedAt)
	if t.PLapse == nil {
		dst = AppendAvroLong(dst, 0)
	} else {
		dst = AppendAvroLong(dst, 1)
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(*t.PLapse))
	}
	// treatment: always written (union branch 1), TREATED when unset.
	return AppendAvroLong(AppendAvroLong(dst, 1), int64(idx.treatment))
}

func appendTriggerJSON(dst []byte, t *event.Trigger, keys []string) []byte {
	dst = append(dst, `{"trigger_id":`...)
	dst = AppendJSONString(dst, t.TriggerID)
	dst = append(dst, `,"customer_id":`...)
	dst = AppendJSONString(dst, t.CustomerID)
	dst = append(dst, `,"kind":`...)
	dst = AppendJSONString(dst, string(t.Kind))
	dst = append(dst, `,"reasons":[`...)
	for i, r := range t.Reasons {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSONString(dst, string(r))
	}
	dst = append(dst, `],"primary_reason":`...)
	dst = AppendJSONString(dst, string(t.PrimaryReason))
	dst = append(dst, `,"risk_score":`...)
	dst = strconv.AppendFloat(dst, t.RiskScore, 'g', -1, 64)
	dst = append(dst, `,"value_tier":`...)
	dst = AppendJSONString(dst, string(t.ValueTier))
	dst = append(dst, `,"priority":`...)
	dst = strconv.AppendInt(dst, int64(t.Priority), 10)
	dst = append(dst, `,"recommended_action":`...)
	dst = AppendJSONString(dst, string(t.RecommendedAction))
	dst = append(dst, `,"evidence":{`...)
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = AppendJSONString(dst, k)
		dst = append(dst, ':')
		dst = strconv.AppendFloat(dst, t.Evidence[k], 'g', -1, 64)
	}
	dst = append(dst, `},"original_trigger_id":`...)
	if t.OriginalTriggerID == "" {
		dst = append(dst, "null"...)
	} else {
		dst = AppendJSONString(dst, t.OriginalTriggerID)
	}
	dst = append(dst, `,"as_of":`...)
	dst = strconv.AppendInt(dst, t.AsOf, 10)
	dst = append(dst, `,"emitted_at":`...)
	dst = strconv.AppendInt(dst, t.EmittedAt, 10)
	dst = append(dst, `,"p_lapse":`...)
	if t.PLapse == nil {
		dst = append(dst, "null"...)
	} else {
		dst = strconv.AppendFloat(dst, *t.PLapse, 'g', -1, 64)
	}
	dst = append(dst, `,"treatment":`...)
	dst = AppendJSONString(dst, string(t.Arm()))
	return append(dst, '}')
}
