package chdbtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/winback/winback/sinks/clickhouse/chdbtest/chdbenv"
)

// TestLocate: the library comes from CHDB_LIB_PATH when set, else from
// .cache/chdb/libpath at the nearest go.mod at or above the directory; a
// path that does not exist, or no libpath file, is an error that says to
// run make deps.
func TestLocate(t *testing.T) {
	root := t.TempDir()
	sub := filepath.Join(root, "a", "b")
	lib := filepath.Join(root, "libchdb.so")
	for _, f := range []struct{ path, text string }{
		{filepath.Join(root, "go.mod"), "module x\n"},
		{lib, ""},
		{filepath.Join(sub, "keep"), ""},
	} {
		if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.path, []byte(f.text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeLibpath := func(text string) {
		t.Helper()
		dir := filepath.Join(root, ".cache", "chdb")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "libpath"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == chdbenv.EnvLibPath {
				return v
			}
			return ""
		}
	}
	f := func(name string, getenv func(string) string, dir, want, wantErr string) {
		t.Helper()
		got, err := chdbenv.Locate(getenv, dir)
		switch {
		case wantErr == "" && (err != nil || got != want):
			t.Errorf("%s: got %q, %v; want %q", name, got, err, want)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("%s: got %q, %v; want an error with %q", name, got, err, wantErr)
		}
	}
	f("env set", env(lib), sub, lib, "")
	f("env names no file", env(lib+".gone"), sub, "", "make deps")
	f("no libpath file", env(""), sub, "", "make deps")
	writeLibpath(lib + "\n")
	f("libpath from a subdirectory", env(""), sub, lib, "")
	f("env wins over libpath", env(lib), root, lib, "")
	writeLibpath(lib + ".gone")
	f("libpath names no file", env(""), sub, "", "again")
	f("no go.mod", env(""), filepath.Dir(root), "", "no go.mod")
}
