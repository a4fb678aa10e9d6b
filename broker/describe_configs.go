package broker

import (
	"sort"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeConfigs: v1-4
//
// Topic resources list every topic config with its effective value and
// source (topic override, static broker config, default) and, when asked,
// its synonyms; broker resources list the broker's static configs. v3+
// carries config types. Unknown resources get Kafka's errors.

func init() { register(32, 1, 4, handleDescribeConfigs) }

var configKinds = map[string]kmsg.ConfigType{
	"BOOLEAN": kmsg.ConfigTypeBoolean, "STRING": kmsg.ConfigTypeString, "INT": kmsg.ConfigTypeInt,
	"LONG": kmsg.ConfigTypeLong, "DOUBLE": kmsg.ConfigTypeDouble, "LIST": kmsg.ConfigTypeList,
}

func handleDescribeConfigs(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		want := func(name string) bool {
			if len(rr.ConfigNames) == 0 {
				return true // null or empty means all, as in Kafka (kafkajs sends [])
			}
			for _, n := range rr.ConfigNames {
				if n == name {
					return true
				}
			}
			return false
		}
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			t := b.topicByName(rr.ResourceName)
			if t == nil {
				sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				break
			}
			v := t.view.Load()
			for _, d := range topicConfigs {
				if want(d.name) {
					sr.Configs = append(sr.Configs, topicConfigEntry(b, v, &d, req.IncludeSynonyms))
				}
			}
		case kmsg.ConfigResourceTypeBroker:
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(b.cfg.NodeID)) {
				sr.ErrorCode = kerr.InvalidRequest.Code
				msg := "unknown broker id " + rr.ResourceName
				sr.ErrorMessage = &msg
				break
			}
			for _, c := range b.brokerConfigs() {
				if want(c.Name) {
					sr.Configs = append(sr.Configs, c)
				}
			}
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			msg := "unsupported resource type " + rr.ResourceType.String()
			sr.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return done(resp)
}

func topicConfigEntry(b *Broker, v *topicView, d *configDef, synonyms bool) kmsg.DescribeConfigsResponseResourceConfig {
	val, src := v.get(d.name)
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	c.Name, c.Value = d.name, &val
	c.Source = kmsg.ConfigSource(src)
	c.IsDefault = src == 5
	c.ConfigType = configKinds[d.kind]
	if synonyms {
		if s, ok := v.explicit[d.name]; ok {
			c.ConfigSynonyms = append(c.ConfigSynonyms, synonym(d.name, s, kmsg.ConfigSourceDynamicTopicConfig))
		}
		if s, ok := b.cfg.Settings[d.brokerKey]; ok {
			c.ConfigSynonyms = append(c.ConfigSynonyms, synonym(d.brokerKey, s, kmsg.ConfigSourceStaticBrokerConfig))
		}
		c.ConfigSynonyms = append(c.ConfigSynonyms, synonym(d.brokerKey, d.def, kmsg.ConfigSourceDefaultConfig))
	}
	return c
}

func synonym(name, value string, src kmsg.ConfigSource) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	s.Name, s.Value, s.Source = name, &value, src
	return s
}

// brokerConfigs lists the broker's configs: the defaults it supplies to
// topics and its own settings. All are static (read-only) today.
func (b *Broker) brokerConfigs() []kmsg.DescribeConfigsResponseResourceConfig {
	vals := map[string][2]string{} // name -> value, kind
	for _, d := range topicConfigs {
		vals[d.brokerKey] = [2]string{d.def, d.kind}
	}
	vals["broker.id"] = [2]string{strconv.Itoa(int(b.cfg.NodeID)), "INT"}
	vals["node.id"] = vals["broker.id"]
	vals["log.dirs"] = [2]string{b.cfg.DataDir, "STRING"}
	vals["auto.create.topics.enable"] = [2]string{strconv.FormatBool(b.cfg.AutoCreateTopics), "BOOLEAN"}
	vals["num.partitions"] = [2]string{strconv.Itoa(int(b.cfg.NumPartitions)), "INT"}
	vals["default.replication.factor"] = [2]string{"1", "INT"}
	vals["producer.id.expiration.ms"] = [2]string{strconv.FormatInt(b.cfg.ProducerIDExpiration.Milliseconds(), 10), "INT"}
	vals["socket.request.max.bytes"] = [2]string{strconv.Itoa(int(b.cfg.SocketRequestMaxBytes)), "INT"}
	names := make([]string, 0, len(vals))
	for n := range vals {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]kmsg.DescribeConfigsResponseResourceConfig, 0, len(names))
	for _, n := range names {
		val, src := vals[n][0], kmsg.ConfigSourceDefaultConfig
		if s, ok := b.cfg.Settings[n]; ok {
			val, src = s, kmsg.ConfigSourceStaticBrokerConfig
		}
		c := kmsg.NewDescribeConfigsResponseResourceConfig()
		c.Name, c.Value, c.Source, c.ReadOnly = n, &val, src, true
		c.IsDefault = src == kmsg.ConfigSourceDefaultConfig
		c.ConfigType = configKinds[vals[n][1]]
		out = append(out, c)
	}
	return out
}
