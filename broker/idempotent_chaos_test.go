package broker_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/broker"
	"github.com/sluice-io/sluice/internal/testbroker"
)

// cutProxy forwards loopback TCP connections to a target and, while
// cutting, closes each connection after a random number of bytes (256 KiB to
// 2 MiB of requests or 100-1100 bytes of answers after the first, which
// is the ApiVersions answer, so its size does not decide the cuts): requests are lost half-way through,
// answers after the broker acted on the request, as on a flaky network, and
// clients retry. Cuts follow traffic rather than
// time, so a fast run gets as many as a slow one under -race.
type cutProxy struct {
	ln      net.Listener
	target  atomic.Value // string
	cutting atomic.Bool
	cuts    atomic.Int64
	maxCuts int64

	mu    sync.Mutex
	conns map[net.Conn]net.Conn // client side → broker side
	rng   *rand.Rand            // guarded by mu
	wg    sync.WaitGroup
}

func newCutProxy(t *testing.T, maxCuts int64) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, conns: map[net.Conn]net.Conn{}, rng: rand.New(rand.NewPCG(1, 2)), maxCuts: maxCuts}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		target, _ := p.target.Load().(string)
		s, err := net.Dial("tcp", target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c] = s
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, s, c, 256<<10, 2<<20) // requests: cut mid-frame
		go p.pipe(c, c, s, 100, 1000)      // answers: lost after the broker acted

	}
}

// pipe copies src to dst until either side ends, or until a random byte
// budget is spent while cutting: then it writes part of what it read and
// cuts the connection.
func (p *cutProxy) pipe(client, dst, src net.Conn, minBudget, spread int) {
	defer p.wg.Done()
	defer p.drop(client)
	p.mu.Lock()
	budget := minBudget + p.rng.IntN(spread)
	p.mu.Unlock()
	buf := make([]byte, 32<<10)
	first := src != client // the broker's side: its first frame is free
	for {
		n, err := src.Read(buf)
		if first && n >= 4 {
			budget += 4 + int(binary.BigEndian.Uint32(buf[:4]))
			first = false
		}
		if n > 0 {
			cut := p.cutting.Load() && n >= budget && p.cuts.Load() < p.maxCuts
			if cut {
				n = budget
			}
			budget -= n
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			if cut {
				p.cuts.Add(1)
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *cutProxy) drop(c net.Conn) {
	p.mu.Lock()
	s, ok := p.conns[c]
	delete(p.conns, c)
	p.mu.Unlock()
	if ok {
		c.Close()
		s.Close()
	}
}

func (p *cutProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	for c, s := range p.conns {
		c.Close()
		s.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// TestIdempotentProducerConnectionCuts is the acceptance test: a
// franz-go producer (idempotent by default since the broker advertises
// InitProducerId) writes 100k records to three partitions through a proxy
// that keeps cutting its connections. Consumed back, every partition holds
// exactly the records sent to it, in order: no duplicate, no gap.
func TestIdempotentProducerConnectionCuts(t *testing.T) {
	proxy := newCutProxy(t, 100)
	b := testbroker.Start(t, func(c *broker.Config) { c.AdvertisedAddr = proxy.addr() })
	proxy.target.Store(b.Addr())
	adm, _ := compatAdmin(t, b.Addr())
	const topic, partitions = "idem-cuts", 3
	compatCreateTopic(t, adm, topic, partitions, nil)
	n := compatCount()

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(proxy.addr()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression()), // traffic drives the cuts
		kgo.RetryBackoffFn(func(int) time.Duration { return 5 * time.Millisecond }),
		kgo.RequestTimeoutOverhead(2*time.Second),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	proxy.cutting.Store(true)

	ctx := compatCtx(t, 3*time.Minute)
	var failed atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for i := range n {
		part := int32(i % partitions)
		r := &kgo.Record{Topic: topic, Partition: part, Value: chaosValue(i / partitions)}
		wg.Add(1)
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil && failed.Add(1) == 1 {
				firstErr.Store(err)
			}
		})
	}
	wg.Wait()
	proxy.cutting.Store(false)
	if f := failed.Load(); f > 0 {
		t.Fatalf("%d of %d records failed; first: %v", f, n, firstErr.Load())
	}
	if proxy.cuts.Load() < 20 {
		t.Fatalf("the proxy cut only %d connections: the test proved nothing", proxy.cuts.Load())
	}
	t.Logf("%d records produced through %d connection cuts", n, proxy.cuts.Load())

	// Read back directly from the broker.
	per := make([]int, partitions)
	for p := range per {
		per[p] = n / partitions
		if p < n%partitions {
			per[p]++
		}
		if end := compatEndOffset(t, adm, topic, int32(p)); end != int64(per[p]) {
			t.Errorf("partition %d: end offset %d, want %d", p, end, per[p])
		}
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	next := make([]int, partitions)
	for got := 0; got < n; {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records: %v", got, n, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			got++
			p := r.Partition
			want := string(chaosValue(next[p]))
			if string(r.Value) != want || r.Offset != int64(next[p]) {
				t.Fatalf("partition %d offset %d holds %.12q, want %.12q at offset %d (duplicate or gap)", p, r.Offset, r.Value, want, next[p])
			}
			if r.ProducerID < 0 {
				t.Fatalf("record at %d/%d was produced without a producer id: not idempotent", p, r.Offset)
			}
			next[p]++
		})
	}
	for p := range next {
		if next[p] != per[p] {
			t.Errorf("partition %d: consumed %d records, want %d", p, next[p], per[p])
		}
	}
}

// chaosValue is the i-th record of a partition, padded so that 100k records
// make enough traffic for the proxy's cuts.
func chaosValue(i int) []byte { return fmt.Appendf(nil, "%08d-%0100d", i, 0) }
