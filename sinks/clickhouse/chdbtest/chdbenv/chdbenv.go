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

// Path is the libchdb.so in use.
var Path string

func init() {
	p, err := locate()
	if err != nil {
		os.Stderr.WriteString("FAIL: chdbtest: " + err.Error() + "\n")
		os.Exit(1)
	}
	Path = p
	os.Setenv(EnvLibPath, p)
}

func locate() (string, error) {
	if p := os.Getenv(EnvLibPath); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", errors.New(EnvLibPath + "=" + p + ": " + err.Error() + "; run `make deps` to install libchdb.so, or fix " + EnvLibPath)
		}
		return p, nil
	}
	root, err := repoRoot()
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

// repoRoot is the nearest directory above the working directory with a
// go.mod (go test runs in the package directory).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory, so no .cache/chdb/libpath; set " + EnvLibPath + " or run `make deps`")
		}
		dir = parent
	}
}
