package codec

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/linkedin/goavro/v2"

	"github.com/winback/winback/pipeline/event"
)

// Registry looks up a writer schema by its id; decode.SchemaRegistry
// adapts a franz-go schema-registry client to it.
type Registry interface {
	SchemaByID(ctx context.Context, id int) (string, error)
}

// DecodeTrigger reads a trigger record value in either format: Avro if it
// starts with the Confluent magic byte 0 (the writer schema is looked up in
// reg, which may be nil for JSON), JSON if it is an object. Fields are
// matched by name, so fields added to WinbackTrigger later are ignored. It
// looks the schema up on every call: it is meant for tests and as an example
// for consumers, not for a hot path.
func DecodeTrigger(ctx context.Context, reg Registry, value []byte) (event.Trigger, error) {
	if len(value) > 0 && value[0] == 0 {
		return decodeTriggerAvro(ctx, reg, value)
	}
	if v := bytes.TrimLeft(value, " \t\r\n"); len(v) > 0 && v[0] == '{' {
		return decodeTriggerJSON(value)
	}
	return event.Trigger{}, fmt.Errorf("codec: trigger value is neither Avro nor a JSON object: %w", ErrInvalidTrigger)
}

func decodeTriggerAvro(ctx context.Context, reg Registry, value []byte) (event.Trigger, error) {
	var t event.Trigger
	if len(value) < 5 {
		return t, fmt.Errorf("codec: %d-byte trigger value is shorter than the Confluent header: %w", len(value), ErrInvalidTrigger)
	}
	if reg == nil {
		return t, errors.New("codec: an Avro trigger needs a schema registry")
	}
	id := int(binary.BigEndian.Uint32(value[1:5]))
	text, err := reg.SchemaByID(ctx, id)
	if err != nil {
		return t, fmt.Errorf("codec: trigger schema %d: %w", id, err)
	}
	codec, err := goavro.NewCodec(text)
	if err != nil {
		return t, fmt.Errorf("codec: trigger schema %d: %w", id, err)
	}
	native, rest, err := codec.NativeFromBinary(value[5:])
	if err != nil {
		return t, fmt.Errorf("codec: trigger: %v: %w", err, ErrInvalidTrigger)
	}
	if len(rest) != 0 {
		return t, fmt.Errorf("codec: trigger: %d bytes after the record: %w", len(rest), ErrInvalidTrigger)
	}
	m, ok := native.(map[string]any)
	if !ok {
		return t, fmt.Errorf("codec: trigger schema %d is not a record: %w", id, ErrInvalidTrigger)
	}
	r := nativeReader{m: m}
	t.TriggerID = r.str("trigger_id")
	t.CustomerID = r.str("customer_id")
	t.Kind = event.TriggerKind(r.str("kind"))
	for _, v := range r.list("reasons") {
		s, _ := v.(string)
		t.Reasons = append(t.Reasons, event.Reason(s))
	}
	t.PrimaryReason = event.Reason(r.str("primary_reason"))
	t.RiskScore = r.float("risk_score")
	t.ValueTier = event.Tier(r.str("value_tier"))
	t.Priority = int32(r.int("priority"))
	t.RecommendedAction = event.Action(r.str("recommended_action"))
	if ev, ok := m["evidence"].(map[string]any); ok {
		t.Evidence = make(map[string]float64, len(ev))
		for k, v := range ev {
			f, _ := v.(float64)
			t.Evidence[k] = f
		}
	} else {
		r.missing = append(r.missing, "evidence")
	}
	if u, ok := m["original_trigger_id"].(map[string]any); ok {
		t.OriginalTriggerID, _ = u["string"].(string)
	}
	t.AsOf = r.millis("as_of")
	t.EmittedAt = r.millis("emitted_at")
	if u, ok := m["p_lapse"].(map[string]any); ok { // absent in older writer schemas
		if f, ok := u["double"].(float64); ok {
			t.PLapse = &f
		}
	}
	t.Treatment = event.TreatmentTreated // null, or absent in older writer schemas
	if u, ok := m["treatment"].(map[string]any); ok {
		if s, ok := u["io.winback.Treatment"].(string); ok {
			t.Treatment = event.Treatment(s)
		}
	}
	if len(r.missing) > 0 {
		return t, fmt.Errorf("codec: trigger lacks or mistypes %v: %w", r.missing, ErrInvalidTrigger)
	}
	return t, validTrigger(&t)
}

// nativeReader reads goavro's native record map, noting absent fields.
type nativeReader struct {
	m       map[string]any
	missing []string
}

func (r *nativeReader) get(name string) any {
	v, ok := r.m[name]
	if !ok {
		r.missing = append(r.missing, name)
	}
	return v
}

func (r *nativeReader) str(name string) string {
	s, ok := r.get(name).(string)
	if !ok {
		r.missing = append(r.missing, name)
	}
	return s
}

func (r *nativeReader) list(name string) []any {
	l, ok := r.get(name).([]any)
	if !ok {
		r.missing = append(r.missing, name)
	}
	return l
}

func (r *nativeReader) float(name string) float64 {
	switch v := r.get(name).(type) {
	case float64:
		return v
	case float32:
		return float64(v)
	}
	r.missing = append(r.missing, name)
	return 0
}

func (r *nativeReader) int(name string) int64 {
	switch v := r.get(name).(type) {
	case int32:
		return int64(v)
	case int64:
		return v
	}
	r.missing = append(r.missing, name)
	return 0
}

func (r *nativeReader) millis(name string) int64 {
	switch v := r.get(name).(type) {
	case time.Time:
		return v.UnixMilli()
	case int64:
		return v
	}
	r.missing = append(r.missing, name)
	return 0
}

// triggerJSON is the JSON form; pointers tell absent from zero.
type triggerJSON struct {
	TriggerID         *string            `json:"trigger_id"`
	CustomerID        *string            `json:"customer_id"`
	Kind              *string            `json:"kind"`
	Reasons           []string           `json:"reasons"`
	PrimaryReason     *string            `json:"primary_reason"`
	RiskScore         *float64           `json:"risk_score"`
	ValueTier         *string            `json:"value_tier"`
	Priority          *int32             `json:"priority"`
	RecommendedAction *string            `json:"recommended_action"`
	Evidence          map[string]float64 `json:"evidence"`
	OriginalTriggerID *string            `json:"original_trigger_id"`
	AsOf              *int64             `json:"as_of"`
	EmittedAt         *int64             `json:"emitted_at"`
	PLapse            *float64           `json:"p_lapse"`
	Treatment         *string            `json:"treatment"`
}

func decodeTriggerJSON(value []byte) (event.Trigger, error) {
	var j triggerJSON
	var t event.Trigger
	if err := json.Unmarshal(value, &j); err != nil {
		return t, fmt.Errorf("codec: trigger JSON: %v: %w", err, ErrInvalidTrigger)
	}
	var missing []string
	str := func(name string, p *string) string {
		if p == nil {
			missing = append(missing, name)
			return ""
		}
		return *p
	}
	t.TriggerID = str("trigger_id", j.TriggerID)
	t.CustomerID = str("customer_id", j.CustomerID)
	t.Kind = event.TriggerKind(str("kind", j.Kind))
	if j.Reasons == nil {
		missing = append(missing, "reasons")
	}
	for _, r := range j.Reasons {
		t.Reasons = append(t.Reasons, event.Reason(r))
	}
	t.PrimaryReason = event.Reason(str("primary_reason", j.PrimaryReason))
	if j.RiskScore != nil {
		t.RiskScore = *j.RiskScore
	} else {
		missing = append(missing, "risk_score")
	}
	t.ValueTier = event.Tier(str("value_tier", j.ValueTier))
	if j.Priority != nil {
		t.Priority = *j.Priority
	} else {
		missing = append(missing, "priority")
	}
	t.RecommendedAction = event.Action(str("recommended_action", j.RecommendedAction))
	if j.Evidence == nil {
		missing = append(missing, "evidence")
	}
	t.Evidence = j.Evidence
	if j.OriginalTriggerID != nil {
		t.OriginalTriggerID = *j.OriginalTriggerID
	}
	if j.AsOf != nil {
		t.AsOf = *j.AsOf
	} else {
		missing = append(missing, "as_of")
	}
	if j.EmittedAt != nil {
		t.EmittedAt = *j.EmittedAt
	} else {
		missing = append(missing, "emitted_at")
	}
	t.PLapse = j.PLapse
	t.Treatment = event.TreatmentTreated // null or absent: written before the field existed
	if j.Treatment != nil {
		t.Treatment = event.Treatment(*j.Treatment)
	}
	if len(missing) > 0 {
		return t, fmt.Errorf("codec: trigger lacks %v: %w", missing, ErrInvalidTrigger)
	}
	return t, validTrigger(&t)
}

// validTrigger checks the symbols of a decoded trigger.
func validTrigger(t *event.Trigger) error {
	ok := slices.Contains(kindSymbols, t.Kind) &&
		slices.Contains(reasonSymbols, t.PrimaryReason) &&
		slices.Contains(tierSymbols, t.ValueTier) &&
		slices.Contains(actionSymbols, t.RecommendedAction) &&
		slices.Contains(treatmentSymbols, t.Treatment)
	for _, r := range t.Reasons {
		ok = ok && slices.Contains(reasonSymbols, r)
	}
	if !ok || t.TriggerID == "" || t.CustomerID == "" {
		return fmt.Errorf("codec: trigger %q has an empty id or a symbol outside the contract: %w", t.TriggerID, ErrInvalidTrigger)
	}
	return nil
}
