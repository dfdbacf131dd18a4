// Package srtest is test support for code that talks to a schema registry:
// a fresh in-memory registry (franz-go's srfake) with a client of it. It is
// imported by test files only.
package srtest

import (
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// New serves a fresh srfake registry for the test, closed when the test
// ends, and returns it with a client of it. Its compatibility check always
// passes: test schema evolution rules yourself.
func New(t testing.TB) (*srfake.Registry, *sr.Client) {
	t.Helper()
	fake := srfake.New()
	t.Cleanup(fake.Close)
	cl, err := sr.NewClient(sr.URLs(fake.URL()))
	if err != nil {
		t.Fatal(err)
	}
	return fake, cl
}
