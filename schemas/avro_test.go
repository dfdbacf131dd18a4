package schemas

import (
	"encoding/json"
	"io/fs"
	"strings"
	"testing"

	"github.com/linkedin/goavro/v2"
)

func TestAvroSchemasParse(t *testing.T) {
	wantRecord := map[string]string{
		AvroOrder:          "io.winback.Order",
		AvroEmailEvent:     "io.winback.EmailEvent",
		AvroSupportEvent:   "io.winback.SupportEvent",
		AvroWinbackTrigger: "io.winback.WinbackTrigger",
	}
	for _, name := range AvroNames() {
		text := Avro(name)
		codec, err := goavro.NewCodec(text)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if tn := codec.TypeName(); tn.String() != wantRecord[name] {
			t.Errorf("%s: record %q, want %q", name, tn.String(), wantRecord[name])
		}
		var rec struct {
			Fields []struct {
				Name string `json:"name"`
				Doc  string `json:"doc"`
			} `json:"fields"`
		}
		if err := json.Unmarshal([]byte(text), &rec); err != nil {
			t.Fatal(err)
		}
		for _, f := range rec.Fields {
			if strings.TrimSpace(f.Doc) == "" {
				t.Errorf("%s: field %s has no doc", name, f.Name)
			}
		}
	}
}

func TestAvroNamesCoverEmbedded(t *testing.T) {
	files, err := fs.Glob(avroFS, "avro/*.avsc")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(AvroNames()) {
		t.Errorf("embedded %v, AvroNames lists %v", files, AvroNames())
	}
}

func TestAvroUnknownPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Avro(\"nope\") did not panic")
		}
	}()
	Avro("nope")
}
