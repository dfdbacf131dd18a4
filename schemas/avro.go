package schemas

import (
	"embed"
	"fmt"
)

//go:embed avro/*.avsc
var avroFS embed.FS

// Avro schema file names, without the .avsc extension, for use with Avro.
const (
	AvroOrder          = "order"
	AvroEmailEvent     = "email_event"
	AvroSupportEvent   = "support_event"
	AvroWinbackTrigger = "winback_trigger"
)

// Avro returns the text of the Avro schema avro/<name>.avsc, e.g.
// Avro(AvroOrder). It panics if there is no such schema: the names are
// constants known at compile time, and a test checks each one.
func Avro(name string) string {
	b, err := avroFS.ReadFile("avro/" + name + ".avsc")
	if err != nil {
		panic(fmt.Sprintf("schemas: no Avro schema %q: %v", name, err))
	}
	return string(b)
}

// AvroNames lists the embedded Avro schemas by name.
func AvroNames() []string {
	return []string{AvroOrder, AvroEmailEvent, AvroSupportEvent, AvroWinbackTrigger}
}
