package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// replicatedFlags are the serve flags of the replication tests: RF 3 with
// min.insync.replicas 2, and lag detection short enough for a test.
var replicatedFlags = []string{
	"--set", "default.replication.factor=3", "--set", "min.insync.replicas=2",
	"--set", "replica.lag.time.max.ms=3000",
}

// partitions returns the topic's partitions as node n's Metadata has them.
func (n *clusterNode) partitions(ctx context.Context, topic string) ([]kmsg.MetadataResponseTopicPartition, error) {
	m, err := n.metadata(ctx)
	if err != nil {
		return nil, err
	}
	for _, tp := range m.Topics {
		if tp.Topic != nil && *tp.Topic == topic {
			ps := tp.Partitions
			sort.Slice(ps, func(i, j int) bool { return ps[i].Partition < ps[j].Partition })
			return ps, nil
		}
	}
	return nil, fmt.Errorf("topic %s not listed", topic)
}

// waitFullISR waits until node n shows every partition of topic led with
// an ISR of all replicas.
func waitFullISR(t *testing.T, n *clusterNode, topic string, replicas int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("node %d: every partition of %s has %d in-sync replicas", n.id, topic, replicas), func(ctx context.Context) (bool, string) {
		ps, err := n.partitions(ctx, topic)
		if err != nil {
			return false, err.Error()
		}
		for _, p := range ps {
			if p.Leader < 0 || len(p.ISR) != replicas {
				return false, fmt.Sprintf("partition %d leader %d isr %v", p.Partition, p.Leader, p.ISR)
			}
		}
		return len(ps) > 0, ""
	})
}

// createReplicated creates topic with the given partitions and RF through
// node n.
func createReplicated(t *testing.T, n *clusterNode, topic string, partitions int32, rf int16) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(n.kafka), kgo.RetryTimeout(15*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	waitFor(t, "create "+topic, func(ctx context.Context) (bool, string) {
		resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, rf, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return false, err.Error()
		}
		return true, ""
	})
}

// producerLoad runs idempotent acks=all producers until stopped and keeps
// the acknowledged writes.
type producerLoad struct {
	mu    sync.Mutex
	acked []ackedRecord
	fails int
	stop  chan struct{}
	wg    sync.WaitGroup
}

func startProducers(t *testing.T, seeds []string, topic string, producers, maxPerProducer int) *producerLoad {
	l := &producerLoad{stop: make(chan struct{})}
	for pi := range producers {
		cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(2*time.Millisecond),
			kgo.RecordDeliveryTimeout(60*time.Second), kgo.MetadataMinAge(100*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer cl.Close()
			sem := make(chan struct{}, 64)
			for seq := 0; seq < maxPerProducer; seq++ {
				select {
				case <-l.stop:
					flushBounded(cl)
					return
				case sem <- struct{}{}:
				}
				r := &kgo.Record{Key: []byte(fmt.Sprint(seq % 97)), Value: []byte(recordValue(pi, seq))}
				cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
					<-sem
					l.mu.Lock()
					defer l.mu.Unlock()
					if err != nil {
						l.fails++
						return
					}
					l.acked = append(l.acked, ackedRecord{producer: pi, seq: seq, partition: r.Partition, offset: r.Offset})
				})
			}
			flushBounded(cl)
		}()
	}
	return l
}

// flushBounded waits for a producer's records for at most 60 s: franz-go
// can keep retrying an idempotent batch past its delivery timeout.
func flushBounded(cl *kgo.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl.Flush(ctx)
}

func (l *producerLoad) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

func (l *producerLoad) finish() ([]ackedRecord, int) {
	close(l.stop)
	l.wg.Wait()
	return l.acked, l.fails
}

// readAll consumes every partition of topic from the start to its end.
func readAll(t *testing.T, seeds []string, topic string) []readRecord {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	want := map[int32]int64{}
	offsets := map[int32]kgo.Offset{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Err != nil {
			t.Fatalf("end offset of %d: %v", o.Partition, o.Err)
		}
		want[o.Partition] = o.Offset
		offsets[o.Partition] = kgo.NewOffset().AtStart()
	})
	cl.AddConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets})
	var out []readRecord
	got := map[int32]int64{}
	done := func() bool {
		for p, end := range want {
			if got[p] < end {
				return false
			}
		}
		return true
	}
	for !done() {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: %v (have %v of %v)", topic, ctx.Err(), got, want)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Logf("fetch %d: %v", p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, readRecord{value: string(r.Value), partition: r.Partition, offset: r.Offset})
			got[r.Partition] = r.Offset + 1
		})
	}
	return out
}

// segmentBytes concatenates a partition replica's segment files.
func segmentBytes(t *testing.T, n *clusterNode, topic string, p int32) []byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(n.dir, "data", fmt.Sprintf("%s-%d", topic, p), "*.log"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files) // base offsets are zero-padded to 20 digits
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

// TestReplicationHardBounce SIGKILLs the leader of a replicated partition
// five times under idempotent acks=all producers: every acknowledged
// record is read back exactly once at its acknowledged offset, in order,
// and the three replicas end byte-identical.
func TestReplicationHardBounce(t *testing.T) {
	nodes := startCluster(t, 3, replicatedFlags...)
	byID := map[int32]*clusterNode{}
	var seeds []string
	for _, n := range nodes {
		byID[n.id] = n
		seeds = append(seeds, n.kafka)
	}
	const topic = "bounce"
	createReplicated(t, nodes[0], topic, 3, 3)
	waitFullISR(t, nodes[0], topic, 3)

	load := startProducers(t, seeds, topic, 2, 1_000_000)
	waitFor(t, "first acknowledged writes", func(context.Context) (bool, string) {
		return load.count() > 1000, fmt.Sprint(load.count())
	})
	for round := 1; round <= 5; round++ {
		var victim *clusterNode
		var other *clusterNode
		waitFor(t, "leader of partition 0", func(ctx context.Context) (bool, string) {
			ps, err := nodes[0].partitions(ctx, topic)
			if err != nil {
				return false, err.Error()
			}
			victim = byID[ps[0].Leader]
			return victim != nil, fmt.Sprint(ps[0].Leader)
		})
		for _, n := range nodes {
			if n != victim {
				other = n
			}
		}
		before := load.count()
		killed := time.Now()
		victim.kill()
		waitFor(t, fmt.Sprintf("round %d: a new leader for partition 0", round), func(ctx context.Context) (bool, string) {
			ps, err := other.partitions(ctx, topic)
			if err != nil {
				return false, err.Error()
			}
			return ps[0].Leader >= 0 && ps[0].Leader != victim.id, fmt.Sprintf("leader %d isr %v", ps[0].Leader, ps[0].ISR)
		})
		t.Logf("round %d: killed node %d; new leader elected after %s", round, victim.id, time.Since(killed).Round(time.Millisecond))
		waitFor(t, fmt.Sprintf("round %d: writes acknowledged after the kill", round), func(context.Context) (bool, string) {
			return load.count() > before+500, fmt.Sprint(load.count() - before)
		})
		victim.start()
		waitFullISR(t, other, topic, 3)
	}
	acked, fails := load.finish()
	t.Logf("%d writes acknowledged, %d failed", len(acked), fails)
	read := readAll(t, seeds, topic)
	rep := checkHistory(acked, read)
	t.Logf("history: %s", rep)
	if !rep.ok() {
		t.Fatalf("history check failed: %s", rep)
	}

	// Quiet, then stop everything: the replicas must be byte-identical.
	waitFullISR(t, nodes[0], topic, 3)
	time.Sleep(2 * time.Second)
	for _, n := range nodes {
		n.stop()
	}
	for _, n := range nodes {
		log, _ := os.ReadFile(n.logPath)
		t.Logf("node %d: %d diverged-replica truncations, %d out-of-range resets", n.id,
			bytes.Count(log, []byte("truncating diverged replica")), bytes.Count(log, []byte("replica ahead of the leader"))+bytes.Count(log, []byte("behind the leader's log start")))
	}
	for p := range int32(3) {
		want := segmentBytes(t, nodes[0], topic, p)
		if len(want) == 0 {
			t.Errorf("partition %d: node %d holds no data", p, nodes[0].id)
		}
		for _, n := range nodes[1:] {
			if got := segmentBytes(t, n, topic, p); !bytes.Equal(got, want) {
				t.Errorf("partition %d: node %d holds %d bytes, node %d %d bytes, not identical", p, n.id, len(got), nodes[0].id, len(want))
			}
		}
	}
}

// TestReplicationRollingRestart restarts every node in turn (SIGTERM, a
// controlled shutdown that moves leaderships first) under idempotent
// acks=all producers: no produce fails (clients see only retriable errors,
// which they retry) and every acknowledged record is read back once.
func TestReplicationRollingRestart(t *testing.T) {
	nodes := startCluster(t, 3, replicatedFlags...)
	var seeds []string
	for _, n := range nodes {
		seeds = append(seeds, n.kafka)
	}
	const topic = "rolling"
	createReplicated(t, nodes[0], topic, 3, 3)
	waitFullISR(t, nodes[0], topic, 3)
	load := startProducers(t, seeds, topic, 2, 1_000_000)
	waitFor(t, "first acknowledged writes", func(context.Context) (bool, string) {
		return load.count() > 1000, fmt.Sprint(load.count())
	})
	for i, n := range nodes {
		other := nodes[(i+1)%len(nodes)]
		began := time.Now()
		n.stop()
		t.Logf("node %d stopped in %s", n.id, time.Since(began).Round(time.Millisecond))
		before := load.count()
		waitFor(t, fmt.Sprintf("writes acknowledged with node %d down", n.id), func(context.Context) (bool, string) {
			return load.count() > before+500, fmt.Sprint(load.count() - before)
		})
		n.start()
		waitFullISR(t, other, topic, 3)
	}
	acked, fails := load.finish()
	t.Logf("%d writes acknowledged, %d failed", len(acked), fails)
	if fails > 0 {
		t.Errorf("%d produces failed during the rolling restart", fails)
	}
	rep := checkHistory(acked, readAll(t, seeds, topic))
	t.Logf("history: %s", rep)
	if !rep.ok() {
		t.Fatalf("history check failed: %s", rep)
	}
}
