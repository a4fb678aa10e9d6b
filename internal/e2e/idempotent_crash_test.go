package e2e

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// muteProxy forwards loopback connections to the broker; while muted it
// swallows the broker's answers, so requests the broker acts on go
// unacknowledged and the client must retry them.
type muteProxy struct {
	ln     net.Listener
	target string
	muted  atomic.Bool
	wg     sync.WaitGroup
}

func newMuteProxy(t *testing.T, target string) *muteProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &muteProxy{ln: ln, target: target}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.wg.Add(2)
			go p.pipe(s, c, false)
			go p.pipe(c, s, true)
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *muteProxy) pipe(dst, src net.Conn, answers bool) {
	defer p.wg.Done()
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !(answers && p.muted.Load()) {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestIdempotentProducerSurvivesKills produces with franz-go's idempotent
// producer while the broker is SIGKILLed and restarted three times. Before
// each kill a proxy swallows the broker's answers for a moment: the batches
// the broker wrote then are retried by the client after the restart, and the
// broker must recognise them from the producer state it rebuilt from its
// snapshots and log, or they land twice. Small segments make the state come
// from a snapshot taken at a roll plus the log after it.
func TestIdempotentProducerSurvivesKills(t *testing.T) {
	n := newNode(t)
	proxy := newMuteProxy(t, n.kafka)
	n.extra = []string{"--advertised-kafka-addr", proxy.ln.Addr().String()}
	n.start()
	const topic, partitions = "idem-crash", 3
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	adm := admin(t, n.kafka)
	segBytes := "262144"
	if _, err := adm.CreateTopic(ctx, partitions, 1, map[string]*string{"segment.bytes": &segBytes}, topic); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(proxy.ln.Addr().String()), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(time.Millisecond), kgo.MetadataMinAge(50*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	records := 60_000
	if testing.Short() {
		records = 20_000
	}
	var acked atomic.Int64
	var failed atomic.Value
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		var wg sync.WaitGroup
		sem := make(chan struct{}, 5000)
		for i := range records {
			sem <- struct{}{}
			wg.Add(1)
			r := &kgo.Record{Topic: topic, Partition: int32(i % partitions), Value: fmt.Appendf(nil, "%d", i/partitions)}
			cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				defer wg.Done()
				<-sem
				if err != nil {
					failed.CompareAndSwap(nil, err)
				}
				acked.Add(1)
			})
		}
		wg.Wait()
	}()
	// At a quarter, half and three quarters of the acknowledgements: mute
	// the answers for a moment, kill, restart.
	for kill := 1; kill <= 3; kill++ {
		for acked.Load() < int64(kill*records/4) {
			time.Sleep(time.Millisecond)
		}
		proxy.muted.Store(true)
		time.Sleep(30 * time.Millisecond)
		n.kill()
		proxy.muted.Store(false)
		n.start()
	}
	<-produced
	if err, _ := failed.Load().(error); err != nil {
		t.Fatalf("a record failed: %v", err)
	}

	cons, err := kgo.NewClient(kgo.SeedBrokers(n.kafka), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	next := make([]int, partitions)
	for got := 0; got < records; {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume after %d records: %v", got, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			got++
			p := r.Partition
			if want := fmt.Sprint(next[p]); string(r.Value) != want || r.Offset != int64(next[p]) {
				t.Fatalf("partition %d offset %d holds %q, want %q at offset %d (duplicate or gap)", p, r.Offset, r.Value, want, next[p])
			}
			next[p]++
		})
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset != int64(next[o.Partition]) {
			t.Errorf("partition %d ends at %d after %d records", o.Partition, o.Offset, next[o.Partition])
		}
	})
}
