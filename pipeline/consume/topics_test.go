package consume

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/winback/winback/pipeline/codec"
	"github.com/winback/winback/pipeline/decode"
	"github.com/winback/winback/pipeline/event"
)

// fakeKafka starts a one-broker kfake cluster for the test and returns a
// client of it (with opts) and an admin client.
func fakeKafka(t *testing.T, opts ...kgo.Opt) (*kgo.Client, *kadm.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl, kadm.NewClient(cl)
}

// TestCheckChangelogPolicy creates changelog topics with each cleanup
// policy on kfake and checks which the runner accepts; a refusal is a
// configError (retrying cannot fix it) that names the topic and the fix.
func TestCheckChangelogPolicy(t *testing.T) {
	_, adm := fakeKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cases := []struct {
		topic   string
		configs map[string]string
		want    string // "" = accepted; else a part of the error
	}{
		{"state-compact", map[string]string{"cleanup.policy": "compact"}, ""},
		{"state-default", nil, "cleanup.policy=delete"},
		{"state-delete", map[string]string{"cleanup.policy": "delete"}, "cleanup.policy=delete"},
		{"state-compact-delete", map[string]string{"cleanup.policy": "compact,delete"}, "retention.ms=604800000"},
		{"state-compact-delete-7d", map[string]string{"cleanup.policy": "compact,delete", "retention.ms": "604800000"}, "retention.ms=604800000"},
		{"state-compact-delete-forever", map[string]string{"cleanup.policy": "compact,delete", "retention.ms": "-1", "retention.bytes": "-1"}, ""},
	}
	for _, tc := range cases {
		var configs map[string]*string
		if tc.configs != nil {
			configs = map[string]*string{}
			for k, v := range tc.configs {
				configs[k] = kadm.StringPtr(v)
			}
		}
		resp, err := adm.CreateTopic(ctx, 2, 1, configs, tc.topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil {
			t.Fatalf("create %s: %v", tc.topic, err)
		}
	}
	for _, tc := range cases {
		t.Run(tc.topic, func(t *testing.T) {
			err := checkChangelogPolicy(ctx, adm, tc.topic)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			var ce configError
			if !errors.As(err, &ce) {
				t.Errorf("%v is not a configError: the runner would retry it forever", err)
			}
			for _, part := range []string{tc.want, tc.topic, "kafka-configs", "--entity-name " + tc.topic, "cleanup.policy=compact"} {
				if !strings.Contains(err.Error(), part) {
					t.Errorf("error %q does not contain %q", err, part)
				}
			}
		})
	}

	// A topic that does not exist is an error, but not one about the policy.
	err := checkChangelogPolicy(ctx, adm, "no-such-topic")
	if err == nil || strings.Contains(err.Error(), "cleanup.policy") {
		t.Errorf("missing topic: %v", err)
	}

	// Fixing the topic as the message says makes it pass.
	if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "cleanup.policy", Value: kadm.StringPtr("compact")}}, "state-delete"); err != nil {
		t.Fatal(err)
	}
	if err := checkChangelogPolicy(ctx, adm, "state-delete"); err != nil {
		t.Errorf("after the fix: %v", err)
	}
}

// TestMetaKeyIsNoCustomerID: the changelog key of a task's own record can
// never be a customer's, because the decoder refuses it as a customer_id
// (and so as a key, which must equal the customer_id).
func TestMetaKeyIsNoCustomerID(t *testing.T) {
	d := decode.NewDecoder(nil, decode.Options{})
	ev := event.Event{Kind: event.KindOrder, EventID: "e-1", CustomerID: metaKey, Time: time.Now().Add(-time.Hour).UnixMilli(),
		OrderType: event.OrderPlaced, OrderID: "o-1", Amount: 1, Currency: "EUR", Items: 1}
	var got event.Event
	err := d.Decode(context.Background(), event.KindOrder, []byte(metaKey), codec.AppendEventJSON(nil, &ev), &got)
	if r, _ := decode.ReasonOf(err); r != decode.ReasonFieldInvalid {
		t.Fatalf("customer_id %q: %v, want field.invalid", metaKey, err)
	}
}

// TestLeaveGroupNotJoined: leaving a group this instance never joined (it
// stopped at start-up, before joining) is no error: there was nothing to
// leave, and the warning it gave said otherwise.
func TestLeaveGroupNotJoined(t *testing.T) {
	_, adm := fakeKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := LeaveGroup(ctx, adm, "never-joined", "inst-1"); err != nil {
		t.Errorf("leaving a group never joined: %v", err)
	}
}
