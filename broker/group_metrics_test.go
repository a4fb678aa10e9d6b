package broker_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluice-io/sluice/broker"
	"github.com/sluice-io/sluice/internal/testbroker"
)

// TestGroupMetrics checks the consumer-group series: groups by state, and
// the committed offset and lag under kafka_exporter's names.
func TestGroupMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := testbroker.Start(t, func(c *broker.Config) { c.Registerer = reg })
	adm, _ := compatAdmin(t, b.Addr())
	compatCreateTopic(t, adm, "gm", 2, nil)
	groupProduce(t, b.Addr(), "gm", 0, 20) // 10 per partition
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: "gm", Partition: 1, At: 4, LeaderEpoch: -1})
	if _, err := adm.CommitOffsets(compatCtx(t, 10*time.Second), "gm-group", offs); err != nil {
		t.Fatal(err)
	}
	// One rebalance of a one-member group.
	g := newRawGroup(t, b.Addr(), "gm-members")
	j := g.join(g.join("", nil, 10_000, "gm").MemberID, nil, 10_000, "gm")
	wantCode(t, "sync", g.sync(j.MemberID, j.Generation, nil).ErrorCode, nil)

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "," + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetGauge().GetValue()
			if h := m.GetHistogram(); h != nil {
				got[key] = float64(h.GetSampleCount())
			}
		}
	}
	for key, want := range map[string]float64{
		"sluice_consumer_groups,state=Empty":                                             1,
		"sluice_consumer_groups,state=Stable":                                            1,
		"sluice_consumer_group_rebalance_seconds":                                        1,
		"kafka_consumergroup_current_offset,consumergroup=gm-group,partition=1,topic=gm": 4,
		"kafka_consumergroup_lag,consumergroup=gm-group,partition=1,topic=gm":            6,
	} {
		if v, ok := got[key]; !ok || v != want {
			t.Errorf("%s = %v (present %v), want %v", key, v, ok, want)
		}
	}
}
