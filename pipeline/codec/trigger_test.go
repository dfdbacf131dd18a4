package codec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"maps"
	"math"
	"os"
	"slices"
	"testing"

	"github.com/linkedin/goavro/v2"
	"go.uber.org/goleak"

	"github.com/winback/winback/internal/srtest"
	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/event"
	"github.com/winback/winback/schemas"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func winbackTrigger() event.Trigger {
	return event.Trigger{
		TriggerID:         "wb-c-1-PURCHASE_LAPSE-3",
		CustomerID:        "c-1",
		Kind:              event.TriggerWinback,
		Reasons:           []event.Reason{event.ReasonPurchaseLapse, event.ReasonLowSatisfaction},
		PrimaryReason:     event.ReasonPurchaseLapse,
		RiskScore:         0.8125,
		ValueTier:         event.TierHigh,
		Priority:          87,
		RecommendedAction: event.ActionServiceRecovery,
		Evidence: map[string]float64{
			"days_since_last_order": 61.5,
			"usual_interval_days":   21,
			"last_csat":             2,
			"clv":                   1234.56,
		},
		AsOf:      1714564800000,
		EmittedAt: 1714564801234,
		PLapse:    ptrF(0.6875),
	}
}

func ptrF(v float64) *float64 { return &v }

func recoveredTrigger() event.Trigger {
	return event.Trigger{
		TriggerID:         "rc-c-2-SPEND_DECLINE-1",
		CustomerID:        "kunde-ø-\"2\"",
		Kind:              event.TriggerRecovered,
		Reasons:           []event.Reason{event.ReasonSpendDecline},
		PrimaryReason:     event.ReasonSpendDecline,
		RiskScore:         0,
		ValueTier:         event.TierLow,
		Priority:          1,
		RecommendedAction: event.ActionLoyaltyReward,
		Evidence:          map[string]float64{},
		OriginalTriggerID: "wb-c-2-SPEND_DECLINE-1",
		AsOf:              1714564800000,
		EmittedAt:         1714564900000,
		Treatment:         event.TreatmentControl, // a control trigger's follow-up
	}
}

// bare has no reasons and no evidence at all.
func bareTrigger() event.Trigger {
	t := winbackTrigger()
	t.Reasons, t.Evidence = nil, nil
	return t
}

// equalTriggers compares triggers, taking nil and empty alike.
func equalTriggers(a, b event.Trigger) bool {
	if len(a.Reasons) == 0 && len(b.Reasons) == 0 {
		a.Reasons, b.Reasons = nil, nil
	}
	if !slices.Equal(a.Reasons, b.Reasons) || !maps.Equal(a.Evidence, b.Evidence) && !(len(a.Evidence) == 0 && len(b.Evidence) == 0) {
		return false
	}
	a.Reasons, b.Reasons, a.Evidence, b.Evidence = nil, nil, nil, nil
	return equalFlat(a, b)
}

func equalFlat(a, b event.Trigger) bool {
	return a.TriggerID == b.TriggerID && a.CustomerID == b.CustomerID && a.Kind == b.Kind &&
		a.PrimaryReason == b.PrimaryReason && a.RiskScore == b.RiskScore && a.ValueTier == b.ValueTier &&
		a.Priority == b.Priority && a.RecommendedAction == b.RecommendedAction &&
		a.OriginalTriggerID == b.OriginalTriggerID && a.AsOf == b.AsOf && a.EmittedAt == b.EmittedAt &&
		(a.PLapse == nil) == (b.PLapse == nil) && (a.PLapse == nil || *a.PLapse == *b.PLapse) &&
		a.Arm() == b.Arm()
}

func TestTriggerRoundTrip(t *testing.T) {
	fake, cl := srtest.New(t)
	ctx := context.Background()
	avro, err := NewTriggerEncoder(ctx, cl, "winback-triggers", FormatAvro)
	if err != nil {
		t.Fatal(err)
	}
	if !fake.SubjectExists("winback-triggers-value") || avro.SchemaID() == 0 {
		t.Fatalf("schema not registered under winback-triggers-value (id %d)", avro.SchemaID())
	}
	again, err := NewTriggerEncoder(ctx, cl, "winback-triggers", FormatAvro)
	if err != nil || again.SchemaID() != avro.SchemaID() {
		t.Fatalf("registering again: id %d, %v; want id %d", again.SchemaID(), err, avro.SchemaID())
	}
	js, err := NewTriggerEncoder(ctx, nil, "winback-triggers", FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	reg := decode.SchemaRegistry(cl)
	for _, want := range []event.Trigger{winbackTrigger(), recoveredTrigger(), bareTrigger()} {
		for _, enc := range []*TriggerEncoder{avro, js} {
			val, err := enc.Encode([]byte("prefix"), &want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(val, []byte("prefix")) {
				t.Fatal("Encode does not append to dst")
			}
			got, err := DecodeTrigger(ctx, reg, val[len("prefix"):])
			if err != nil {
				t.Fatalf("%s: %v", enc.Format(), err)
			}
			if !equalTriggers(got, want) {
				t.Errorf("%s:\n got %+v\nwant %+v", enc.Format(), got, want)
			}
		}
	}
}

// TestTriggerAvroMatchesGoavro checks the hand-written encoding byte for
// byte against goavro's, for a trigger whose map order cannot differ.
func TestTriggerAvroMatchesGoavro(t *testing.T) {
	codec, err := goavro.NewCodec(schemas.Avro(schemas.AvroWinbackTrigger))
	if err != nil {
		t.Fatal(err)
	}
	tr := winbackTrigger()
	tr.Evidence = map[string]float64{"days_since_last_order": 61.5}
	tr.OriginalTriggerID = "wb-0"
	tr.Treatment = event.TreatmentControl
	native := map[string]any{
		"trigger_id": tr.TriggerID, "customer_id": tr.CustomerID, "kind": string(tr.Kind),
		"reasons":        []any{"PURCHASE_LAPSE", "LOW_SATISFACTION"},
		"primary_reason": "PURCHASE_LAPSE", "risk_score": tr.RiskScore, "value_tier": "HIGH",
		"priority": tr.Priority, "recommended_action": "SERVICE_RECOVERY",
		"evidence":            map[string]any{"days_since_last_order": 61.5},
		"original_trigger_id": goavro.Union("string", "wb-0"),
		"as_of":               tr.AsOf, "emitted_at": tr.EmittedAt,
		"p_lapse":   goavro.Union("double", 0.6875),
		"treatment": goavro.Union("io.winback.Treatment", "CONTROL"),
	}
	want, err := codec.BinaryFromNative([]byte{0, 0, 0, 0, 7}, native)
	if err != nil {
		t.Fatal(err)
	}
	enc := &TriggerEncoder{format: FormatAvro, schemaID: 7}
	got, err := enc.Encode(nil, &tr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("\n got %x\nwant %x", got, want)
	}
}

func TestTriggerJSONGolden(t *testing.T) {
	enc, err := NewTriggerEncoder(context.Background(), nil, "t", FormatJSON)
	if err != nil {
		t.Fatal(err)
	}
	tr := winbackTrigger()
	got, err := enc.Encode(nil, &tr)
	if err != nil {
		t.Fatal(err)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, got, "", "  "); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, got)
	}
	indented.WriteByte('\n')
	const golden = "testdata/trigger.golden.json"
	if *update {
		if err := os.WriteFile(golden, indented.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(indented.Bytes(), want) {
		t.Errorf("JSON differs from %s (run with -update if intended):\n%s", golden, indented.Bytes())
	}
	// Encoding again gives the same bytes: evidence is sorted.
	for range 10 {
		if again, _ := enc.Encode(nil, &tr); !bytes.Equal(again, got) {
			t.Fatalf("encoding is not deterministic:\n%s\n%s", again, got)
		}
	}
	// The JSON names are the Avro schema's (their order is in the golden).
	var obj struct {
		Fields []struct{ Name string } `json:"fields"`
	}
	if err := json.Unmarshal([]byte(schemas.Avro(schemas.AvroWinbackTrigger)), &obj); err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(got, &m); err != nil {
		t.Fatal(err)
	}
	var schemaNames []string
	for _, f := range obj.Fields {
		schemaNames = append(schemaNames, f.Name)
	}
	if names := slices.Sorted(maps.Keys(m)); !slices.Equal(names, slices.Sorted(slices.Values(schemaNames))) {
		t.Errorf("JSON names %v, schema names %v", names, schemaNames)
	}
}

func TestEncodeRejectsBadTriggers(t *testing.T) {
	for _, format := range []Format{FormatAvro, FormatJSON} {
		enc := &TriggerEncoder{format: format, schemaID: 1}
		for name, mod := range map[string]func(*event.Trigger){
			"empty trigger id":   func(t *event.Trigger) { t.TriggerID = "" },
			"empty customer id":  func(t *event.Trigger) { t.CustomerID = "" },
			"kind":               func(t *event.Trigger) { t.Kind = "LAPSED" },
			"primary reason":     func(t *event.Trigger) { t.PrimaryReason = "" },
			"reason":             func(t *event.Trigger) { t.Reasons = append(t.Reasons, "BORED") },
			"tier":               func(t *event.Trigger) { t.ValueTier = "GOLD" },
			"action":             func(t *event.Trigger) { t.RecommendedAction = "CALL" },
			"NaN risk":           func(t *event.Trigger) { t.RiskScore = math.NaN() },
			"Inf risk":           func(t *event.Trigger) { t.RiskScore = math.Inf(1) },
			"p_lapse above 1":    func(t *event.Trigger) { t.PLapse = ptrF(1.5) },
			"NaN p_lapse":        func(t *event.Trigger) { t.PLapse = ptrF(math.NaN()) },
			"invalid UTF-8 id":   func(t *event.Trigger) { t.CustomerID = "c-\xff" },
			"invalid UTF-8 name": func(t *event.Trigger) { t.Evidence["\xff"] = 1 },
		} {
			tr := winbackTrigger()
			mod(&tr)
			if _, err := enc.Encode(nil, &tr); !errors.Is(err, ErrInvalidTrigger) {
				t.Errorf("%s %s: got %v, want ErrInvalidTrigger", format, name, err)
			}
		}
	}
}

func TestEncodeDropsNonFiniteEvidence(t *testing.T) {
	_, cl := srtest.New(t)
	ctx := context.Background()
	avro, err := NewTriggerEncoder(ctx, cl, "t", FormatAvro)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := NewTriggerEncoder(ctx, nil, "t", FormatJSON)
	tr := winbackTrigger()
	tr.Evidence["nan"] = math.NaN()
	tr.Evidence["inf"] = math.Inf(-1)
	want := winbackTrigger()
	for _, enc := range []*TriggerEncoder{avro, js} {
		val, err := enc.Encode(nil, &tr)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeTrigger(ctx, decode.SchemaRegistry(cl), val)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got.Evidence, want.Evidence) {
			t.Errorf("%s: evidence %v, want %v", enc.Format(), got.Evidence, want.Evidence)
		}
	}
}

func TestNewTriggerEncoderErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := NewTriggerEncoder(ctx, nil, "t", "protobuf"); err == nil {
		t.Error("accepted format protobuf")
	}
	if _, err := NewTriggerEncoder(ctx, nil, "t", FormatAvro); err == nil {
		t.Error("accepted avro without a registry")
	}
	fake, cl := srtest.New(t)
	fake.Close()
	if _, err := NewTriggerEncoder(ctx, cl, "t", FormatAvro); err == nil {
		t.Error("no error with the registry down")
	}
}

func TestDecodeTriggerRejects(t *testing.T) {
	ctx := context.Background()
	js := &TriggerEncoder{format: FormatJSON}
	tr := winbackTrigger()
	good, _ := js.Encode(nil, &tr)
	for name, val := range map[string]string{
		"empty":          ``,
		"array":          `[]`,
		"syntax":         string(good[:20]),
		"missing kind":   string(bytes.Replace(good, []byte(`"kind":"WINBACK",`), nil, 1)),
		"unknown tier":   string(bytes.Replace(good, []byte(`"HIGH"`), []byte(`"GOLD"`), 1)),
		"risk as string": string(bytes.Replace(good, []byte(`0.8125`), []byte(`"0.8125"`), 1)),
		"short avro":     "\x00\x00\x01",
	} {
		if _, err := DecodeTrigger(ctx, nil, []byte(val)); !errors.Is(err, ErrInvalidTrigger) {
			t.Errorf("%s: got %v, want ErrInvalidTrigger", name, err)
		}
	}
	if _, err := DecodeTrigger(ctx, nil, []byte("\x00\x00\x00\x00\x01\x02")); err == nil {
		t.Error("decoded Avro without a registry")
	}
}

// TestSymbolsMatchSchema checks the enum tables against the .avsc.
func TestSymbolsMatchSchema(t *testing.T) {
	var rec struct {
		Fields []struct {
			Name string          `json:"name"`
			Type json.RawMessage `json:"type"`
		} `json:"fields"`
	}
	if err := json.Unmarshal([]byte(schemas.Avro(schemas.AvroWinbackTrigger)), &rec); err != nil {
		t.Fatal(err)
	}
	symbols := map[string][]string{}
	for _, f := range rec.Fields {
		var typ struct {
			Symbols []string `json:"symbols"`
			Items   struct {
				Symbols []string `json:"symbols"`
			} `json:"items"`
		}
		_ = json.Unmarshal(f.Type, &typ)
		symbols[f.Name] = append(typ.Symbols, typ.Items.Symbols...)
	}
	check := func(field string, got []string) {
		if !slices.Equal(got, symbols[field]) {
			t.Errorf("%s: code has %v, schema %v", field, got, symbols[field])
		}
	}
	check("kind", strs(kindSymbols))
	check("reasons", strs(reasonSymbols))
	check("value_tier", strs(tierSymbols))
	check("recommended_action", strs(actionSymbols))
}

func strs[T ~string](s []T) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = string(v)
	}
	return out
}

func FuzzDecodeTrigger(f *testing.F) {
	js := &TriggerEncoder{format: FormatJSON}
	for _, tr := range []event.Trigger{winbackTrigger(), recoveredTrigger(), bareTrigger()} {
		v, err := js.Encode(nil, &tr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, value []byte) {
		tr, err := DecodeTrigger(context.Background(), nil, value)
		if err != nil {
			return
		}
		again, err := js.Encode(nil, &tr)
		if err != nil {
			// Encode is stricter only about non-finite numbers, which JSON
			// cannot hold, and invalid UTF-8, which encoding/json replaces.
			t.Fatalf("decoded %+v from %q but cannot encode it: %v", tr, value, err)
		}
		tr2, err := DecodeTrigger(context.Background(), nil, again)
		if err != nil || !equalTriggers(tr, tr2) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, tr, tr2)
		}
	})
}
