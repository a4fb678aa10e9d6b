package broker

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// groupCollector exports the consumer groups: how many are in each state,
// and per group/topic/partition the committed offset and the lag behind the
// high watermark, under kafka_exporter's names so existing dashboards work.
type groupCollector struct {
	b                   *Broker
	states, offset, lag *prometheus.Desc
}

func newGroupCollector(b *Broker) *groupCollector {
	labels := []string{"consumergroup", "topic", "partition"}
	return &groupCollector{
		b:      b,
		states: prometheus.NewDesc("sluice_consumer_groups", "Consumer groups, by state.", []string{"state"}, nil),
		offset: prometheus.NewDesc("kafka_consumergroup_current_offset", "Committed offset of a group in a partition.", labels, nil),
		lag:    prometheus.NewDesc("kafka_consumergroup_lag", "High watermark minus the committed offset.", labels, nil),
	}
}

func (c *groupCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.states
	ch <- c.offset
	ch <- c.lag
}

func (c *groupCollector) Collect(ch chan<- prometheus.Metric) {
	if c.b.groups == nil {
		return
	}
	states, offsets := c.b.groups.Snapshot()
	for s, n := range states {
		ch <- prometheus.MustNewConstMetric(c.states, prometheus.GaugeValue, float64(n), s)
	}
	for _, o := range offsets {
		p := c.b.partition(o.Topic, o.Partition)
		if p == nil {
			continue
		}
		part := strconv.Itoa(int(o.Partition))
		ch <- prometheus.MustNewConstMetric(c.offset, prometheus.GaugeValue, float64(o.Offset), o.Group, o.Topic, part)
		ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(max(p.highWatermark()-o.Offset, 0)), o.Group, o.Topic, part)
	}
}
