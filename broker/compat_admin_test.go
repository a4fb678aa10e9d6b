package broker_test

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testbroker"
)

// TestCompatAdmin drives the broker's admin APIs with franz-go's kadm, as an
// operator's tooling would, and checks Kafka's answers and error codes.
func TestCompatAdmin(t *testing.T) {
	b := testbroker.Start(t)
	adm, cl := compatAdmin(t, b.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx := compatCtx(t, 2*time.Minute)
	sp := kadm.StringPtr

	t.Run("create-topics", func(t *testing.T) {
		resp, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": sp("3600000"), "cleanup.policy": sp("compact")}, "adm-create")
		if err != nil || resp.NumPartitions != 3 || resp.ReplicationFactor != 1 || resp.ID == (kadm.TopicID{}) {
			t.Fatalf("create: %+v, %v", resp, err)
		}
		if c := resp.Configs["retention.ms"]; c.Value == nil || *c.Value != "3600000" || c.Source != kmsg.ConfigSourceDynamicTopicConfig {
			t.Errorf("created retention.ms: %+v", c)
		}
		for _, tc := range []struct {
			topic   string
			rf      int16
			configs map[string]*string
			want    error
		}{
			{"adm-create", 1, nil, kerr.TopicAlreadyExists},
			{"adm-bad-config", 1, map[string]*string{"retention.ms": sp("forever")}, kerr.InvalidConfig},
			{"adm-bad-config", 1, map[string]*string{"cleanup.policy": sp("shred")}, kerr.InvalidConfig},
			{"adm-bad-config", 1, map[string]*string{"no.such.config": sp("1")}, kerr.InvalidConfig},
			{"bad/name", 1, nil, kerr.InvalidTopicException},
			{"..", 1, nil, kerr.InvalidTopicException},
			{strings.Repeat("x", 250), 1, nil, kerr.InvalidTopicException},
			{"adm-rf3", 3, nil, kerr.InvalidReplicationFactor},
		} {
			resp, err := adm.CreateTopic(ctx, 1, tc.rf, tc.configs, tc.topic)
			if !errors.Is(err, tc.want) || resp.ErrMessage == "" {
				t.Errorf("create %.20s (rf %d, %d configs): %v %q, want %v with a message", tc.topic, tc.rf, len(tc.configs), err, resp.ErrMessage, tc.want)
			}
		}
		tds, err := adm.ListTopics(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"adm-bad-config", "bad/name", "adm-rf3"} {
			if tds.Has(name) {
				t.Errorf("failed creation left topic %s behind", name)
			}
		}
		td := tds["adm-create"]
		if td.ID != resp.ID || len(td.Partitions) != 3 {
			t.Fatalf("listed %+v, want id %v and 3 partitions", td, resp.ID)
		}
		for _, p := range td.Partitions {
			if p.Err != nil || p.Leader != 1 || fmt.Sprint(p.Replicas, p.ISR) != "[1] [1]" {
				t.Errorf("partition %+v", p)
			}
		}
		if rs, err := adm.ValidateCreateTopics(ctx, 1, 1, nil, "adm-validate"); err != nil || rs.Error() != nil {
			t.Errorf("validate-only create: %+v %v", rs, err)
		}
		md, err := adm.Metadata(ctx, "adm-create", "adm-missing", "adm-validate")
		if err != nil || md.Topics["adm-create"].Err != nil || !errors.Is(md.Topics["adm-missing"].Err, kerr.UnknownTopicOrPartition) ||
			!errors.Is(md.Topics["adm-validate"].Err, kerr.UnknownTopicOrPartition) {
			t.Fatalf("metadata: %+v, %v", md.Topics, err)
		}
	})

	t.Run("configs", func(t *testing.T) {
		const topic = "adm-configs"
		compatCreateTopic(t, adm, topic, 1, map[string]*string{"retention.ms": sp("3600000")})
		compatExpectConfig(t, adm, topic, "retention.ms", "3600000", kmsg.ConfigSourceDynamicTopicConfig)
		compatExpectConfig(t, adm, topic, "segment.bytes", "1073741824", kmsg.ConfigSourceDefaultConfig)
		compatExpectConfig(t, adm, topic, "cleanup.policy", "delete", kmsg.ConfigSourceDefaultConfig)
		alter := func(op kadm.IncrementalOp, name, value string, want error) {
			t.Helper()
			rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: op, Name: name, Value: sp(value)}}, topic)
			if err != nil || len(rs) != 1 || !errors.Is(rs[0].Err, want) {
				t.Fatalf("alter %v %s=%s: %+v %v, want %v", op, name, value, rs, err, want)
			}
		}
		alter(kadm.SetConfig, "max.message.bytes", "4096", nil)
		compatExpectConfig(t, adm, topic, "max.message.bytes", "4096", kmsg.ConfigSourceDynamicTopicConfig)
		compatExpectConfig(t, adm, topic, "retention.ms", "3600000", kmsg.ConfigSourceDynamicTopicConfig)
		alter(kadm.AppendConfig, "cleanup.policy", "compact", nil)
		compatExpectConfig(t, adm, topic, "cleanup.policy", "delete,compact", kmsg.ConfigSourceDynamicTopicConfig)
		alter(kadm.SubtractConfig, "cleanup.policy", "delete", nil)
		compatExpectConfig(t, adm, topic, "cleanup.policy", "compact", kmsg.ConfigSourceDynamicTopicConfig)
		alter(kadm.DeleteConfig, "cleanup.policy", "", nil)
		compatExpectConfig(t, adm, topic, "cleanup.policy", "delete", kmsg.ConfigSourceDefaultConfig)
		alter(kadm.SetConfig, "max.message.bytes", "lots", kerr.InvalidConfig)
		alter(kadm.AppendConfig, "retention.ms", "5", kerr.InvalidConfig)
		alter(kadm.SetConfig, "no.such.config", "1", kerr.InvalidConfig)
		if rs, _ := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: sp("1")}}, "adm-missing"); len(rs) != 1 || !errors.Is(rs[0].Err, kerr.UnknownTopicOrPartition) {
			t.Errorf("alter configs of a missing topic: %+v", rs)
		}
		if rcs, _ := adm.DescribeTopicConfigs(ctx, "adm-missing"); len(rcs) != 1 || !errors.Is(rcs[0].Err, kerr.UnknownTopicOrPartition) {
			t.Errorf("describe configs of a missing topic: %+v", rcs)
		}
		compatExpectConfig(t, adm, topic, "max.message.bytes", "4096", kmsg.ConfigSourceDynamicTopicConfig)

		// AlterConfigs (not incremental) replaces the whole set of overrides.
		rs, err := adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "segment.ms", Value: sp("100000")}}, topic)
		if err != nil || len(rs) != 1 || rs[0].Err != nil {
			t.Fatalf("alter configs state: %+v %v", rs, err)
		}
		compatExpectConfig(t, adm, topic, "segment.ms", "100000", kmsg.ConfigSourceDynamicTopicConfig)
		compatExpectConfig(t, adm, topic, "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)
		compatExpectConfig(t, adm, topic, "max.message.bytes", "1048588", kmsg.ConfigSourceDefaultConfig)
		rs, _ = adm.AlterTopicConfigsState(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: sp("-5")}}, topic)
		if len(rs) != 1 || !errors.Is(rs[0].Err, kerr.InvalidConfig) {
			t.Errorf("alter configs state retention.ms=-5: %+v", rs)
		}
		compatExpectConfig(t, adm, topic, "segment.ms", "100000", kmsg.ConfigSourceDynamicTopicConfig)
	})

	t.Run("partitions", func(t *testing.T) {
		const topic = "adm-parts"
		compatCreateTopic(t, adm, topic, 2, nil)
		if rs, err := adm.CreatePartitions(ctx, 3, topic); err != nil || rs.Error() != nil {
			t.Fatalf("grow by 3: %+v %v", rs, err)
		}
		if md, err := adm.Metadata(ctx, topic); err != nil || len(md.Topics[topic].Partitions) != 5 {
			t.Fatalf("after growing: %+v %v", md.Topics[topic], err)
		}
		r := testRecord(topic, 0)
		r.Partition = 4
		if res := cl.ProduceSync(ctx, r); res.FirstErr() != nil || res[0].Record.Offset != 0 {
			t.Fatalf("produce to new partition 4: %v", res.FirstErr())
		}
		for _, set := range []int{2, 5} {
			rs, err := adm.UpdatePartitions(ctx, set, topic)
			if err != nil || !errors.Is(rs[topic].Err, kerr.InvalidPartitions) {
				t.Errorf("set partitions to %d of 5: %+v %v, want INVALID_PARTITIONS", set, rs, err)
			}
		}
		if rs, _ := adm.CreatePartitions(ctx, 1, "adm-missing"); !errors.Is(rs["adm-missing"].Err, kerr.UnknownTopicOrPartition) {
			t.Errorf("grow a missing topic: %+v", rs)
		}
	})

	t.Run("delete-topics", func(t *testing.T) {
		const topic = "adm-delete"
		compatCreateTopic(t, adm, topic, 1, map[string]*string{"retention.ms": sp("1000")})
		compatProduceRange(t, cl, topic, 0, 10)
		oldID := compatTopicID(t, cl, topic)
		if rs, err := adm.DeleteTopics(ctx, topic); err != nil || rs.Error() != nil {
			t.Fatalf("delete: %+v %v", rs, err)
		}
		// kadm's ListTopics may answer from the client's metadata cache;
		// ask the broker.
		req := kmsg.NewPtrMetadataRequest()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		for _, mt := range resp.Topics {
			if mt.Topic != nil && *mt.Topic == topic {
				t.Fatalf("deleted topic still in metadata: %+v", mt)
			}
		}
		if rs, _ := adm.DeleteTopics(ctx, topic); !errors.Is(rs[topic].Err, kerr.UnknownTopicOrPartition) {
			t.Errorf("delete again: %+v", rs)
		}
		compatCreateTopic(t, adm, topic, 1, nil)
		if id := compatTopicID(t, cl, topic); id == oldID {
			t.Errorf("re-created topic kept the old topic id %v", id)
		}
		if end := compatEndOffset(t, adm, topic, 0); end != 0 {
			t.Errorf("re-created topic has end offset %d, want 0", end)
		}
		compatExpectConfig(t, adm, topic, "retention.ms", "604800000", kmsg.ConfigSourceDefaultConfig)
	})

	t.Run("offsets", func(t *testing.T) { compatAdminOffsets(t, b.Addr(), adm, cl) })

	t.Run("log-dirs", func(t *testing.T) {
		const topic = "adm-logdirs"
		compatCreateTopic(t, adm, topic, 1, nil)
		size := func() int64 {
			t.Helper()
			ds, err := adm.DescribeAllLogDirs(ctx, kadm.TopicsSet{topic: {0: {}}})
			if err != nil {
				t.Fatal(err)
			}
			d := ds.Sorted()
			if len(d) != 1 || d[0].Broker != 1 || d[0].Dir == "" || d[0].Err != nil {
				t.Fatalf("log dirs %+v", d)
			}
			p, ok := ds[1].LookupPartition(topic, 0)
			if !ok {
				t.Fatalf("%s/0 not in log dirs %+v", topic, d)
			}
			return p.Size
		}
		before := size()
		compatProduceRange(t, cl, topic, 0, 1000)
		if after := size(); after <= before || after < 10_000 {
			t.Errorf("log dir size %d after producing 1000 records, %d before", after, before)
		}
	})

	t.Run("cluster", func(t *testing.T) {
		resp, err := kmsg.NewPtrDescribeClusterRequest().RequestWith(ctx, cl)
		if err != nil || resp.ErrorCode != 0 || resp.ClusterID == "" || resp.ControllerID != 1 || len(resp.Brokers) != 1 {
			t.Fatalf("describe cluster: %+v %v", resp, err)
		}
		if br := resp.Brokers[0]; br.NodeID != 1 || net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port))) != b.Addr() {
			t.Errorf("broker %+v, want 1 at %s", br, b.Addr())
		}
		md, err := adm.BrokerMetadata(ctx)
		if err != nil || md.Cluster != resp.ClusterID || md.Controller != 1 || len(md.Brokers) != 1 || len(md.Topics) != 0 {
			t.Fatalf("broker metadata: %+v %v", md, err)
		}
		if br := md.Brokers[0]; net.JoinHostPort(br.Host, strconv.Itoa(int(br.Port))) != b.Addr() {
			t.Errorf("metadata broker %+v, want %s", br, b.Addr())
		}
	})

	t.Run("api-versions", func(t *testing.T) {
		vs, err := adm.ApiVersions(ctx)
		if err != nil || len(vs) != 1 {
			t.Fatalf("api versions: %+v %v", vs, err)
		}
		v := vs[1]
		checkRange := func(keys []kmsg.ApiVersionsResponseApiKey, key, lo, hi int16) {
			t.Helper()
			for _, k := range keys {
				if k.ApiKey == key && (k.MinVersion != lo || k.MaxVersion != hi) {
					t.Errorf("%s advertised %d-%d, want %d-%d", kmsg.NameForKey(key), k.MinVersion, k.MaxVersion, lo, hi)
				}
				if k.ApiKey == key {
					return
				}
			}
			t.Errorf("%s not advertised", kmsg.NameForKey(key))
		}
		if v.Err != nil {
			t.Fatal(v.Err)
		}
		checkRange(v.Raw().ApiKeys, 0, 0, 11)
		checkRange(v.Raw().ApiKeys, 1, 4, 12)

		c := compatConn(t, b.Addr())
		resp := compatApiVersions(t, c, 127, 41)
		if resp.ErrorCode != kerr.UnsupportedVersion.Code {
			t.Errorf("ApiVersions v127: error %d, want UNSUPPORTED_VERSION (35)", resp.ErrorCode)
		}
		checkRange(resp.ApiKeys, 0, 0, 11)
		checkRange(resp.ApiKeys, 1, 4, 12)
		checkRange(resp.ApiKeys, 18, 0, 4)
		// The client retries lower on the same connection.
		if resp := compatApiVersions(t, c, 3, 42); resp.ErrorCode != 0 || len(resp.ApiKeys) != len(v.Raw().ApiKeys) {
			t.Errorf("ApiVersions v3 after v127: error %d, %d keys", resp.ErrorCode, len(resp.ApiKeys))
		}
	})
}

// compatExpectConfig describes topic and checks one config's value and source.
func compatExpectConfig(t *testing.T, adm *kadm.Client, topic, name, value string, src kmsg.ConfigSource) {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(compatCtx(t, 30*time.Second), topic)
	if err != nil || len(rcs) != 1 || rcs[0].Err != nil {
		t.Fatalf("describe %s: %+v %v", topic, rcs, err)
	}
	for _, c := range rcs[0].Configs {
		if c.Key == name {
			if c.Value == nil || *c.Value != value || c.Source != src {
				t.Errorf("%s %s = %v (source %v), want %s (source %v)", topic, name, c.MaybeValue(), c.Source, value, src)
			}
			return
		}
	}
	t.Errorf("%s: config %s not described", topic, name)
}
