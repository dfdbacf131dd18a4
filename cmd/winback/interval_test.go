package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestLongIntervalStartsAtOnce: with a commit interval of 4 minutes, a fresh
// group applies its input at once. Its tasks restore as soon as they are
// assigned (the poll under way is woken), and the transactions that only
// publish the tasks' forwarding frontiers, which the barrier waits for,
// end as soon as the frontiers are known; records queued under the
// barrier apply early in the next transaction: its first poll, after
// which they are applied, does not wait for new input. Before, each of the first three
// transactions (the restore, then two under a barrier that held
// everything) ran the whole interval: 12 minutes here.
func TestLongIntervalStartsAtOnce(t *testing.T) {
	s := newStack(t, 2)
	cfg := s.cfg
	cfg.Kafka.TxnTimeout, cfg.CommitInterval = 10*time.Minute, 4*time.Minute
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.k.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	const n = 40
	at := time.Now().UTC().AddDate(0, 0, -30)
	var recs []*kgo.Record
	for i := range n {
		c := fmt.Sprintf("c%d", i%8)
		recs = append(recs, &kgo.Record{Topic: cfg.Topics.Orders, Key: []byte(c), Value: fmt.Appendf(nil,
			`{"event_id":"e%d","customer_id":"%s","event_time":"%s","type":"PLACED","order_id":"o%d","amount":20.0,"currency":"EUR","items":1}`,
			i, c, at.Add(time.Duration(i)*time.Hour).Format(time.RFC3339), i)})
	}
	if err := cl.ProduceSync(t.Context(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	_, reg := s.serveInProcess(t, cfg)
	defer func() {
		if t.Failed() {
			mfs, _ := reg.Gather()
			for _, mf := range mfs {
				if n := mf.GetName(); strings.HasPrefix(n, "winback_") {
					for _, m := range mf.GetMetric() {
						if v := m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount()); v != 0 {
							t.Logf("%s %v %v", n, m.GetLabel(), v)
						}
					}
				}
			}
		}
	}()
	applied := waitFor(t, time.Minute, fmt.Sprintf("%d orders applied under a 4m commit interval", n), func() (float64, bool) {
		v := counterSum(t, reg, "winback_events_total", "outcome", "ok")
		return v, v >= n
	})
	if applied != n {
		t.Errorf("%v events applied, want %d", applied, n)
	}
	if b := counterSum(t, reg, "winback_transaction_ends_total", "cause", "barrier"); b < 1 {
		t.Errorf("no transaction ended for the barrier (winback_transaction_ends_total{cause=\"barrier\"} = %v)", b)
	}
}
