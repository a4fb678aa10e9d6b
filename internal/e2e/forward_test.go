package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// direct sends one request to this very node.
func (n *clusterNode) direct(t *testing.T, req kmsg.Request) kmsg.Response {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.kafka))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		t.Fatalf("%s to node %d: %v", kmsg.NameForKey(req.Key()), n.id, err)
	}
	return resp
}

// TestClusterFollowerForwardsWrites sends to followers only the requests
// whose metadata writes Kafka clients do not route to the controller: they
// forward producer-id blocks, auto-created topics and internal topics to
// the raft leader, as Kafka brokers do.
func TestClusterFollowerForwardsWrites(t *testing.T) {
	nodes := startCluster(t, 3)
	var controller int32 = -1
	for _, n := range nodes {
		waitFor(t, fmt.Sprintf("node %d lists 3 brokers and a controller", n.id), func(ctx context.Context) (bool, string) {
			m, err := n.metadata(ctx)
			if err != nil {
				return false, err.Error()
			}
			ok := len(m.Brokers) == 3 && m.ControllerID >= 1 && (controller == -1 || m.ControllerID == controller)
			if ok {
				controller = m.ControllerID
			}
			return ok, fmt.Sprintf("%d brokers, controller %d", len(m.Brokers), m.ControllerID)
		})
	}
	var leader *clusterNode
	var followers []*clusterNode
	for _, n := range nodes {
		if n.id == controller {
			leader = n
		} else {
			followers = append(followers, n)
		}
	}
	t.Logf("controller is node %d", controller)

	// AllocateProducerIds is the controller's: a follower answers
	// NOT_CONTROLLER, the leader a block.
	apReq := kmsg.NewPtrAllocateProducerIDsRequest()
	apReq.BrokerID = followers[0].id
	if r := followers[0].direct(t, apReq).(*kmsg.AllocateProducerIDsResponse); r.ErrorCode != kerr.NotController.Code {
		t.Fatalf("AllocateProducerIds on follower: error %d, want NOT_CONTROLLER", r.ErrorCode)
	}
	if r := leader.direct(t, apReq).(*kmsg.AllocateProducerIDsResponse); r.ErrorCode != 0 || r.ProducerIDLen <= 0 {
		t.Fatalf("AllocateProducerIds on leader: %+v", r)
	}

	// InitProducerId on each follower gets a producer id from a block the
	// follower got from the controller; the blocks never overlap.
	seen := map[int64]int32{}
	for _, f := range followers {
		for range 2 {
			r := f.direct(t, kmsg.NewPtrInitProducerIDRequest()).(*kmsg.InitProducerIDResponse)
			if r.ErrorCode != 0 || r.ProducerID < 0 {
				t.Fatalf("InitProducerId on follower %d: error %d, id %d", f.id, r.ErrorCode, r.ProducerID)
			}
			if other, dup := seen[r.ProducerID]; dup {
				t.Fatalf("producer id %d handed out by nodes %d and %d", r.ProducerID, other, f.id)
			}
			seen[r.ProducerID] = f.id
		}
	}

	// Metadata for an unknown topic on a follower auto-creates it through
	// the controller; every node lists it.
	mReq := kmsg.NewPtrMetadataRequest()
	mReq.AllowAutoTopicCreation = true
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr("auto-on-follower")
	mReq.Topics = append(mReq.Topics, mt)
	r := followers[0].direct(t, mReq).(*kmsg.MetadataResponse)
	if len(r.Topics) != 1 || r.Topics[0].ErrorCode != 0 || len(r.Topics[0].Partitions) == 0 {
		t.Fatalf("auto-create on follower: %+v", r.Topics)
	}
	waitTopic(t, "auto-on-follower", nodes...)

	// FindCoordinator on a follower creates __consumer_offsets through the
	// controller, as an internal topic.
	waitFor(t, "FindCoordinator on a follower", func(ctx context.Context) (bool, string) {
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorKeys = []string{"fwd-group"}
		fr := followers[1].direct(t, fc).(*kmsg.FindCoordinatorResponse)
		if len(fr.Coordinators) != 1 {
			return false, fmt.Sprintf("error %d, %d coordinators", fr.ErrorCode, len(fr.Coordinators))
		}
		return fr.Coordinators[0].ErrorCode == 0, fmt.Sprintf("error %d", fr.Coordinators[0].ErrorCode)
	})
	waitFor(t, "leader lists __consumer_offsets as internal", func(ctx context.Context) (bool, string) {
		m, err := leader.metadata(ctx)
		if err != nil {
			return false, err.Error()
		}
		for _, tp := range m.Topics {
			if tp.Topic != nil && *tp.Topic == "__consumer_offsets" {
				return tp.IsInternal, fmt.Sprintf("internal %v", tp.IsInternal)
			}
		}
		return false, "not listed"
	})

	// An idempotent producer and a consumer group seeded with a follower only.
	const topic, records = "via-follower", 20
	prod, err := kgo.NewClient(kgo.SeedBrokers(followers[0].kafka), kgo.DefaultProduceTopic(topic),
		kgo.AllowAutoTopicCreation(), kgo.RetryTimeout(15*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range records {
		if err := prod.ProduceSync(ctx, kgo.StringRecord(fmt.Sprint(i))).FirstErr(); err != nil {
			t.Fatalf("produce %d through follower: %v", i, err)
		}
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(followers[1].kafka), kgo.ConsumeTopics(topic),
		kgo.ConsumerGroup("fwd-group"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := map[string]bool{}
	for len(got) < records {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records through a follower: %v", len(got), records, ctx.Err())
		}
		fs.EachError(func(tp string, p int32, err error) { t.Logf("fetch %s-%d: %v", tp, p, err) })
		fs.EachRecord(func(r *kgo.Record) { got[string(r.Value)] = true })
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit through follower: %v", err)
	}
}
