package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestIncrementalityDashboard checks the holdout dashboard
// (grafana/incrementality.json) as far as it can be checked without
// Grafana: it picks a ClickHouse datasource through its variable, every
// query panel uses it and reads winback's incrementality views, panels sit
// on the grid without overlap, compose mounts it next to winback.json and
// provisions the ClickHouse datasource it needs. The panels' SQL runs
// against ClickHouse 18.16 and chDB in sinks/clickhouse's incrementality
// tests.
func TestIncrementalityDashboard(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("grafana", "incrementality.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID        string `json:"uid"`
		Title      string `json:"title"`
		Templating struct {
			List []struct{ Name, Type, Query string } `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID         int    `json:"id"`
			Type       string `json:"type"`
			Title      string `json:"title"`
			Datasource *struct{ Type, UID string }
			GridPos    struct{ X, Y, W, H int } `json:"gridPos"`
			Targets    []struct {
				RefID  string `json:"refId"`
				RawSQL string `json:"rawSql"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("uid and title must be set")
	}
	if len(d.Templating.List) != 1 || d.Templating.List[0].Type != "datasource" || d.Templating.List[0].Query != "grafana-clickhouse-datasource" {
		t.Errorf("variables %+v: want one datasource variable of type grafana-clickhouse-datasource", d.Templating.List)
	}
	type cell struct{ x, y int }
	occupied := map[cell]string{}
	queries := 0
	for _, p := range d.Panels {
		g := p.GridPos
		if g.W < 1 || g.H < 1 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := occupied[cell{x, y}]; ok {
					t.Errorf("panel %q overlaps %q", p.Title, other)
				}
				occupied[cell{x, y}] = p.Title
			}
		}
		if p.Type == "text" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${clickhouse}" || p.Datasource.Type != "grafana-clickhouse-datasource" {
			t.Errorf("panel %q: datasource %+v, want the ${clickhouse} variable", p.Title, p.Datasource)
		}
		for _, tg := range p.Targets {
			queries++
			if !strings.Contains(tg.RawSQL, "FROM winback.winback_incrementality") && !strings.Contains(tg.RawSQL, "FROM winback.winback_trigger_outcomes") {
				t.Errorf("panel %q: query reads neither incrementality view nor the outcomes:\n%s", p.Title, tg.RawSQL)
			}
		}
	}
	if queries < 3 {
		t.Errorf("%d queries", queries)
	}

	c := loadCompose(t)
	g := c.Services["grafana"]
	if src := g.mount("/var/lib/grafana/dashboards/incrementality.json"); filepath.Clean(src) != filepath.Join("grafana", "incrementality.json") {
		t.Errorf("compose mounts %q as the incrementality dashboard, want grafana/incrementality.json", src)
	}
	if !strings.Contains(g.Environment["GF_INSTALL_PLUGINS"], "grafana-clickhouse-datasource") {
		t.Errorf("compose grafana installs plugins %q: the dashboard needs grafana-clickhouse-datasource", g.Environment["GF_INSTALL_PLUGINS"])
	}
	type dsFile struct {
		Datasources []struct {
			Type     string
			JSONData struct {
				Host     string `yaml:"host"`
				Port     int    `yaml:"port"`
				Database string `yaml:"defaultDatabase"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	found := false
	for _, ds := range decodeYAMLOne[dsFile](t, filepath.Join("grafana", "provisioning", "datasources", "clickhouse.yaml")).Datasources {
		if ds.Type == "grafana-clickhouse-datasource" {
			found = true
			if _, ok := c.Services[ds.JSONData.Host]; !ok || ds.JSONData.Port != 9000 || ds.JSONData.Database != "winback" {
				t.Errorf("ClickHouse datasource %+v: want compose's clickhouse service, native port 9000, database winback", ds.JSONData)
			}
		}
	}
	if !found {
		t.Error("no ClickHouse datasource provisioned")
	}
}
