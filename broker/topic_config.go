package broker

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/sluice-io/sluice/broker/commitlog"
)

// configDef describes one topic-level config: its Kafka name, the broker
// config that supplies its default, the default itself and a validator.
type configDef struct {
	name      string
	brokerKey string
	def       string
	kind      string // LONG, INT, BOOLEAN, STRING, LIST, DOUBLE (DescribeConfigs v3+ types)
	validate  func(string) error
}

const maxLong = "9223372036854775807"

// topicConfigs are the topic configs Kafka knows, with Kafka's defaults.
var topicConfigs = []configDef{
	{name: "cleanup.policy", brokerKey: "log.cleanup.policy", def: "delete", kind: "LIST", validate: oneOfList("delete", "compact")},
	{name: "compression.type", brokerKey: "compression.type", def: "producer", kind: "STRING", validate: oneOf("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")},
	{name: "delete.retention.ms", brokerKey: "log.cleaner.delete.retention.ms", def: "86400000", kind: "LONG", validate: longAtLeast(0)},
	{name: "file.delete.delay.ms", brokerKey: "log.segment.delete.delay.ms", def: "60000", kind: "LONG", validate: longAtLeast(0)},
	{name: "flush.messages", brokerKey: "log.flush.interval.messages", def: maxLong, kind: "LONG", validate: longAtLeast(1)},
	{name: "flush.ms", brokerKey: "log.flush.interval.ms", def: maxLong, kind: "LONG", validate: longAtLeast(0)},
	{name: "index.interval.bytes", brokerKey: "log.index.interval.bytes", def: "4096", kind: "INT", validate: intAtLeast(0)},
	{name: "max.compaction.lag.ms", brokerKey: "log.cleaner.max.compaction.lag.ms", def: maxLong, kind: "LONG", validate: longAtLeast(1)},
	{name: "max.message.bytes", brokerKey: "message.max.bytes", def: "1048588", kind: "INT", validate: intAtLeast(0)},
	{name: "message.timestamp.type", brokerKey: "log.message.timestamp.type", def: "CreateTime", kind: "STRING", validate: oneOf("CreateTime", "LogAppendTime")},
	{name: "message.timestamp.before.max.ms", brokerKey: "log.message.timestamp.before.max.ms", def: maxLong, kind: "LONG", validate: longAtLeast(0)},
	{name: "message.timestamp.after.max.ms", brokerKey: "log.message.timestamp.after.max.ms", def: "3600000", kind: "LONG", validate: longAtLeast(0)},
	{name: "min.cleanable.dirty.ratio", brokerKey: "log.cleaner.min.cleanable.ratio", def: "0.5", kind: "DOUBLE", validate: doubleBetween(0, 1)},
	{name: "min.compaction.lag.ms", brokerKey: "log.cleaner.min.compaction.lag.ms", def: "0", kind: "LONG", validate: longAtLeast(0)},
	{name: "min.insync.replicas", brokerKey: "min.insync.replicas", def: "1", kind: "INT", validate: intAtLeast(1)},
	{name: "preallocate", brokerKey: "log.preallocate", def: "false", kind: "BOOLEAN", validate: isBool},
	{name: "retention.bytes", brokerKey: "log.retention.bytes", def: "-1", kind: "LONG", validate: longAtLeast(-1)},
	{name: "retention.ms", brokerKey: "log.retention.ms", def: "604800000", kind: "LONG", validate: longAtLeast(-1)},
	{name: "segment.bytes", brokerKey: "log.segment.bytes", def: "1073741824", kind: "INT", validate: intAtLeast(14)},
	{name: "segment.index.bytes", brokerKey: "log.index.size.max.bytes", def: "10485760", kind: "INT", validate: intAtLeast(4)},
	{name: "segment.jitter.ms", brokerKey: "log.roll.jitter.ms", def: "0", kind: "LONG", validate: longAtLeast(0)},
	{name: "segment.ms", brokerKey: "log.roll.ms", def: "604800000", kind: "LONG", validate: longAtLeast(1)},
	{name: "unclean.leader.election.enable", brokerKey: "unclean.leader.election.enable", def: "false", kind: "BOOLEAN", validate: isBool},
	{name: "message.downconversion.enable", brokerKey: "log.message.downconversion.enable", def: "true", kind: "BOOLEAN", validate: isBool},
}

var topicConfigByName = func() map[string]*configDef {
	m := make(map[string]*configDef, len(topicConfigs))
	for i := range topicConfigs {
		m[topicConfigs[i].name] = &topicConfigs[i]
	}
	return m
}()

// validateTopicConfig checks one name=value pair, returning an error whose
// text names the config (Kafka's INVALID_CONFIG message style).
func validateTopicConfig(name string, value *string) error {
	d, ok := topicConfigByName[name]
	if !ok {
		return fmt.Errorf("unknown topic config name: %s", name)
	}
	if value == nil {
		return fmt.Errorf("null value not supported for topic config %s", name)
	}
	if err := d.validate(*value); err != nil {
		return fmt.Errorf("invalid value %s for configuration %s: %v", *value, name, err)
	}
	return nil
}

// topicView resolves a topic's effective configs: explicit topic configs
// over the broker's defaults over Kafka's defaults.
type topicView struct {
	explicit map[string]string
	broker   map[string]string
}

func (v topicView) get(name string) (value string, source int8) {
	if s, ok := v.explicit[name]; ok {
		return s, 1 // DYNAMIC_TOPIC_CONFIG
	}
	d := topicConfigByName[name]
	if s, ok := v.broker[d.brokerKey]; ok {
		return s, 4 // STATIC_BROKER_CONFIG
	}
	return d.def, 5 // DEFAULT_CONFIG
}

func (v topicView) long(name string) int64 {
	s, _ := v.get(name)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		n, _ = strconv.ParseInt(topicConfigByName[name].def, 10, 64)
	}
	return n
}

func (v topicView) str(name string) string { s, _ := v.get(name); return s }

// logConfig maps effective topic configs onto the commit log's settings.
func (v topicView) logConfig() commitlog.Config {
	policy := v.str("cleanup.policy")
	return commitlog.Config{
		SegmentBytes:       v.long("segment.bytes"),
		SegmentMs:          v.long("segment.ms"),
		IndexIntervalBytes: v.long("index.interval.bytes"),
		RetentionMs:        v.long("retention.ms"),
		RetentionBytes:     v.long("retention.bytes"),
		Delete:             strings.Contains(policy, "delete"),
		Compact:            strings.Contains(policy, "compact"),
		DeleteRetentionMs:  v.long("delete.retention.ms"),
		MinCompactionLagMs: v.long("min.compaction.lag.ms"),
	}
}

func oneOf(vals ...string) func(string) error {
	return func(s string) error {
		for _, v := range vals {
			if s == v { // case-sensitive, as Kafka validates
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(vals, ", "))
	}
}

func oneOfList(vals ...string) func(string) error {
	one := oneOf(vals...)
	return func(s string) error {
		if strings.TrimSpace(s) == "" {
			return fmt.Errorf("must not be empty")
		}
		for _, part := range strings.Split(s, ",") {
			if err := one(strings.TrimSpace(part)); err != nil {
				return err
			}
		}
		return nil
	}
}

func longAtLeast(min int64) func(string) error {
	return func(s string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return fmt.Errorf("not a number")
		}
		if n < min {
			return fmt.Errorf("must be at least %d", min)
		}
		return nil
	}
}

func intAtLeast(min int64) func(string) error {
	long := longAtLeast(min)
	return func(s string) error {
		if err := long(s); err != nil {
			return err
		}
		if n, _ := strconv.ParseInt(strings.TrimSpace(s), 10, 64); n > math.MaxInt32 {
			return fmt.Errorf("must be at most %d", math.MaxInt32)
		}
		return nil
	}
}

func doubleBetween(lo, hi float64) func(string) error {
	return func(s string) error {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || f < lo || f > hi {
			return fmt.Errorf("must be a number between %g and %g", lo, hi)
		}
		return nil
	}
}

func isBool(s string) error {
	if !strings.EqualFold(s, "true") && !strings.EqualFold(s, "false") {
		return fmt.Errorf("must be true or false")
	}
	return nil
}
