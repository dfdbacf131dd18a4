package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	backtickRe = regexp.MustCompile("`([^`\n]+)`")
	mdLinkRe   = regexp.MustCompile(`\]\(([^)#\s]+)(#[^)]*)?\)`)
	settingRe  = regexp.MustCompile(`^(kafka|registry|clickhouse|topics)(\.[a-z_]+)+$`)
	envRe      = regexp.MustCompile(`\bWINBACK_[A-Z0-9_]+\b`)
	metricRe   = regexp.MustCompile(`^winback_[a-z0-9_]+$`)
)

// TestDocs checks the operator docs against the code: settings (YAML keys
// and WINBACK_* names), metric names and relative links must exist.
func TestDocs(t *testing.T) {
	root := repoRoot(t)
	idx := newSettingsIndex()
	c := winbackCatalog(t)
	for _, doc := range []string{
		filepath.Join(root, "docs", "production.md"),
		filepath.Join(root, "deploy", "k8s", "README.md"),
	} {
		data, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		rel, _ := filepath.Rel(root, doc)
		for _, m := range backtickRe.FindAllStringSubmatch(text, -1) {
			tok := m[1]
			switch {
			case settingRe.MatchString(tok):
				if idx.key[tok] == nil {
					t.Errorf("%s: `%s` is not a setting", rel, tok)
				}
			case metricRe.MatchString(tok):
				if _, _, ok := c.lookup(tok); !ok {
					t.Errorf("%s: `%s` is not a metric winback exports", rel, tok)
				}
			}
		}
		for _, env := range envRe.FindAllString(text, -1) {
			if idx.env[env] == nil && env != "WINBACK_CONFIG" {
				t.Errorf("%s: %s is not a setting's variable", rel, env)
			}
		}
		for _, m := range mdLinkRe.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") {
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(doc), target)); err != nil {
				t.Errorf("%s: link %s: %v", rel, target, err)
			}
		}
	}
}
