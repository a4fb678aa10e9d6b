package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/sluice-io/sluice/internal/netns"
)

// Fault tests: a three-node cluster whose nodes each live in their own
// network namespace (package netns), every listener on the namespace's
// address, the test's clients in the root namespace. Faults are network
// cuts between nodes, which clients do not see, and SIGSTOP.

// faultNode is a cluster node started inside a namespace.
type faultNode struct {
	*clusterNode
	host *netns.Host
}

// faultCluster is the nodes, their network, and the topic under test.
type faultCluster struct {
	t     *testing.T
	net   *netns.Network
	nodes []*faultNode
	byID  map[int32]*faultNode
	topic string
}

// Fixed ports: every node has an address of its own.
const (
	faultKafkaPort  = "9092"
	faultRaftPort   = "9093"
	faultGossipPort = "7946"
	faultHTTPPort   = "8080"
)

// startFaultCluster starts three nodes in three namespaces with the
// replication flags (RF 3, min.insync.replicas 2, replica.lag.time.max.ms
// 3000) and creates topic with three partitions of RF 3, all in sync.
func startFaultCluster(t *testing.T, topic string) *faultCluster {
	t.Helper()
	nw := netns.New(t, 3) // first, so its cleanup runs after the nodes'
	fc := &faultCluster{t: t, net: nw, byID: map[int32]*faultNode{}, topic: topic}
	var gossips []string
	for _, h := range nw.Hosts() {
		gossips = append(gossips, net.JoinHostPort(h.IP(), faultGossipPort))
	}
	for i, h := range nw.Hosts() {
		id := int32(i + 1)
		nd := newNode(t, "--node-id", fmt.Sprint(id), "--gossip-addr", gossips[i],
			"--bootstrap-expect", "3", "--join", strings.Join(gossips, ","))
		nd.extra = append(nd.extra, replicatedFlags...)
		nd.extra = append(nd.extra, "--log-level", "debug") // kept only when a test fails
		nd.kafka = net.JoinHostPort(h.IP(), faultKafkaPort)
		nd.raft = net.JoinHostPort(h.IP(), faultRaftPort)
		nd.http = net.JoinHostPort(h.IP(), faultHTTPPort)
		fn := &faultNode{clusterNode: &clusterNode{node: nd, id: id, gossip: gossips[i]}, host: h}
		fc.nodes = append(fc.nodes, fn)
		fc.byID[id] = fn
	}
	t.Cleanup(fc.keepLogs)
	for _, n := range fc.nodes {
		n.start()
	}
	createReplicated(t, fc.nodes[0].clusterNode, topic, 3, 3)
	waitFullISR(t, fc.nodes[0].clusterNode, topic, 3)
	return fc
}

// keepLogs copies the nodes' logs out of their temporary directories when
// the test failed, for whoever reads the failure.
func (fc *faultCluster) keepLogs() {
	if !fc.t.Failed() {
		return
	}
	dir, err := os.MkdirTemp("", "sluice-"+fc.t.Name()+"-")
	if err != nil {
		return
	}
	for _, n := range fc.nodes {
		if log, err := os.ReadFile(n.logPath); err == nil {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("node%d.log", n.id)), log, 0o644)
		}
	}
	fc.t.Logf("node logs kept in %s", dir)
}

// start launches `sluice serve` in the node's namespace and waits until its
// Kafka port answers the root namespace. `ip netns exec` executes sluice in
// place, so n.cmd's process is sluice itself: kill, stop and SIGSTOP reach it.
func (n *faultNode) start() {
	n.t.Helper()
	args := append([]string{"serve", "--data-dir", filepath.Join(n.dir, "data"), "--kafka-addr", n.kafka,
		"--http-addr", n.http, "--raft-addr", n.raft}, n.extra...)
	n.cmd = n.host.Command(binary, args...)
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		n.t.Fatal(err)
	}
	defer logf.Close()
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	waitFor(n.t, fmt.Sprintf("node %d listens on %s", n.id, n.kafka), func(context.Context) (bool, string) {
		c, err := net.DialTimeout("tcp", n.kafka, 200*time.Millisecond)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return true, ""
	})
}

func (fc *faultCluster) seeds() []string {
	var s []string
	for _, n := range fc.nodes {
		s = append(s, n.kafka)
	}
	return s
}

// leaderOf waits until node from names a leader of partition p and returns it.
func (fc *faultCluster) leaderOf(from *faultNode, p int32) *faultNode {
	fc.t.Helper()
	var leader *faultNode
	waitFor(fc.t, fmt.Sprintf("node %d names the leader of partition %d", from.id, p), func(ctx context.Context) (bool, string) {
		ps, err := from.partitions(ctx, fc.topic)
		if err != nil {
			return false, err.Error()
		}
		leader = fc.byID[ps[p].Leader]
		return leader != nil, fmt.Sprintf("leader %d", ps[p].Leader)
	})
	return leader
}

// others returns the nodes other than n.
func (fc *faultCluster) others(n *faultNode) []*faultNode {
	var o []*faultNode
	for _, m := range fc.nodes {
		if m != n {
			o = append(o, m)
		}
	}
	return o
}

// waitNewLeader waits until node from names a leader of partition p other
// than old, and returns how long that took since since.
func (fc *faultCluster) waitNewLeader(from, old *faultNode, p int32, since time.Time) time.Duration {
	fc.t.Helper()
	waitFor(fc.t, fmt.Sprintf("node %d names a leader of partition %d other than node %d", from.id, p, old.id), func(ctx context.Context) (bool, string) {
		ps, err := from.partitions(ctx, fc.topic)
		if err != nil {
			return false, err.Error()
		}
		return ps[p].Leader >= 0 && ps[p].Leader != old.id, fmt.Sprintf("leader %d isr %v", ps[p].Leader, ps[p].ISR)
	})
	return time.Since(since)
}

// waitProgress waits for n more acknowledged writes than before.
func waitProgress(t *testing.T, load *producerLoad, what string, before, n int) {
	t.Helper()
	waitFor(t, what, func(context.Context) (bool, string) {
		return load.count() >= before+n, fmt.Sprintf("%d more", load.count()-before)
	})
}

// finish stops the load and checks the outcome: every partition back to an
// ISR of three, every acknowledged write read back once at its offset and in
// order, and, after a quiet moment and a clean stop, byte-identical replicas.
// It returns what was read.
func (fc *faultCluster) finish(load *producerLoad) []readRecord {
	t := fc.t
	t.Helper()
	for _, n := range fc.nodes {
		waitFullISR(t, n.clusterNode, fc.topic, 3)
	}
	var acked []ackedRecord
	var fails int
	within(t, time.Minute, "the producers deliver their last writes", func() { acked, fails = load.finish() })
	t.Logf("%d writes acknowledged, %d failed", len(acked), fails)
	read := readAll(t, fc.seeds(), fc.topic)
	rep := checkHistory(acked, read)
	t.Logf("history: %s", rep)
	if !rep.ok() {
		t.Errorf("history check failed: %s", rep)
	}
	waitFullISR(t, fc.nodes[0].clusterNode, fc.topic, 3)
	time.Sleep(2 * time.Second)
	for _, n := range fc.nodes {
		n.stop()
	}
	for _, n := range fc.nodes {
		log, _ := os.ReadFile(n.logPath)
		t.Logf("node %d: %d diverged-replica truncations, %d gossip deaths seen", n.id, n.truncations(),
			bytes.Count(log, []byte("state=dead")))
	}
	for p := range int32(3) {
		want := segmentBytes(t, fc.nodes[0].clusterNode, fc.topic, p)
		if len(want) == 0 {
			t.Errorf("partition %d: node %d holds no data", p, fc.nodes[0].id)
		}
		for _, n := range fc.nodes[1:] {
			if got := segmentBytes(t, n.clusterNode, fc.topic, p); !bytes.Equal(got, want) {
				t.Errorf("partition %d: node %d holds %d bytes, node %d %d bytes, not identical", p, n.id, len(got), fc.nodes[0].id, len(want))
			}
		}
	}
	return read
}

// within runs f and fails the test if it has not returned after d: kgo
// does not give up on a batch already sent by an idempotent producer, even
// past its context and delivery timeout, so a stuck partition would hang
// the test. f keeps running, abandoned.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: not within %s", what, d)
	}
}

// majorityProducer is the producer number of produceSync's records in the
// history, apart from startProducers' 0, 1, ...
const majorityProducer = 100

// produceSync writes n records to partition p through an idempotent acks=all
// client seeded with seeds, waiting for each, and returns them acknowledged.
func produceSync(t *testing.T, seeds []string, topic string, producer int, p int32, n int) []ackedRecord {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var acked []ackedRecord
	begin := time.Now()
	for seq := range n {
		r := &kgo.Record{Partition: p, Value: []byte(recordValue(producer, seq))}
		var err error
		within(t, 20*time.Second, fmt.Sprintf("write %d through %v", seq, seeds), func() {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = cl.ProduceSync(ctx, r).FirstErr()
		})
		if err != nil {
			t.Fatalf("write %d through %v: %v", seq, seeds, err)
		}
		acked = append(acked, ackedRecord{producer: producer, seq: seq, partition: r.Partition, offset: r.Offset})
	}
	t.Logf("%d acks=all writes to partition %d through %v in %s", n, p, seeds, time.Since(begin).Round(time.Millisecond))
	return acked
}

// truncations counts the times the node's log says it cut a diverged
// suffix off a replica.
func (n *faultNode) truncations() int {
	log, _ := os.ReadFile(n.logPath)
	return bytes.Count(log, []byte("truncating diverged replica"))
}

// rawProducer sends acks=all ProduceRequests to one broker and nowhere
// else: no metadata, no retries, no leader discovery.
type rawProducer struct {
	cl    *kgo.Client
	topic string
}

func newRawProducer(t *testing.T, addr, topic string) *rawProducer {
	t.Helper()
	// Produce v9 names topics; v13 would want topic ids.
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.MaxVersions(kversion.V3_0_0()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &rawProducer{cl: cl, topic: topic}
}

// produce writes one record with value to partition p, the broker waiting
// at most a second for the ISR; nil means the write was acknowledged.
func (rp *rawProducer) produce(ctx context.Context, p int32, value string) error {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = -1
	req.TimeoutMillis = 1000
	tp := kmsg.NewProduceRequestTopicPartition()
	tp.Partition = p
	tp.Records = oneRecordBatch([]byte(value))
	topic := kmsg.NewProduceRequestTopic()
	topic.Topic = rp.topic
	topic.Partitions = append(topic.Partitions, tp)
	req.Topics = append(req.Topics, topic)
	resp, err := rp.cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return err
	}
	pr := resp.(*kmsg.ProduceResponse)
	if len(pr.Topics) != 1 || len(pr.Topics[0].Partitions) != 1 {
		return fmt.Errorf("produce response with %d topics", len(pr.Topics))
	}
	part := pr.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(part.ErrorCode); err != nil {
		return err
	}
	return nil
}

// oneRecordBatch encodes a v2 record batch holding one record without a
// producer id.
func oneRecordBatch(value []byte) []byte {
	rec := kmsg.Record{Value: value}
	rec.Length = int32(len(rec.AppendTo(nil)) - 1) // everything after the 1-byte varint 0
	now := time.Now().UnixMilli()
	b := kmsg.RecordBatch{
		Magic: 2, FirstTimestamp: now, MaxTimestamp: now,
		ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
		NumRecords: 1, Records: rec.AppendTo(nil),
	}
	raw := b.AppendTo(nil)
	b.Length = int32(len(raw) - 12) // after FirstOffset and Length
	raw = b.AppendTo(nil)
	// The CRC covers everything after itself: from Attributes (byte 21) on.
	b.CRC = int32(crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b.AppendTo(nil)
}

// TestFaultIsolateLeader cuts the leader of partition 0 off from the two
// other nodes while clients still reach it, under idempotent acks=all load
// through all nodes. The isolated leader can neither replicate nor shrink
// its ISR, so it acknowledges nothing; the majority elects a new leader;
// after healing, the old leader follows again, drops what it appended
// alone, and the ISR is whole. No acknowledged write is lost, duplicated,
// reordered or moved, and the replicas end byte-identical.
func TestFaultIsolateLeader(t *testing.T) {
	fc := startFaultCluster(t, "isolate")
	old := fc.leaderOf(fc.nodes[0], 0)
	rest := fc.others(old)
	probe := newRawProducer(t, old.kafka, fc.topic)
	// The leader may learn of its partition after the others name it.
	waitFor(t, fmt.Sprintf("node %d acknowledges an acks=all write before the cut", old.id), func(ctx context.Context) (bool, string) {
		if err := probe.produce(ctx, 0, "probe-before"); err != nil {
			return false, err.Error()
		}
		return true, ""
	})

	load := startProducers(t, fc.seeds(), fc.topic, 2, 1_000_000)
	waitProgress(t, load, "first acknowledged writes", 0, 1000)

	before := load.count()
	isolated := time.Now()
	fc.net.Isolate(old.host)
	t.Logf("isolated node %d, leader of partition 0", old.id)

	// Write to the isolated leader directly while the majority moves on.
	type outcome struct {
		value string
		err   error
	}
	probes := make(chan outcome, 64)
	stopProbes := make(chan struct{})
	go func() {
		defer close(probes)
		for i := 0; i < 60; i++ {
			select {
			case <-stopProbes:
				return
			default:
			}
			v := fmt.Sprintf("probe-isolated-%d", i)
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
			err := probe.produce(ctx, 0, v)
			cancel()
			probes <- outcome{v, err}
			time.Sleep(200 * time.Millisecond)
		}
	}()

	took := fc.waitNewLeader(rest[0], old, 0, isolated)
	t.Logf("majority elected a new leader of partition 0 after %s", took.Round(time.Millisecond))
	// Both majority nodes must know it: a client whose first Metadata
	// still names the isolated leader waits out its request timeout
	// (20 s with franz-go's defaults) against a peer that never answers.
	fc.waitNewLeader(rest[1], old, 0, isolated)
	// The load's clients may keep asking the isolated node, whose stale
	// metadata still names itself; a client that knows only the majority
	// must get its writes acknowledged.
	majority := produceSync(t, []string{rest[0].kafka, rest[1].kafka}, fc.topic, majorityProducer, 0, 200)
	t.Logf("load: %d writes acknowledged during the isolation", load.count()-before)
	time.Sleep(2 * time.Second) // longer than one probe's timeout
	close(stopProbes)
	var probeValues []string
	var acked []string
	errs := map[string]int{}
	for o := range probes {
		probeValues = append(probeValues, o.value)
		if o.err == nil {
			acked = append(acked, o.value)
			continue
		}
		var ke *kerr.Error
		if errors.As(o.err, &ke) {
			errs[ke.Message]++
		} else {
			errs["transport: "+o.err.Error()]++
		}
	}
	t.Logf("%d writes to the isolated leader: %d acknowledged, errors %v", len(probeValues), len(acked), errs)
	if len(probeValues) == 0 {
		t.Errorf("no write reached the isolated leader")
	}
	if len(acked) > 0 {
		t.Errorf("isolated node %d acknowledged acks=all writes it could not replicate: %v", old.id, acked)
	}

	fc.net.HealAll()
	healed := time.Now()
	waitFor(t, fmt.Sprintf("node %d back in the ISR of partition 0", old.id), func(ctx context.Context) (bool, string) {
		ps, err := rest[0].partitions(ctx, fc.topic)
		if err != nil {
			return false, err.Error()
		}
		return len(ps[0].ISR) == 3, fmt.Sprintf("leader %d isr %v", ps[0].Leader, ps[0].ISR)
	})
	t.Logf("node %d back in the ISR %s after healing", old.id, time.Since(healed).Round(time.Millisecond))
	waitProgress(t, load, "writes acknowledged after healing", load.count(), 500)

	load.mu.Lock()
	load.acked = append(load.acked, majority...)
	load.mu.Unlock()
	read := fc.finish(load)
	// It had appended the refused writes: it must have cut them off.
	if old.truncations() == 0 {
		t.Errorf("node %d, the isolated leader, never truncated its diverged log", old.id)
	}
	for _, r := range read {
		if strings.HasPrefix(r.value, "probe-isolated-") {
			t.Errorf("%s, refused by the isolated leader, was read back at %d/%d", r.value, r.partition, r.offset)
		}
	}
}

// TestFaultGossipFlap cuts a follower of partition 0 off from the two other
// nodes for 1 to 2 s, five times, under load: about as long as gossip takes
// to declare a node dead (1.5-2.5 s), so members flap, raft may elect, ISRs
// may shrink and grow. At the end the ISR is whole again and the history
// clean.
func TestFaultGossipFlap(t *testing.T) {
	fc := startFaultCluster(t, "flap")
	load := startProducers(t, fc.seeds(), fc.topic, 2, 1_000_000)
	waitProgress(t, load, "first acknowledged writes", 0, 1000)
	cuts := []time.Duration{time.Second, 1500 * time.Millisecond, 2 * time.Second, 1500 * time.Millisecond, 2 * time.Second}
	for round, cut := range cuts {
		leader := fc.leaderOf(fc.nodes[0], 0)
		follower := fc.others(leader)[round%2]
		before := load.count()
		fc.net.Isolate(follower.host)
		time.Sleep(cut)
		fc.net.HealAll()
		t.Logf("round %d: cut follower node %d (leader node %d) for %s; %d writes acknowledged meanwhile",
			round+1, follower.id, leader.id, cut, load.count()-before)
		waitProgress(t, load, fmt.Sprintf("round %d: writes acknowledged after healing", round+1), load.count(), 200)
		time.Sleep(500 * time.Millisecond)
	}
	fc.finish(load)
}

// TestFaultPauseNode freezes the leader of partition 0 with SIGSTOP for
// five seconds under load: the others elect a new leader meanwhile; after
// SIGCONT the old leader comes back as a follower, catches up into the ISR,
// and the history is clean.
func TestFaultPauseNode(t *testing.T) {
	fc := startFaultCluster(t, "pause")
	old := fc.leaderOf(fc.nodes[0], 0)
	rest := fc.others(old)
	load := startProducers(t, fc.seeds(), fc.topic, 2, 1_000_000)
	waitProgress(t, load, "first acknowledged writes", 0, 1000)

	paused := time.Now()
	if err := old.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	var resumed time.Time
	resume := func() {
		if resumed.IsZero() {
			resumed = time.Now()
			old.cmd.Process.Signal(syscall.SIGCONT)
		}
	}
	defer resume()
	// The new leader must come while the old one sleeps.
	var newLeader int32 = -1
	for time.Since(paused) < 5*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ps, err := rest[0].partitions(ctx, fc.topic)
		cancel()
		if err == nil && ps[0].Leader >= 0 && ps[0].Leader != old.id {
			newLeader = ps[0].Leader
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if newLeader < 0 {
		resume()
		t.Fatalf("no new leader of partition 0 within 5s of pausing node %d", old.id)
	}
	t.Logf("paused node %d; node %d leads partition 0 after %s", old.id, newLeader, time.Since(paused).Round(time.Millisecond))
	before := load.count()
	time.Sleep(5*time.Second - time.Since(paused))
	resume()
	t.Logf("resumed node %d; %d writes acknowledged while it was paused", old.id, load.count()-before)

	waitFor(t, fmt.Sprintf("node %d follows node %d and is back in the ISR of partition 0", old.id, newLeader), func(ctx context.Context) (bool, string) {
		ps, err := old.partitions(ctx, fc.topic)
		if err != nil {
			return false, err.Error()
		}
		return ps[0].Leader == newLeader && len(ps[0].ISR) == 3, fmt.Sprintf("leader %d isr %v", ps[0].Leader, ps[0].ISR)
	})
	t.Logf("node %d follows again, in the ISR, %s after resuming", old.id, time.Since(resumed).Round(time.Millisecond))
	waitProgress(t, load, "writes acknowledged after resuming", load.count(), 500)
	fc.finish(load)
}

// TestFaultGossipRejoinsAfterPartition cuts a node off from the two others
// until they declare it dead, heals, and wants the three nodes to list one
// another again and the ISRs whole: a partition that heals must not leave a
// healthy node out of the cluster.
//
// After the heal memberlist alone would keep the node dead for 20 s to more
// than 90 s (its news of the death was retransmitted only during the cut,
// and it push-pulls only with live members): gossip's reconnect loop
// re-joins dead members every second, as Serf does.
func TestFaultGossipRejoinsAfterPartition(t *testing.T) {
	fc := startFaultCluster(t, "rejoin")
	cut := fc.nodes[2]
	fc.net.Isolate(cut.host)
	for _, n := range fc.others(cut) {
		waitFor(t, fmt.Sprintf("node %d drops node %d from its brokers", n.id, cut.id), func(ctx context.Context) (bool, string) {
			m, err := n.metadata(ctx)
			if err != nil {
				return false, err.Error()
			}
			return len(m.Brokers) == 2, fmt.Sprintf("%d brokers", len(m.Brokers))
		})
	}
	time.Sleep(time.Second) // past memberlist's retransmissions of the news
	fc.net.HealAll()
	healed := time.Now()
	for _, n := range fc.nodes {
		waitFor(t, fmt.Sprintf("node %d lists the three brokers again", n.id), func(ctx context.Context) (bool, string) {
			m, err := n.metadata(ctx)
			if err != nil {
				return false, err.Error()
			}
			return len(m.Brokers) == 3, fmt.Sprintf("%d brokers", len(m.Brokers))
		})
	}
	t.Logf("the three nodes list each other %s after healing", time.Since(healed).Round(time.Millisecond))
	waitFullISR(t, fc.nodes[0].clusterNode, fc.topic, 3)
}

// TestFaultMetadataListsItsLeaders cuts a node off from the two others and
// asks every node, the cut one included (clients still reach it), for
// Metadata: each partition's leader must be among the brokers the same
// response lists, or a client cannot route to it (franz-go fails the
// request with "unknown broker"). Metadata's brokers come from this node's
// gossip view, its leaders from the raft log: while the cut node's gossip
// sees the others dead, it must still list the leaders its log names.
func TestFaultMetadataListsItsLeaders(t *testing.T) {
	fc := startFaultCluster(t, "listed")
	cut := fc.nodes[2]
	fc.net.Isolate(cut.host)
	waitFor(t, fmt.Sprintf("node %d's gossip sees the others dead", cut.id), func(ctx context.Context) (bool, string) {
		st, err := fetchMembers(ctx, cut.http)
		if err != nil {
			return false, err.Error()
		}
		alive := 0
		for _, m := range st {
			if m.State == "alive" {
				alive++
			}
		}
		return alive == 1, fmt.Sprintf("%+v", st)
	})
	for _, n := range fc.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		m, err := n.metadata(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		listed := map[int32]bool{}
		for _, b := range m.Brokers {
			listed[b.NodeID] = true
		}
		for _, tp := range m.Topics {
			for _, p := range tp.Partitions {
				if p.Leader >= 0 && !listed[p.Leader] {
					t.Errorf("node %d: Metadata names broker %d leader of %s/%d but lists brokers %v", n.id, p.Leader, *tp.Topic, p.Partition, slices.Sorted(maps.Keys(listed)))
				}
			}
		}
	}
	fc.net.HealAll()
}

// memberState is one gossip member in a node's /api/cluster.
type memberState struct {
	ID    int32  `json:"id"`
	State string `json:"state"`
}

// fetchMembers reads the gossip members from a node's /api/cluster.
func fetchMembers(ctx context.Context, httpAddr string) ([]memberState, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/api/cluster", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st struct {
		Members []memberState `json:"members"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	return st.Members, nil
}
