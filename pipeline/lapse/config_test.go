package lapse

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/winback/winback/pipeline/event"
)

// loadConfig decodes YAML over the defaults, strictly, and validates.
func loadConfig(b []byte) (Config, error) {
	cfg := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && err.Error() != "EOF" {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

func TestDefaultConfigIsValid(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// A weekly buyer after 20 days lapses, a monthly one does not.
	if c.Lapse.Factor*7 > 20 || c.Lapse.Factor*30 <= 20 {
		t.Fatalf("factor %v does not separate weekly and monthly buyers at 20 days", c.Lapse.Factor)
	}
	for _, r := range event.Reasons {
		if c.Actions[r] == "" || c.Risk.Weights[r] == 0 {
			t.Errorf("%s has no action or weight", r)
		}
	}
}

func TestConfigFiles(t *testing.T) {
	files, _ := filepath.Glob("testdata/config/*.yaml")
	if len(files) < 5 {
		t.Fatal("missing testdata/config")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := loadConfig(b)
			if strings.HasSuffix(f, ".good.yaml") {
				if err != nil {
					t.Fatalf("good config rejected: %v", err)
				}
				NewEngine(cfg, 3, wallAt(0)) // must not panic
				return
			}
			if err == nil {
				t.Fatal("bad config accepted")
			}
			_, want, _ := strings.Cut(string(b), "# want: ")
			want = strings.TrimSpace(want)
			if want == "" || !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not name %q", err, want)
			}
		})
	}
}

func TestFullConfigOverrides(t *testing.T) {
	b, _ := os.ReadFile("testdata/config/full.good.yaml")
	cfg, err := loadConfig(b)
	if err != nil {
		t.Fatal(err)
	}
	// Maps merge over the defaults; lists replace them.
	if cfg.Risk.Weights[event.ReasonPurchaseLapse] != 0.7 || cfg.Risk.Weights[event.ReasonSpendDecline] != 0.4 {
		t.Fatalf("weights = %v", cfg.Risk.Weights)
	}
	if cfg.Actions[event.ReasonSpendDecline] != event.ActionLoyaltyReward || cfg.Actions[event.ReasonPurchaseLapse] != event.ActionWinbackOffer {
		t.Fatalf("actions = %v", cfg.Actions)
	}
	if g := cfg.Engagement; g.CUSUMThreshold != 9 || g.AltRatio != 0.25 || g.BaselineMarginSE != 1 || g.MaxBaseline != 0.7 || cfg.Spend.MinOrderValueDrop != 0.3 {
		t.Fatalf("sequential test and spend per order not read: %+v %+v", g, cfg.Spend)
	}
	p := newParams(cfg)
	if p.cooldown[rBounce] != 90 || p.cooldown[rLapse] != 21 || p.recoverOn != bitLapse|bitSpend {
		t.Fatalf("params: cooldowns %v recoverOn %b", p.cooldown, p.recoverOn)
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	c := DefaultConfig()
	c.Lapse.Factor = 0
	c.Spend.MinPrevOrders = 0
	c.Lifecycle.RecoveredAction = "X"
	c.Lapse.DormantRate = 0.6
	err := c.Validate()
	for _, want := range []string{"purchase_lapse.factor", "spend_decline.min_prev_orders", "lifecycle.recovered_action", "purchase_lapse.dormant_rate", "e.g."} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}

func TestNewEngineZeroConfigMeansDefaults(t *testing.T) {
	e := NewEngine(Config{}, 3, wallAt(0))
	if e.Config().Lapse.Factor != DefaultConfig().Lapse.Factor {
		t.Fatal("zero config did not take the defaults")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("invalid config accepted")
		}
	}()
	bad := DefaultConfig()
	bad.Lapse.Factor = -1
	NewEngine(bad, 3, wallAt(0))
}
