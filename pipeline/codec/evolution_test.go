package codec

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/linkedin/goavro/v2"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/winback/winback/internal/srtest"
	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/schemas"
)

type avroField struct {
	Name, Type, Default string // Type and Default as JSON; Default "" if absent
}

func fieldsOf(t *testing.T, text string) []avroField {
	t.Helper()
	var rec struct {
		Fields []map[string]json.RawMessage `json:"fields"`
	}
	if err := json.Unmarshal([]byte(text), &rec); err != nil {
		t.Fatal(err)
	}
	var out []avroField
	for _, f := range rec.Fields {
		var name string
		if err := json.Unmarshal(f["name"], &name); err != nil {
			t.Fatal(err)
		}
		out = append(out, avroField{Name: name, Type: string(f["type"]), Default: string(f["default"])})
	}
	return out
}

// TestTriggerSchemaEvolution: the trigger schema only ever gains fields at
// the end, each optional with default null, over the first published
// schema (testdata/winback_trigger.v1.avsc). Readers on the new schema then
// read old records (the default fills in), and readers on the old one skip
// the new fields. The registry fake does not check compatibility, so this
// test does.
func TestTriggerSchemaEvolution(t *testing.T) {
	old, err := os.ReadFile("testdata/winback_trigger.v1.avsc")
	if err != nil {
		t.Fatal(err)
	}
	of, nf := fieldsOf(t, string(old)), fieldsOf(t, schemas.Avro(schemas.AvroWinbackTrigger))
	if len(nf) <= len(of) {
		t.Fatalf("new schema has %d fields, v1 %d", len(nf), len(of))
	}
	for i, f := range of {
		if nf[i].Name != f.Name || nf[i].Type != f.Type {
			t.Fatalf("field %d changed: %s %s → %s %s", i, f.Name, f.Type, nf[i].Name, nf[i].Type)
		}
	}
	for _, f := range nf[len(of):] {
		var union []any
		if f.Default != "null" || json.Unmarshal([]byte(f.Type), &union) != nil || len(union) < 2 || union[0] != "null" {
			t.Errorf("added field %s is not an optional union with default null: %s", f.Name, f.Type)
		}
	}

	// A record written with the v1 schema decodes, without p_lapse and
	// TREATED (the treatment's documented default).
	codec, err := goavro.NewCodec(string(old))
	if err != nil {
		t.Fatal(err)
	}
	_, cl := srtest.New(t)
	ctx := context.Background()
	ss, err := cl.CreateSchema(ctx, "winback-triggers-value", sr.Schema{Schema: string(old), Type: sr.TypeAvro})
	if err != nil {
		t.Fatal(err)
	}
	want := winbackTrigger()
	want.PLapse = nil
	native := map[string]any{
		"trigger_id": want.TriggerID, "customer_id": want.CustomerID, "kind": string(want.Kind),
		"reasons":        []any{"PURCHASE_LAPSE", "LOW_SATISFACTION"},
		"primary_reason": "PURCHASE_LAPSE", "risk_score": want.RiskScore, "value_tier": "HIGH",
		"priority": want.Priority, "recommended_action": "SERVICE_RECOVERY",
		"evidence":            map[string]any{"days_since_last_order": 61.5, "usual_interval_days": 21.0, "last_csat": 2.0, "clv": 1234.56},
		"original_trigger_id": nil, "as_of": want.AsOf, "emitted_at": want.EmittedAt,
	}
	header := []byte{0, 0, 0, 0, byte(ss.ID)}
	val, err := codec.BinaryFromNative(header, native)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeTrigger(ctx, decode.SchemaRegistry(cl), val)
	if err != nil {
		t.Fatal(err)
	}
	if !equalTriggers(got, want) || got.PLapse != nil || got.Treatment != event.TreatmentTreated {
		t.Fatalf("v1 record:\n got %+v\nwant %+v", got, want)
	}
}

// TestTriggerTreatmentJSON: a JSON trigger without treatment, or with
// null, reads TREATED (written before the field existed); CONTROL reads
// as such; a symbol outside the contract is rejected.
func TestTriggerTreatmentJSON(t *testing.T) {
	golden, err := os.ReadFile("testdata/trigger.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(golden, &m); err != nil {
		t.Fatal(err)
	}
	f := func(treatment any, present bool, want event.Treatment, ok bool) {
		t.Helper()
		c := map[string]any{}
		for k, v := range m {
			c[k] = v
		}
		delete(c, "treatment")
		if present {
			c["treatment"] = treatment
		}
		b, _ := json.Marshal(c)
		got, err := DecodeTrigger(context.Background(), nil, b)
		if (err == nil) != ok || (ok && got.Treatment != want) {
			t.Errorf("treatment %v (present %v): got %q, %v; want %q, ok %v", treatment, present, got.Treatment, err, want, ok)
		}
	}
	f(nil, false, event.TreatmentTreated, true)
	f(nil, true, event.TreatmentTreated, true)
	f("CONTROL", true, event.TreatmentControl, true)
	f("TREATED", true, event.TreatmentTreated, true)
	f("PLACEBO", true, "", false)
}
