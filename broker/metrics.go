package broker

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the broker's Prometheus series, named after Kafka's JMX beans
// where one exists.
type metrics struct {
	connections   prometheus.Gauge
	requests      *prometheus.CounterVec
	bytesIn       prometheus.Counter
	bytesOut      prometheus.Counter
	messagesIn    prometheus.Counter
	produceErrors *prometheus.CounterVec
	rebalances    prometheus.Histogram
}

func newMetrics(b *Broker, reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "sluice_broker_connections", Help: "Open client connections.",
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_broker_requests_total", Help: "Requests handled, by API.",
		}, []string{"api"}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kafka_server_brokertopicmetrics_bytesin_total", Help: "Record bytes appended by produce requests.",
		}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kafka_server_brokertopicmetrics_bytesout_total", Help: "Record bytes served by fetch requests.",
		}),
		messagesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kafka_server_brokertopicmetrics_messagesin_total", Help: "Records appended by produce requests.",
		}),
		produceErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sluice_broker_produce_errors_total", Help: "Partition produce errors, by Kafka error.",
		}, []string{"error"}),
		rebalances: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "sluice_consumer_group_rebalance_seconds", Help: "Consumer-group rebalances, from PreparingRebalance to Stable.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300},
		}),
	}
	if reg == nil {
		return m
	}
	partitions := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "kafka_server_replicamanager_partitioncount", Help: "Partitions hosted by this broker.",
	}, func() float64 { return float64(len(b.allPartitions())) })
	logSize := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "sluice_log_size_bytes", Help: "Bytes stored in all partition logs.",
	}, func() float64 {
		var n int64
		for _, p := range b.allPartitions() {
			n += p.log.Size()
		}
		return float64(n)
	})
	for _, c := range []prometheus.Collector{m.connections, m.requests, m.bytesIn, m.bytesOut, m.messagesIn, m.produceErrors, partitions, logSize, newGroupCollector(b), m.rebalances, aliveMembersGauge(b), raftLeaderGauge(b)} {
		reg.MustRegister(c)
	}
	reg.MustRegister(replicaCollectors(b)...)
	return m
}
