package broker_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/sluice-io/sluice/broker"
	"github.com/sluice-io/sluice/internal/testbroker"
)

// gossipConfig is a single node with a gossip port: it registers itself
// in the metadata like any cluster member, so it has a broker epoch.
func gossipConfig(t *testing.T) broker.Config {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cfg := testbroker.Config(t.TempDir())
	cfg.GossipAddr = addr
	return cfg
}

// selfEpoch waits until the node shows itself registered and unfenced, and
// returns its broker epoch.
func selfEpoch(t *testing.T, b *broker.Broker) int64 {
	t.Helper()
	return waitFor(t, func() (int64, bool) {
		st, err := b.ClusterStatus()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range st.Members {
			if m.ID == st.NodeID {
				return m.BrokerEpoch, m.BrokerEpoch > 0 && !m.Fenced
			}
		}
		return 0, false
	})
}

// leaderEpoch waits until partition 0 of topic is led by node 1 and
// returns its topic id and leader epoch.
func leaderEpoch(t *testing.T, ctx context.Context, adm *kadm.Client, topic string) ([16]byte, int32) {
	t.Helper()
	type led struct {
		id    [16]byte
		epoch int32
	}
	got := waitFor(t, func() (led, bool) {
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return led{}, false
		}
		p, ok := md.Topics[topic].Partitions[0]
		return led{md.Topics[topic].ID, p.LeaderEpoch}, ok && p.Leader == 1
	})
	return got.id, got.epoch
}

// alterPartition sends an AlterPartition for partition 0 with ISR [1]; kgo
// sends the highest version both sides know (v3) unless cl pins a lower one.
func alterPartition(t *testing.T, ctx context.Context, cl *kgo.Client, brokerEpoch int64,
	topicID [16]byte, leaderEpoch, partitionEpoch int32, isrEpoch int64) *kmsg.AlterPartitionResponse {
	t.Helper()
	req := kmsg.NewPtrAlterPartitionRequest()
	req.BrokerID, req.BrokerEpoch = 1, brokerEpoch
	rt := kmsg.NewAlterPartitionRequestTopic()
	rt.TopicID = topicID
	rp := kmsg.NewAlterPartitionRequestTopicPartition()
	rp.LeaderEpoch, rp.PartitionEpoch, rp.NewISR = leaderEpoch, partitionEpoch, []int32{1}
	e := kmsg.NewAlterPartitionRequestTopicPartitionNewEpochISR()
	e.BrokerID, e.BrokerEpoch = 1, isrEpoch
	rp.NewEpochISR = append(rp.NewEpochISR, e)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// partitionCode is the error of the response's only partition (-1 when
// the request failed as a whole).
func partitionCode(r *kmsg.AlterPartitionResponse) int16 {
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
		return -1
	}
	return r.Topics[0].Partitions[0].ErrorCode
}

// TestAlterPartitionBrokerEpoch: the controller takes an ISR change only
// from the leader's registered broker epoch (STALE_BROKER_EPOCH for the
// whole request otherwise), and with v3 only ISR members at their
// registered epochs or -1 (INELIGIBLE_REPLICA otherwise, KIP-903).
func TestAlterPartitionBrokerEpoch(t *testing.T) {
	b := testbroker.StartConfig(t, gossipConfig(t))
	epoch := selfEpoch(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "ap"); err != nil {
		t.Fatal(err)
	}
	id, le := leaderEpoch(t, ctx, adm, "ap")

	for _, stale := range []int64{epoch - 1, epoch + 1, -1} {
		r := alterPartition(t, ctx, cl, stale, id, le, 0, epoch)
		if r.ErrorCode != kerr.StaleBrokerEpoch.Code || len(r.Topics) != 0 {
			t.Errorf("broker epoch %d (registered %d): error %d with %d topics, want STALE_BROKER_EPOCH for the request",
				stale, epoch, r.ErrorCode, len(r.Topics))
		}
	}

	// The partition epoch comes back with the answer, whatever it is.
	r := alterPartition(t, ctx, cl, epoch, id, le, -5, epoch)
	if c := partitionCode(r); c != kerr.InvalidUpdateVersion.Code {
		t.Fatalf("stale partition epoch: code %d", c)
	}
	pe := r.Topics[0].Partitions[0].PartitionEpoch

	r = alterPartition(t, ctx, cl, epoch, id, le, pe, epoch-1)
	if c := partitionCode(r); r.ErrorCode != 0 || c != kerr.IneligibleReplica.Code {
		t.Errorf("ISR member at a stale epoch: request %d, partition %d, want INELIGIBLE_REPLICA", r.ErrorCode, c)
	}

	r = alterPartition(t, ctx, cl, epoch, id, le, pe, epoch)
	if c := partitionCode(r); r.ErrorCode != 0 || c != 0 || r.Topics[0].Partitions[0].PartitionEpoch != pe+1 {
		t.Fatalf("matching epochs: request %d, partition %d (%+v), want accepted", r.ErrorCode, c, r.Topics)
	}
	if r.Version != 3 {
		t.Errorf("a default client sent v%d, want v3 (the version our leaders send)", r.Version)
	}
	pe++

	// -1 skips the member check; v2 has no member epochs at all.
	if c := partitionCode(alterPartition(t, ctx, cl, epoch, id, le, pe, -1)); c != 0 {
		t.Errorf("member epoch -1: code %d, want accepted", c)
	}
	pe++
	v := kversion.Stable()
	v.SetMaxKeyVersion(56, 2)
	cl2, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.MaxVersions(v))
	if err != nil {
		t.Fatal(err)
	}
	defer cl2.Close()
	r = alterPartition(t, ctx, cl2, epoch, id, le, pe, 12345) // the member epoch is not sent
	if c := partitionCode(r); c != 0 {
		t.Errorf("v2: code %d, want accepted", c)
	}
	if r.Version != 2 {
		t.Errorf("sent at v%d, want v2", r.Version)
	}
}

// TestRestartGetsNewBrokerEpoch: a restarted process registers with a new
// incarnation, gets a higher broker epoch, and is fenced until the
// controller has taken its old incarnation's leadership away, which shows
// as a new leader epoch once it leads again.
func TestRestartGetsNewBrokerEpoch(t *testing.T) {
	cfg := gossipConfig(t)
	b := testbroker.StartConfig(t, cfg)
	first := selfEpoch(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "rs"); err != nil {
		t.Fatal(err)
	}
	_, le := leaderEpoch(t, ctx, kadm.NewClient(cl), "rs")
	cl.Close()

	b = testbroker.Restart(t, b, cfg)
	second := selfEpoch(t, b)
	if second <= first {
		t.Fatalf("broker epoch after restart %d, before %d: want higher", second, first)
	}
	cl, err = kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, le2 := leaderEpoch(t, ctx, kadm.NewClient(cl), "rs"); le2 <= le {
		t.Errorf("leader epoch after restart %d, before %d: the old incarnation's leadership was not taken away", le2, le)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "rs", Value: []byte("after")}).FirstErr(); err != nil {
		t.Errorf("produce after restart: %v", err)
	}
}
