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
	for _, c := range []prometheus.Collector{m.connections, m.requests, m.bytesIn, m.bytesOut, m.messagesIn, m.produceErrors, partitions, logSize} {
		reg.MustRegister(c)
	}
	return m
}
