package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// buildInfo is what the binary knows of its build: the module version and
// the VCS revision Go stamped into it (go build in a git checkout).
type buildInfo struct {
	Version  string // module version, "(devel)" for a local build
	Revision string // commit, "" when unknown
	Time     string // commit time
	Modified bool   // built from a tree with uncommitted changes
	Go       string
}

func readBuildInfo() buildInfo {
	b := buildInfo{Version: "(devel)", Go: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if v := bi.Main.Version; v != "" {
		b.Version = v
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// short is the revision cut to 12 characters, with "+dirty" for a
// modified tree.
func (b buildInfo) short() string {
	r := b.Revision
	if len(r) > 12 {
		r = r[:12]
	}
	if r == "" {
		r = "unknown"
	}
	if b.Modified {
		r += "+dirty"
	}
	return r
}

func versionLine() string {
	b := readBuildInfo()
	line := fmt.Sprintf("winback %s, commit %s", b.Version, b.short())
	if b.Time != "" {
		line += " of " + b.Time
	}
	return line + ", " + b.Go
}

// buildInfoCollector is winback_build_info{version, revision, goversion} 1.
func buildInfoCollector() prometheus.Collector {
	b := readBuildInfo()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "winback_build_info",
		Help:        "Always 1; the labels name the build: module version, VCS revision (+dirty for a modified tree) and Go version.",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.short(), "goversion": b.Go},
	})
	g.Set(1)
	return g
}
