package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
)

// ---------------------------------------------------------------- alerts

type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// requiredAlerts are the conditions an operator of winback must hear about.
var requiredAlerts = []string{
	"WinbackConsumerLagGrowing",
	"WinbackDLQRateHigh",
	"WinbackNoTriggers",
	"WinbackClickHouseErrors",
	"WinbackClickHouseRetries",
	"WinbackRestoreStuck",
	"WinbackTransactionsAborting",
	"WinbackInstanceNotReady",
	"WinbackInstanceDown",
	"WinbackTriggerLatencyHigh",
	"WinbackGroupStalled",
}

var alertNameRe = regexp.MustCompile(`^Winback[A-Z][A-Za-z0-9]+$`)

func TestAlerts(t *testing.T) {
	rf := decodeYAMLOne[ruleFile](t, filepath.Join("prometheus", "alerts.yaml"))
	c := winbackCatalog(t)
	if len(rf.Groups) == 0 {
		t.Fatal("alerts.yaml: no groups")
	}
	seen := map[string]bool{}
	groups := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || groups[g.Name] {
			t.Errorf("alerts.yaml: group name %q empty or repeated", g.Name)
		}
		groups[g.Name] = true
		if len(g.Rules) == 0 {
			t.Errorf("alerts.yaml: group %s has no rules", g.Name)
		}
		for _, r := range g.Rules {
			name := r.Alert
			if r.Record != "" {
				t.Errorf("alerts.yaml: recording rule %s: keep recording rules out of the alert file", r.Record)
				continue
			}
			if !alertNameRe.MatchString(name) {
				t.Errorf("alerts.yaml: alert name %q, want Winback<CamelCase>", name)
			}
			if seen[name] {
				t.Errorf("alerts.yaml: alert %s defined twice", name)
			}
			seen[name] = true
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("%s: no expr", name)
				continue
			}
			if r.For == "" {
				t.Errorf("%s: no for: (a single bad scrape would page)", name)
			} else if d, err := model.ParseDuration(r.For); err != nil || d <= 0 {
				t.Errorf("%s: for %q is not a positive Prometheus duration (%v)", name, r.For, err)
			}
			switch r.Labels["severity"] {
			case "critical", "warning", "info":
			default:
				t.Errorf("%s: labels.severity %q, want critical, warning or info", name, r.Labels["severity"])
			}
			for _, a := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: annotations.%s is empty", name, a)
				}
			}
			p, _, errs := c.checkExpr(r.Expr)
			for _, err := range errs {
				t.Errorf("%s: %v\n%s", name, err, r.Expr)
			}
			checkTemplateLabels(t, c, name, p, r.Annotations)
		}
	}
	for _, want := range requiredAlerts {
		if !seen[want] {
			t.Errorf("alerts.yaml: no alert %s", want)
		}
	}
}

// checkTemplateLabels checks that {{ $labels.x }} in annotations names a
// label the alert's series carry.
func checkTemplateLabels(t *testing.T, c catalog, name string, p promExpr, texts map[string]string) {
	t.Helper()
	labels, known := c.outputLabels(p)
	for key, text := range texts {
		if strings.Count(text, "{{") != strings.Count(text, "}}") {
			t.Errorf("%s: annotation %s has unbalanced {{ }}", name, key)
		}
		for _, m := range templateLabelRe.FindAllStringSubmatch(text, -1) {
			l := m[1]
			if l == "" {
				continue // {{ word }}: a legend, not an annotation
			}
			if known && !slices.Contains(labels, l) {
				t.Errorf("%s: annotation %s uses $labels.%s, but the alert's series carry only %q", name, key, l, labels)
			}
		}
	}
}

// ---------------------------------------------------------------- dashboard

type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Datasource *datasourceRef  `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID        string         `json:"refId"`
		Expr         string         `json:"expr"`
		LegendFormat string         `json:"legendFormat"`
		Datasource   *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

// requiredPanels: metrics the dashboard must show.
var requiredPanels = []string{
	"winback_events_total",
	"winback_consumer_lag_records",
	"winback_dlq_records_total",
	"winback_triggers_total",
	"winback_clickhouse_rows_total",
	"winback_clickhouse_flush_seconds",
	"winback_clickhouse_errors_total",
	"winback_clickhouse_retries_total",
	"winback_restore_duration_seconds",
	"winback_restoring_partitions",
	"winback_trigger_latency_seconds",
	"winback_event_time_lag_seconds",
	"winback_customers_tracked",
	"winback_timers_pending",
	"winback_transactions_committed_total",
	"winback_transactions_aborted_total",
}

var labelValuesRe = regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("grafana", "winback.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(string(data)))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("winback.json: %v", err)
	}
	return d
}

func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	c := winbackCatalog(t)
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard: uid and title must be set (provisioning and links rely on the uid)")
	}
	if d.SchemaVersion < 36 {
		t.Errorf("dashboard: schemaVersion %d, want >= 36", d.SchemaVersion)
	}

	// Variables: a Prometheus datasource variable, and job / instance.
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
		if v.Type == "datasource" {
			var q string
			if err := json.Unmarshal(v.Query, &q); err != nil || q != "prometheus" {
				t.Errorf("variable %s: query %s, want \"prometheus\"", v.Name, v.Query)
			}
			continue
		}
		if v.Type != "query" {
			continue
		}
		if v.Datasource == nil || v.Datasource.UID != "${datasource}" {
			t.Errorf("variable %s: datasource %+v, want uid ${datasource}", v.Name, v.Datasource)
		}
		var q string
		if err := json.Unmarshal(v.Query, &q); err != nil {
			var obj struct {
				Query string `json:"query"`
			}
			if err := json.Unmarshal(v.Query, &obj); err != nil {
				t.Errorf("variable %s: query %s", v.Name, v.Query)
				continue
			}
			q = obj.Query
		}
		m := labelValuesRe.FindStringSubmatch(strings.TrimSpace(q))
		if m == nil {
			t.Errorf("variable %s: query %q, want label_values(<selector>, <label>)", v.Name, q)
			continue
		}
		p, _, errs := c.checkExpr(m[1])
		for _, err := range errs {
			t.Errorf("variable %s: %v", v.Name, err)
		}
		if labels, known := c.outputLabels(p); known && !slices.Contains(labels, m[2]) {
			t.Errorf("variable %s: label %s is not on %s", v.Name, m[2], m[1])
		}
	}
	if vars["datasource"] != "datasource" || vars["job"] != "query" || vars["instance"] != "query" {
		t.Errorf("dashboard variables %v: want datasource (datasource), job and instance (query)", vars)
	}

	// Panels: unique ids, on the grid without overlap, every non-row panel
	// with PromQL targets on ${datasource} that reference real metrics.
	var all []panel
	for _, p := range d.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	ids := map[int]bool{}
	type cell struct{ x, y int }
	occupied := map[cell]string{}
	used := map[string]bool{}
	queries := 0
	for _, p := range all {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d repeated", p.Title, p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W < 1 || g.H < 1 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := occupied[cell{x, y}]; ok {
					t.Errorf("panel %q overlaps %q at column %d, row %d", p.Title, other, x, y)
					y, x = g.Y+g.H, g.X+g.W
					continue
				}
				occupied[cell{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %+v, want uid ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no targets", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			queries++
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: refId %q empty or repeated", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			if tg.Datasource != nil && tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q target %s: datasource %+v", p.Title, tg.RefID, tg.Datasource)
			}
			if !strings.Contains(tg.Expr, `job=~"$job"`) || !strings.Contains(tg.Expr, `instance=~"$instance"`) {
				t.Errorf("panel %q target %s: not filtered by $job and $instance: %s", p.Title, tg.RefID, tg.Expr)
			}
			pe, bases, errs := c.checkExpr(tg.Expr)
			for _, err := range errs {
				t.Errorf("panel %q target %s: %v\n%s", p.Title, tg.RefID, err, tg.Expr)
			}
			for _, b := range bases {
				used[b] = true
			}
			if labels, known := c.outputLabels(pe); known {
				for _, m := range templateLabelRe.FindAllStringSubmatch(tg.LegendFormat, -1) {
					if l := m[2]; l != "" && !slices.Contains(labels, l) {
						t.Errorf("panel %q target %s: legend {{%s}}, but the series carry only %q", p.Title, tg.RefID, l, labels)
					}
				}
			}
		}
	}
	if queries < 20 {
		t.Errorf("dashboard has %d queries; expected a full dashboard", queries)
	}
	for _, m := range requiredPanels {
		if !used[m] {
			t.Errorf("dashboard: no panel shows %s", m)
		}
	}
	// Every metric winback declares has a panel, so that a new metric is
	// either shown or consciously left out here.
	for name, info := range c {
		if strings.HasPrefix(name, "winback_") && !strings.HasPrefix(name, "winback_kafka_") && !used[name] && !notOnDashboard[name] {
			t.Errorf("dashboard: %s (declared in %s) is on no panel; add one or list it in notOnDashboard", name, info.source)
		}
	}
}

// notOnDashboard are winback metrics deliberately left off the dashboard.
var notOnDashboard = map[string]bool{
	"winback_watermark_seconds": true, // absolute Unix time; the dashboard shows winback_event_time_lag_seconds
	"winback_build_info":        true, // labels only (version, revision); query it when comparing instances
}
