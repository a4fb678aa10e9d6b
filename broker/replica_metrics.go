package broker

import "github.com/prometheus/client_golang/prometheus"

// Replication metrics under Kafka's JMX-derived names, so dashboards built
// for Kafka's exporter read them: under-replicated partitions among those
// this broker leads, leaders and, on the controller, offline partitions and
// the active-controller flag.
func replicaCollectors(b *Broker) []prometheus.Collector {
	led := func(under bool) float64 {
		n := 0
		for _, p := range b.allPartitions() {
			if r := p.role.Load(); r.leads() && (!under || len(r.isr) < len(r.replicas)) {
				n++
			}
		}
		return float64(n)
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kafka_server_replicamanager_underreplicatedpartitions",
			Help: "Partitions this broker leads whose ISR is smaller than their replica set.",
		}, func() float64 { return led(true) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kafka_server_replicamanager_leadercount",
			Help: "Partitions this broker leads.",
		}, func() float64 { return led(false) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kafka_controller_kafkacontroller_offlinepartitionscount",
			Help: "Partitions without a leader; reported by the active controller only (0 elsewhere).",
		}, func() float64 {
			if b.meta == nil || !b.meta.IsLeader() {
				return 0
			}
			n := 0
			for _, t := range b.meta.Topics() {
				for _, p := range t.Partitions {
					if p.Leader < 0 {
						n++
					}
				}
			}
			return float64(n)
		}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "kafka_controller_kafkacontroller_activecontrollercount",
			Help: "1 on the active controller (the metadata quorum's raft leader), else 0.",
		}, func() float64 {
			if b.meta != nil && b.meta.IsLeader() {
				return 1
			}
			return 0
		}),
	}
}
