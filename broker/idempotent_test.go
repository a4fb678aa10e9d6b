package broker_test

import (
	"encoding/binary"
	"hash/crc32"
	"math"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker"
	"github.com/sluice-io/sluice/internal/testbroker"
)

// idemBatch is a batch of n records from producer pid at epoch and seq.
func idemBatch(pid int64, epoch int16, seq int32, n int) []byte {
	b := compatBatchAt(time.Now().UnixMilli(), n, 10)
	binary.BigEndian.PutUint64(b[43:], uint64(pid))
	binary.BigEndian.PutUint16(b[51:], uint16(epoch))
	binary.BigEndian.PutUint32(b[53:], uint32(seq))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// produceRaw sends one batch to partition 0 of topic with acks=all and
// returns the partition's answer.
func produceRaw(t *testing.T, cl *kgo.Client, topic string, batch []byte) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 10_000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(compatCtx(t, 30*time.Second), cl)
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	return resp.Topics[0].Partitions[0]
}

// initProducerID sends InitProducerId on c itself: a client library would
// route a transactional one to a transaction coordinator first.
func initProducerID(t *testing.T, c net.Conn, version int16, txnID *string, pid int64, epoch int16) *kmsg.InitProducerIDResponse {
	t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.Version = version
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = txnID, pid, epoch
	req.TransactionTimeoutMillis = 60_000
	return compatRequest(t, c, req, 7).(*kmsg.InitProducerIDResponse)
}

func TestInitProducerID(t *testing.T) {
	cfg := testbroker.Config(t.TempDir())
	b := testbroker.StartConfig(t, cfg)
	cl := compatConn(t, b.Addr())
	advertised := false
	for _, k := range compatApiVersions(t, cl, 3, 1).ApiKeys {
		advertised = advertised || (k.ApiKey == 22 && k.MinVersion == 0 && k.MaxVersion == 5)
	}
	if !advertised {
		t.Fatal("ApiVersions does not advertise InitProducerId v0-5: clients would produce without idempotence")
	}

	seen := map[int64]bool{}
	fresh := func(r *kmsg.InitProducerIDResponse) {
		t.Helper()
		if r.ErrorCode != 0 || r.ProducerID < 0 || r.ProducerEpoch != 0 || seen[r.ProducerID] {
			t.Fatalf("want a fresh id at epoch 0: error %d, id %d, epoch %d (seen %v)", r.ErrorCode, r.ProducerID, r.ProducerEpoch, seen[r.ProducerID])
		}
		seen[r.ProducerID] = true
	}
	for v := int16(0); v <= 5; v++ {
		fresh(initProducerID(t, cl, v, nil, -1, -1))
	}
	first := initProducerID(t, cl, 5, nil, -1, -1)
	fresh(first)

	// KIP-360: the holder of an id asks again with it and gets the next epoch.
	r := initProducerID(t, cl, 3, nil, first.ProducerID, 0)
	if r.ErrorCode != 0 || r.ProducerID != first.ProducerID || r.ProducerEpoch != 1 {
		t.Errorf("epoch bump: error %d, id %d, epoch %d", r.ErrorCode, r.ProducerID, r.ProducerEpoch)
	}
	// At the last epoch, and for an id never handed out: a fresh id.
	fresh(initProducerID(t, cl, 4, nil, first.ProducerID, math.MaxInt16-1))
	fresh(initProducerID(t, cl, 4, nil, 1<<40, 3))

	for name, c := range map[string]struct {
		txn   *string
		pid   int64
		epoch int16
		want  int16
	}{
		"id without epoch": {nil, 5, -1, kerr.InvalidRequest.Code},
		"epoch without id": {nil, -1, 2, kerr.InvalidRequest.Code},
		"empty txn id":     {kmsg.StringPtr(""), -1, -1, kerr.InvalidRequest.Code},
	} {
		if r := initProducerID(t, cl, 4, c.txn, c.pid, c.epoch); r.ErrorCode != c.want || r.ProducerID != -1 {
			t.Errorf("%s: error %d, id %d; want error %d", name, r.ErrorCode, r.ProducerID, c.want)
		}
	}

	// A transactional id: each fresh init fences the previous holder, which
	// may not claim the new epoch by re-initializing with its old one.
	a := initProducerID(t, cl, 4, kmsg.StringPtr("app-1"), -1, -1)
	fresh(a)
	if r := initProducerID(t, cl, 4, kmsg.StringPtr("app-1"), -1, -1); r.ErrorCode != 0 || r.ProducerID != a.ProducerID || r.ProducerEpoch != 1 {
		t.Fatalf("second init of app-1: error %d, id %d, epoch %d", r.ErrorCode, r.ProducerID, r.ProducerEpoch)
	}
	if r := initProducerID(t, cl, 4, kmsg.StringPtr("app-1"), a.ProducerID, 0); r.ErrorCode != kerr.ProducerFenced.Code {
		t.Fatalf("the fenced holder's re-init: error %d, id %d, epoch %d; want PRODUCER_FENCED", r.ErrorCode, r.ProducerID, r.ProducerEpoch)
	}
	// An idempotent producer naming a transactional producer's id gets an
	// id of its own, not that one at a bumped epoch.
	fresh(initProducerID(t, cl, 4, nil, a.ProducerID, 1))

	// After a restart, ids come from a new block: none is handed out twice.
	cl.Close()
	b = testbroker.Restart(t, b, cfg)
	cl = compatConn(t, b.Addr())
	for range 3 {
		fresh(initProducerID(t, cl, 5, nil, -1, -1))
	}
}

// The sequence rules as a client meets them on the wire, and across a
// restart of the broker.
func TestIdempotentProduceRules(t *testing.T) {
	cfg := testbroker.Config(t.TempDir())
	b := testbroker.StartConfig(t, cfg)
	adm, cl := compatAdmin(t, b.Addr())
	const topic = "idem-rules"
	compatCreateTopic(t, adm, topic, 1, nil)
	pid := initProducerID(t, compatConn(t, b.Addr()), 5, nil, -1, -1).ProducerID

	type step struct {
		name  string
		batch []byte
		code  int16
		base  int64
	}
	run := func(steps []step) {
		t.Helper()
		for _, s := range steps {
			got := produceRaw(t, cl, topic, s.batch)
			if got.ErrorCode != s.code || (s.code == 0 && got.BaseOffset != s.base) {
				t.Errorf("%s: error %s, base %d; want %s at %d", s.name,
					compatErrName(got.ErrorCode), got.BaseOffset, compatErrName(s.code), s.base)
			}
		}
	}
	ooo, epochErr, invalid := kerr.OutOfOrderSequenceNumber.Code, kerr.InvalidProducerEpoch.Code, kerr.InvalidRecord.Code
	run([]step{
		{"first", idemBatch(pid, 0, 0, 3), 0, 0},
		{"second", idemBatch(pid, 0, 3, 2), 0, 3},
		{"retry of first", idemBatch(pid, 0, 0, 3), 0, 0},
		{"retry of second", idemBatch(pid, 0, 3, 2), 0, 3},
		{"gap", idemBatch(pid, 0, 6, 1), ooo, 0},
		{"no sequence", idemBatch(pid, 0, -1, 1), invalid, 0},
		{"next", idemBatch(pid, 0, 5, 1), 0, 5},
		{"bumped epoch not at 0", idemBatch(pid, 1, 6, 1), ooo, 0},
		{"bumped epoch", idemBatch(pid, 1, 0, 1), 0, 6},
		{"stale epoch", idemBatch(pid, 0, 6, 1), epochErr, 0},
	})

	// After a restart the broker still knows the producer: the retry is a
	// duplicate at its original offset and the sequence goes on.
	cl.Close()
	b = testbroker.Restart(t, b, cfg)
	adm, cl = compatAdmin(t, b.Addr())
	run([]step{
		{"retry after restart", idemBatch(pid, 1, 0, 1), 0, 6},
		{"gap after restart", idemBatch(pid, 1, 2, 1), ooo, 0},
		{"stale epoch after restart", idemBatch(pid, 0, 6, 1), epochErr, 0},
		{"next after restart", idemBatch(pid, 1, 1, 1), 0, 7},
	})
	if end := compatEndOffset(t, adm, topic, 0); end != 8 {
		t.Errorf("end offset %d, want 8: duplicates were written", end)
	}
}

func TestProducerIDExpirationSettings(t *testing.T) {
	var c broker.Config
	if err := c.ApplySetting("producer.id.expiration.ms", "1500"); err != nil || c.ProducerIDExpiration != 1500*time.Millisecond {
		t.Errorf("producer.id.expiration.ms=1500: %v, %v", err, c.ProducerIDExpiration)
	}
	if err := c.ApplySetting("producer.id.expiration.check.interval.ms", "20"); err != nil || c.ProducerIDExpirationCheck != 20*time.Millisecond {
		t.Errorf("producer.id.expiration.check.interval.ms=20: %v, %v", err, c.ProducerIDExpirationCheck)
	}
	for _, v := range []string{"0", "-1", "soon"} {
		if err := c.ApplySetting("producer.id.expiration.ms", v); err == nil {
			t.Errorf("producer.id.expiration.ms=%s accepted", v)
		}
	}
}

// The broker's background check forgets a silent producer: its next batch
// is then accepted at any sequence, as for a producer never seen.
func TestProducerStateExpires(t *testing.T) {
	b := testbroker.Start(t, func(c *broker.Config) {
		c.ProducerIDExpiration = 100 * time.Millisecond
		c.ProducerIDExpirationCheck = 20 * time.Millisecond
	})
	adm, cl := compatAdmin(t, b.Addr())
	const topic = "idem-expiry"
	compatCreateTopic(t, adm, topic, 1, nil)
	pid := initProducerID(t, compatConn(t, b.Addr()), 5, nil, -1, -1).ProducerID
	if got := produceRaw(t, cl, topic, idemBatch(pid, 0, 0, 1)); got.ErrorCode != 0 {
		t.Fatalf("first batch: %s", compatErrName(got.ErrorCode))
	}
	if got := produceRaw(t, cl, topic, idemBatch(pid, 0, 5, 1)); got.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("gap while the producer is known: %s", compatErrName(got.ErrorCode))
	}
	waitFor(t, func() (struct{}, bool) {
		got := produceRaw(t, cl, topic, idemBatch(pid, 0, 5, 1))
		return struct{}{}, got.ErrorCode == 0
	})
}
