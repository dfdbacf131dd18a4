package deploy

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metricInfo is what is known about one metric name.
type metricInfo struct {
	source string   // where it is declared
	labels []string // its variable labels, if known
	known  bool     // labels is the complete list
}

// catalog maps metric names (without _bucket/_sum/_count) to what is known.
type catalog map[string]metricInfo

// externalMetrics are names no winback code declares but that the alerts
// may use; each says who exports it.
var externalMetrics = map[string]metricInfo{
	"up":                    {source: "Prometheus (scrape health)", labels: []string{"job", "instance"}, known: true},
	"kube_pod_status_ready": {source: "kube-state-metrics (Kubernetes only)", labels: []string{"namespace", "pod", "uid", "condition"}, known: true},
}

// targetLabels are attached to every scraped series by Prometheus.
var targetLabels = []string{"job", "instance"}

var (
	catalogOnce sync.Once
	catalogVal  catalog
	catalogErr  error
)

// winbackCatalog is every metric a running winback (plus Prometheus and
// kube-state-metrics, see externalMetrics) can expose.
func winbackCatalog(t *testing.T) catalog {
	t.Helper()
	catalogOnce.Do(func() { catalogVal, catalogErr = buildCatalog(repoRoot(t)) })
	if catalogErr != nil {
		t.Fatal(catalogErr)
	}
	return catalogVal
}

func buildCatalog(root string) (catalog, error) {
	c := catalog{}
	sources, err := goSources(root)
	if err != nil {
		return nil, err
	}
	var namespaces []string
	for path, src := range sources {
		rel, _ := filepath.Rel(root, path)
		for name, info := range declaredMetrics(src) {
			info.source = rel
			if prev, ok := c[name]; ok && prev.source != rel {
				return nil, fmt.Errorf("metric %s is declared in both %s and %s", name, prev.source, rel)
			}
			c[name] = info
		}
		for _, m := range kpromNamespaceRe.FindAllStringSubmatch(src, -1) {
			namespaces = append(namespaces, m[1])
		}
		if strings.Contains(src, "kprom.Subsystem(") {
			return nil, fmt.Errorf("%s sets a kprom subsystem: teach buildCatalog about it", rel)
		}
	}
	if len(namespaces) > 0 {
		suffixes, err := kpromSuffixes(root)
		if err != nil {
			return nil, err
		}
		for _, ns := range namespaces {
			for _, s := range suffixes {
				c[ns+"_"+s] = metricInfo{source: "franz-go plugin/kprom"}
			}
		}
	}
	for name, info := range runtimeMetrics() {
		c[name] = info
	}
	for name, info := range externalMetrics {
		c[name] = info
	}
	return c, nil
}

// goSources reads every non-test .go file of the winback module outside
// deploy/ and bench/ (a separate module).
func goSources(root string) (map[string]string, error) {
	out := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor" || name == "node_modules") {
				return filepath.SkipDir
			}
			if rel, _ := filepath.Rel(root, path); rel == "deploy" || rel == "bench" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out[path] = string(b)
		return nil
	})
	return out, err
}

var (
	optsNameRe       = regexp.MustCompile(`\bName:\s*"([a-zA-Z0-9_:]+)"`)
	optsStringRe     = regexp.MustCompile(`\b(Namespace|Subsystem):\s*"([a-zA-Z0-9_]*)"`)
	newDescRe        = regexp.MustCompile(`NewDesc\(\s*"(winback_[a-zA-Z0-9_]+)"`)
	kpromNamespaceRe = regexp.MustCompile(`kprom\.NewMetrics\(\s*"([a-zA-Z0-9_]+)"`)
	quotedRe         = regexp.MustCompile(`"([^"\\]*)"`)
)

// declaredMetrics finds the metrics declared in one Go source: Name (with
// Namespace and Subsystem, if given) in a prometheus *Opts literal, and
// prometheus.NewDesc calls. The labels are known when the Opts literal is
// followed by a []string{...} literal or by the closing parenthesis.
func declaredMetrics(src string) map[string]metricInfo {
	out := map[string]metricInfo{}
	for _, m := range optsNameRe.FindAllStringSubmatchIndex(src, -1) {
		open, close := optsLiteral(src, m[0])
		if open < 0 {
			continue // not in a metric options literal
		}
		lit := src[open:close]
		parts := map[string]string{"Name": src[m[2]:m[3]]}
		for _, s := range optsStringRe.FindAllStringSubmatch(lit, -1) {
			parts[s[1]] = s[2]
		}
		var fq []string
		for _, k := range []string{"Namespace", "Subsystem", "Name"} {
			if parts[k] != "" {
				fq = append(fq, parts[k])
			}
		}
		name := strings.Join(fq, "_")
		if !strings.HasPrefix(name, "winback_") {
			continue
		}
		info := metricInfo{}
		rest := strings.TrimLeft(src[close+1:], " \t\r\n")
		switch {
		case strings.HasPrefix(rest, ")"):
			info.known = true
		case strings.HasPrefix(rest, ","):
			rest = strings.TrimLeft(rest[1:], " \t\r\n")
			if strings.HasPrefix(rest, "[]string{") {
				end := strings.IndexByte(rest, '}')
				for _, q := range quotedRe.FindAllStringSubmatch(rest[:end], -1) {
					info.labels = append(info.labels, q[1])
				}
				info.known = true
			}
		}
		out[name] = info
	}
	for _, m := range newDescRe.FindAllStringSubmatch(src, -1) {
		out[m[1]] = metricInfo{}
	}
	return out
}

var optsOpenRe = regexp.MustCompile(`Opts\s*\{`)

// optsLiteral returns the positions of the { and } of the prometheus
// *Opts{...} literal around src[pos], or -1, -1 if pos is in none.
func optsLiteral(src string, pos int) (open, close int) {
	opens := optsOpenRe.FindAllStringIndex(src[:pos], -1)
	if len(opens) == 0 {
		return -1, -1
	}
	open = opens[len(opens)-1][1] - 1
	depth := 0
	for i := open + 1; i < len(src); i++ {
		switch src[i] {
		case '"', '`':
			end, err := skipString(src, i)
			if err != nil {
				return -1, -1
			}
			i = end - 1
		case '{':
			depth++
		case '}':
			if depth > 0 {
				depth--
				continue
			}
			if i < pos {
				return -1, -1 // that literal closed before pos
			}
			return open, i
		}
	}
	return -1, -1
}

var (
	kpromNameRe      = regexp.MustCompile(`\bName:\s*"([a-z0-9_]+)"`)
	kpromNameVarRe   = regexp.MustCompile(`\w+Name\s*:=\s*"([a-z0-9_]+)"`)
	kpromHistogramRe = regexp.MustCompile(`newHistogramOpts\(\s*\w+,\s*"([a-z0-9_]+)"`)
)

// kpromSuffixes reads the metric names (without namespace) from kprom's
// source in the module cache, at the version go.mod selects.
func kpromSuffixes(root string) ([]string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	cmd := exec.Command(goBin, "list", "-m", "-f", "{{.Dir}}", "github.com/twmb/franz-go/plugin/kprom")
	cmd.Dir = root
	dir, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("locate kprom in the module cache: %w", err)
	}
	src, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(dir)), "kprom.go"))
	if err != nil {
		return nil, fmt.Errorf("read kprom source: %w", err)
	}
	var out []string
	for _, re := range []*regexp.Regexp{kpromNameRe, kpromNameVarRe, kpromHistogramRe} {
		for _, m := range re.FindAllStringSubmatch(string(src), -1) {
			out = append(out, m[1])
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) < 10 {
		return nil, fmt.Errorf("found only %d metric names in kprom.go (%q): has its source changed shape?", len(out), out)
	}
	return out, nil
}

// runtimeMetrics gathers what the Go and process collectors export here,
// registered as cmd/winback registers them.
func runtimeMetrics() catalog {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	fams, err := reg.Gather()
	out := catalog{}
	if err != nil {
		return out
	}
	for _, f := range fams {
		out[f.GetName()] = metricInfo{source: "Go/process collector"}
	}
	return out
}

// lookup resolves a name from PromQL, trying the histogram and summary
// series suffixes.
func (c catalog) lookup(name string) (base string, info metricInfo, ok bool) {
	if info, ok := c[name]; ok {
		return name, info, true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if b, found := strings.CutSuffix(name, suf); found {
			if info, ok := c[b]; ok {
				return b, info, true
			}
		}
	}
	return "", metricInfo{}, false
}

// checkExpr checks one PromQL expression against the catalog: it parses,
// every metric exists, every matcher label exists on its metric, and every
// grouping label exists on some metric of the expression. It returns the
// expression's metric base names.
func (c catalog) checkExpr(expr string) (promExpr, []string, []error) {
	var errs []error
	p, err := promParse(expr)
	if err != nil {
		return p, nil, []error{fmt.Errorf("parse: %w", err)}
	}
	if len(p.selectors) == 0 {
		errs = append(errs, fmt.Errorf("no metric in %q", expr))
	}
	var bases []string
	allLabels := map[string]bool{"le": true, "quantile": true}
	for _, l := range targetLabels {
		allLabels[l] = true
	}
	labelsKnown := true
	for _, s := range p.selectors {
		base, info, ok := c.lookup(s.name)
		if !ok {
			errs = append(errs, fmt.Errorf("metric %s is not declared by winback, kprom or the Go/process collectors", s.name))
			continue
		}
		bases = append(bases, base)
		if !info.known {
			labelsKnown = false
			continue
		}
		valid := slices.Concat(info.labels, targetLabels)
		if base != s.name && strings.HasSuffix(s.name, "_bucket") {
			valid = append(valid, "le")
		}
		for _, l := range s.labels {
			if !slices.Contains(valid, l) {
				errs = append(errs, fmt.Errorf("metric %s has no label %q (it has %q)", s.name, l, valid))
			}
		}
		for _, l := range info.labels {
			allLabels[l] = true
		}
	}
	if labelsKnown {
		for _, l := range p.grouping {
			if !allLabels[l] {
				errs = append(errs, fmt.Errorf("grouping label %q is on no metric of the expression", l))
			}
		}
	}
	slices.Sort(bases)
	return p, slices.Compact(bases), errs
}

// outputLabels says which labels the result of expr may carry (roughly:
// the grouping labels if it aggregates, else every label of its metrics),
// and whether that is known at all.
func (c catalog) outputLabels(p promExpr) (labels []string, known bool) {
	if p.without {
		return nil, false
	}
	if p.aggregated {
		out := slices.Clone(p.grouping)
		slices.Sort(out)
		return slices.Compact(out), true
	}
	out := slices.Clone(targetLabels)
	for _, s := range p.selectors {
		_, info, ok := c.lookup(s.name)
		if !ok || !info.known {
			return nil, false
		}
		out = append(out, info.labels...)
	}
	slices.Sort(out)
	return slices.Compact(out), true
}

var templateLabelRe = regexp.MustCompile(`\{\{\s*\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}|\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}`)

func TestCatalog(t *testing.T) {
	c := winbackCatalog(t)
	// A sample of each source, so that a change in how they are found
	// shows up here rather than as a confusing dashboard failure.
	for name, wantLabels := range map[string][]string{
		"winback_events_total":            {"topic", "outcome"},
		"winback_triggers_total":          {"kind", "reason", "action", "tier", "treatment"},
		"winback_restoring_partitions":    nil,
		"winback_trigger_latency_seconds": nil,
	} {
		info, ok := c[name]
		if !ok {
			t.Errorf("%s not found in the Go sources", name)
			continue
		}
		if !info.known || !slices.Equal(info.labels, wantLabels) {
			t.Errorf("%s: labels %q (known %v), want %q", name, info.labels, info.known, wantLabels)
		}
	}
	for _, name := range []string{"winback_kafka_connects_total", "winback_kafka_fetch_bytes_total", "winback_kafka_buffered_fetch_records_total", "go_goroutines", "process_resident_memory_bytes", "up"} {
		if _, ok := c[name]; !ok {
			t.Errorf("%s missing from the catalog", name)
		}
	}
	if base, _, ok := c.lookup("winback_trigger_latency_seconds_bucket"); !ok || base != "winback_trigger_latency_seconds" {
		t.Errorf("lookup(_bucket) = %q, %v", base, ok)
	}
}

func TestDeclaredMetrics(t *testing.T) {
	src := `
	a := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "winback_a_total", Help: "x {not a brace} y",
	}, []string{"table", "kind"})
	b := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "winback", Subsystem: "clickhouse", Name: "flush_seconds"})
	c := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "winback_c"}, labelNames)
	d := Table{Name: "winback_triggers"}
	e := prometheus.NewDesc("winback_e", "help", nil, nil)
	f := prometheus.NewGauge(prometheus.GaugeOpts{Name: "other_metric"})
	`
	got := declaredMetrics(src)
	want := map[string]metricInfo{
		"winback_a_total":                  {labels: []string{"table", "kind"}, known: true},
		"winback_clickhouse_flush_seconds": {known: true},
		"winback_c":                        {},
		"winback_e":                        {},
	}
	if len(got) != len(want) {
		t.Errorf("declaredMetrics found %v, want %v", got, want)
	}
	for name, w := range want {
		g, ok := got[name]
		if !ok || g.known != w.known || !slices.Equal(g.labels, w.labels) {
			t.Errorf("declaredMetrics[%s] = %+v (found %v), want %+v", name, g, ok, w)
		}
	}
}

// TestCheckExprRejects is the negative test of the checker the dashboard
// and alert tests rely on.
func TestCheckExprRejects(t *testing.T) {
	c := catalog{
		"winback_events_total":  {labels: []string{"topic", "outcome"}, known: true},
		"winback_flush_seconds": {known: true},
		"winback_kafka_x_total": {},
	}
	f := func(expr, wantErr string) {
		t.Helper()
		_, _, errs := c.checkExpr(expr)
		for _, err := range errs {
			if strings.Contains(err.Error(), wantErr) {
				return
			}
		}
		t.Errorf("checkExpr(%q) = %v, want an error containing %q", expr, errs, wantErr)
	}
	f(`rate(winback_event_total[5m])`, "metric winback_event_total is not declared")
	f(`sum(rate(winback_events_total[5m])) / sum(rate(winback_nope_total[5m]))`, "winback_nope_total is not declared")
	f(`rate(winback_events_total{topics="orders"}[5m])`, `has no label "topics"`)
	f(`sum by (reason) (rate(winback_events_total[5m]))`, `grouping label "reason"`)
	f(`histogram_quantile(0.99, rate(winback_flush_seconds_bucket{table="x"}[5m]))`, `has no label "table"`)
	f(`rate(winback_events_total[5m]`, "parse")
	f(`1 + 1`, "no metric")

	// And what it must accept.
	for _, expr := range []string{
		`sum by (topic, job) (rate(winback_events_total{outcome="ok", instance=~"$instance"}[$__rate_interval]))`,
		`histogram_quantile(0.99, sum by (le) (rate(winback_flush_seconds_bucket{job="x"}[5m])))`,
		`sum by (node_id) (rate(winback_kafka_x_total{anything="y"}[5m]))`, // kprom labels are not checked
	} {
		if _, _, errs := c.checkExpr(expr); len(errs) > 0 {
			t.Errorf("checkExpr(%q) = %v, want no error", expr, errs)
		}
	}
}
