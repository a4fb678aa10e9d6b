package broker_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testbroker"
)

// TestProtocolEdgeCases covers answers real clients depend on beyond the
// happy path.
func TestProtocolEdgeCases(t *testing.T) {
	b := testbroker.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	t.Run("describe-configs-empty-names-means-all", func(t *testing.T) {
		create := kmsg.NewPtrCreateTopicsRequest()
		ct := kmsg.NewCreateTopicsRequestTopic()
		ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "described", 1, 1
		create.Topics = append(create.Topics, ct)
		if _, err := create.RequestWith(ctx, cl); err != nil {
			t.Fatal(err)
		}
		req := kmsg.NewPtrDescribeConfigsRequest()
		rr := kmsg.NewDescribeConfigsRequestResource()
		rr.ResourceType, rr.ResourceName, rr.ConfigNames = kmsg.ConfigResourceTypeTopic, "described", []string{}
		req.Resources = append(req.Resources, rr)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(resp.Resources[0].Configs); n < 20 {
			t.Fatalf("kafkajs-style empty config_names returned %d configs, want all of them", n)
		}
	})

	t.Run("config-values-are-case-sensitive", func(t *testing.T) {
		req := kmsg.NewPtrCreateTopicsRequest()
		ct := kmsg.NewCreateTopicsRequestTopic()
		ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "cased", 1, 1
		v := "Compact"
		ct.Configs = append(ct.Configs, kmsg.CreateTopicsRequestTopicConfig{Name: "cleanup.policy", Value: &v})
		req.Topics = append(req.Topics, ct)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.Topics[0].ErrorCode; code != kerr.InvalidConfig.Code {
			t.Fatalf("cleanup.policy=Compact: %v, want INVALID_CONFIG (it would be ignored)", kerr.ErrorForCode(code))
		}
	})

	t.Run("partition-count-is-bounded", func(t *testing.T) {
		req := kmsg.NewPtrCreateTopicsRequest()
		ct := kmsg.NewCreateTopicsRequestTopic()
		ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "huge", 1<<31-1, 1
		req.Topics = append(req.Topics, ct)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.Topics[0].ErrorCode; code != kerr.PolicyViolation.Code {
			t.Fatalf("2^31-1 partitions: %v, want POLICY_VIOLATION", kerr.ErrorForCode(code))
		}
	})

	t.Run("acks0-error-closes-connection", func(t *testing.T) {
		c := compatConn(t, b.Addr())
		compatSend(t, c, compatProduceRequest(9, 0, "no-such-topic-acks0", 7, compatBatch(1, 10)), 1)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if n, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("after a failed acks=0 produce: read %d bytes, err %v; want the connection closed", n, err)
		}
	})

	t.Run("internal-topics-refuse-client-writes", func(t *testing.T) {
		// FindCoordinator creates __consumer_offsets.
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorKey = "g"
		if _, err := fc.RequestWith(ctx, cl); err != nil {
			t.Fatal(err)
		}
		c := compatConn(t, b.Addr())
		var p kmsg.ProduceResponseTopicPartition
		for i := 0; i < 50; i++ {
			p = (&compatProducer{c: c, corr: int32(i)}).produce(t, 9, -1, "__consumer_offsets", 0, compatBatch(1, 10))
			if p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if p.ErrorCode != kerr.InvalidTopicException.Code {
			t.Fatalf("client produce to __consumer_offsets: %v, want INVALID_TOPIC_EXCEPTION", kerr.ErrorForCode(p.ErrorCode))
		}
	})
}
