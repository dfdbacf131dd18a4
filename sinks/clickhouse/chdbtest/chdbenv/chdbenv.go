// Package chdbenv points chdb-go at libchdb.so before chdb-go loads it.
//
// chdb-go's chdb-purego package opens the library in its init, from
// CHDB_LIB_PATH, and panics if it cannot. Import this package (blank) next
// to chdb-go: its init runs first and sets CHDB_LIB_PATH from the
// environment or from .cache/chdb/libpath at the repository root (written
// by `make deps`), or stops the test binary with a message saying to run
// `make deps`: the chDB tests fail, they are never skipped.
//
// It runs first because Go initialises packages in import-path order among
// those whose imports are ready (Go 1.21+), this package's imports are a
// subset of os/exec's, which chdb-purego imports, and "github.com/winback"
// sorts before "os/exec". So it must import nothing that os/exec does not
// (not even fmt); TestLibraryLocated in chdbtest checks the order held.
package chdbenv

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// EnvLibPath is the variable chdb-go reads.
const EnvLibPath = "CHDB_LIB_PATH"

func init() {
	dir, err := os.Getwd()
	p := ""
	if err == nil {
		p, err = Locate(os.Getenv, dir)
	}
	if err != nil {
		os.Stderr.WriteString("FAIL: chdbtest: " + err.Error() + "\n")
		os.Exit(1)
	}
	os.Setenv(EnvLibPath, p)
}

// Locate returns the libchdb.so to load: getenv(EnvLibPath) if set, else
// the path written in .cache/chdb/libpath of the repository root, the
// nearest directory at or above dir with a go.mod. The file must exist.
// Its errors say how to fix the setup. After init, the library in use is
// os.Getenv(EnvLibPath), which is what chdb-go reads.
func Locate(getenv func(string) string, dir string) (string, error) {
	if p := getenv(EnvLibPath); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", errors.New(EnvLibPath + "=" + p + ": " + err.Error() + "; run `make deps` to install libchdb.so, or fix " + EnvLibPath)
		}
		return p, nil
	}
	root, err := repoRoot(dir)
	if err != nil {
		return "", err
	}
	file := filepath.Join(root, ".cache", "chdb", "libpath")
	b, err := os.ReadFile(file)
	if err != nil {
		return "", errors.New("libchdb.so not found: " + EnvLibPath + " is not set and " + file + " is missing; run `make deps` (it installs chDB into .cache/chdb)")
	}
	p := strings.TrimSpace(string(b))
	if _, err := os.Stat(p); err != nil {
		return "", errors.New(file + " names " + p + ": " + err.Error() + "; run `make deps` again")
	}
	return p, nil
}

// repoRoot is the nearest directory at or above dir with a go.mod (go
// test runs in the package directory).
func repoRoot(start string) (string, error) {
	dir := start
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod at or above " + start + ", so no .cache/chdb/libpath; set " + EnvLibPath + " or run `make deps`")
		}
		dir = parent
	}
}
