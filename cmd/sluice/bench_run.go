package main

// The measuring side of `sluice bench`, kept free of cobra so a Go test or a
// bench script can call runProduceBench / runConsumeBench directly.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchConfig describes one bench run; the zero value of every optional
// field means the same as the flag's default.
type benchConfig struct {
	Brokers     []string
	Topic       string
	Records     int           // records to produce or consume
	RecordSize  int           // value bytes per record (produce)
	Acks        string        // all, 1 or 0 (produce)
	Compression string        // none, gzip, snappy, lz4, zstd (produce)
	Idempotent  bool          // keep franz-go's idempotent producer (acks=all only)
	Partitions  int32         // partitions when the topic is created
	Producers   int           // concurrent kgo clients (produce)
	Linger      time.Duration // kgo.ProducerLinger
	BatchBytes  int32         // kgo.ProducerBatchMaxBytes
	Rate        int           // cap on records/s over all producers; 0 = none
	// CommitInterval > 0 produces in transactions, each producer with its
	// own transactional id, committing this often.
	CommitInterval time.Duration
}

// benchResult is what a run reports; --format json prints it as is.
// MB is 2^20 bytes, as kafka-producer-perf-test reports it.
type benchResult struct {
	Mode          string  `json:"mode"`
	Topic         string  `json:"topic"`
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	Errors        int64   `json:"errors"`
	ElapsedSec    float64 `json:"elapsed_sec"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	P50Ms         float64 `json:"p50_ms,omitempty"`
	P99Ms         float64 `json:"p99_ms,omitempty"`
	P999Ms        float64 `json:"p999_ms,omitempty"`
	MaxMs         float64 `json:"max_ms,omitempty"`
	FirstError    string  `json:"first_error,omitempty"`
}

func (r *benchResult) finish(elapsed time.Duration) {
	r.ElapsedSec = elapsed.Seconds()
	if r.ElapsedSec > 0 {
		r.RecordsPerSec = float64(r.Records) / r.ElapsedSec
		r.MBPerSec = float64(r.Bytes) / (1 << 20) / r.ElapsedSec
	}
}

// ensureTopic creates the bench topic with cfg.Partitions when it is missing.
func ensureTopic(ctx context.Context, cl *kgo.Client, topic string, partitions int32) error {
	adm := kadm.NewClient(cl)
	tds, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("look up topic %s: %w", topic, err)
	}
	if td, ok := tds[topic]; ok && td.Err == nil {
		return nil
	}
	_, err = adm.CreateTopic(ctx, partitions, -1, nil, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

func durMs(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// runProduceBench produces cfg.Records values of cfg.RecordSize bytes from
// cfg.Producers clients and measures throughput and the latency of every
// record from its Produce call to its callback.
func runProduceBench(ctx context.Context, cfg benchConfig) (benchResult, error) {
	res := benchResult{Mode: "produce", Topic: cfg.Topic}
	if cfg.Records <= 0 || cfg.RecordSize < 0 || cfg.Producers <= 0 || cfg.Partitions <= 0 {
		return res, errors.New("records, producers and partitions must be positive")
	}
	opts, err := acksOpts(cfg.Acks)
	if err != nil {
		return res, err
	}
	copt, err := compressionOpt(cfg.Compression)
	if err != nil {
		return res, err
	}
	inflight := 1
	if cfg.CommitInterval > 0 {
		cfg.Idempotent = true
	}
	if !cfg.Idempotent {
		inflight = 5 // the Java producer's default without idempotence
		opts = append(opts, kgo.DisableIdempotentWrite(), kgo.MaxProduceRequestsInflightPerBroker(inflight))
	}
	perBatch := int(cfg.BatchBytes)/max(cfg.RecordSize, 1) + 1
	perProducer := (cfg.Records + cfg.Producers - 1) / cfg.Producers
	buffered := min(max(10_000, 2*(inflight+1)*int(cfg.Partitions)*perBatch), perProducer)
	opts = append(opts, copt, kgo.DefaultProduceTopic(cfg.Topic), kgo.ProducerLinger(cfg.Linger),
		kgo.ProducerBatchMaxBytes(cfg.BatchBytes), kgo.MaxBufferedRecords(buffered), kgo.SeedBrokers(cfg.Brokers...))

	clients := make([]*kgo.Client, cfg.Producers)
	defer func() {
		for _, cl := range clients {
			if cl != nil {
				cl.Close()
			}
		}
	}()
	run := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	for i := range clients {
		o := opts
		if cfg.CommitInterval > 0 {
			o = append(slices.Clone(opts), kgo.TransactionalID(fmt.Sprintf("%s-%d", run, i)))
		}
		if clients[i], err = kgo.NewClient(o...); err != nil {
			return res, fmt.Errorf("create producer: %w", err)
		}
	}
	if err := ensureTopic(ctx, clients[0], cfg.Topic, cfg.Partitions); err != nil {
		return res, err
	}

	// Values are random upper-case letters, like kafka-producer-perf-test.
	values := make([][]byte, min(cfg.Records, 1024))
	for i := range values {
		v := make([]byte, cfg.RecordSize)
		for j := range v {
			v[j] = 'A' + byte(rand.IntN(26))
		}
		values[i] = v
	}
	lat := make([]time.Duration, cfg.Records) // -1 marks a failed record
	var (
		errs     atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup // one count per record in flight
		gwg      sync.WaitGroup // producer goroutines
	)
	start := time.Now()
	for p, cl := range clients {
		from, to := p*perProducer, min((p+1)*perProducer, cfg.Records)
		gwg.Add(1)
		go func() {
			defer gwg.Done()
			var interval time.Duration
			if cfg.Rate > 0 {
				interval = time.Duration(float64(time.Second) * float64(cfg.Producers) / float64(cfg.Rate))
			}
			next := time.Now()
			txn := newBenchTxn(ctx, cl, cfg.CommitInterval, func(err error) {
				errs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			})
			defer txn.end()
			for i := from; i < to; i++ {
				txn.maybeCommit()
				if interval > 0 {
					if d := time.Until(next); d > time.Millisecond {
						time.Sleep(d)
					}
					next = next.Add(interval)
				}
				wg.Add(1)
				t0 := time.Now()
				cl.Produce(ctx, &kgo.Record{Value: values[i%len(values)]}, func(_ *kgo.Record, err error) {
					if err != nil {
						lat[i] = -1
						errs.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					} else {
						lat[i] = time.Since(t0)
					}
					wg.Done()
				})
			}
		}()
	}
	gwg.Wait()
	wg.Wait()
	elapsed := time.Since(start)

	ok := slices.DeleteFunc(lat, func(d time.Duration) bool { return d < 0 })
	slices.Sort(ok)
	res.Errors = errs.Load()
	if s, _ := firstErr.Load().(string); s != "" {
		res.FirstError = s
	}
	res.Records = int64(len(ok))
	res.Bytes = res.Records * int64(cfg.RecordSize)
	if n := len(ok); n > 0 {
		at := func(q float64) float64 { return durMs(ok[int(q*float64(n-1))]) }
		res.P50Ms, res.P99Ms, res.P999Ms, res.MaxMs = at(0.50), at(0.99), at(0.999), durMs(ok[n-1])
	}
	res.finish(elapsed)
	return res, nil
}

// runConsumeBench reads cfg.Records records (or all the topic has, if fewer)
// from the start of the topic with a direct consumer.
func runConsumeBench(ctx context.Context, cfg benchConfig) (benchResult, error) {
	res := benchResult{Mode: "consume", Topic: cfg.Topic}
	cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.ConsumeTopics(cfg.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return res, fmt.Errorf("create consumer: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, cfg.Topic)
	if err != nil {
		return res, fmt.Errorf("list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, cfg.Topic)
	if err != nil {
		return res, fmt.Errorf("list end offsets: %w", err)
	}
	var available int64
	for p, e := range ends[cfg.Topic] {
		if e.Err != nil {
			return res, fmt.Errorf("list end offsets of %s[%d]: %w", cfg.Topic, p, e.Err)
		}
		if s, ok := starts.Lookup(cfg.Topic, p); ok && s.Err == nil {
			available += e.Offset - s.Offset
		}
	}
	want := min(int64(cfg.Records), available)
	if want <= 0 {
		return res, fmt.Errorf("topic %s has no records to consume", cfg.Topic)
	}
	start := time.Now()
	for res.Records < want {
		fs := cl.PollRecords(ctx, int(want-res.Records))
		if err := ctx.Err(); err != nil {
			return res, err
		}
		fs.EachError(func(t string, p int32, err error) {
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = fmt.Sprintf("%s[%d]: %v", t, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			res.Records++
			res.Bytes += int64(len(r.Key) + len(r.Value))
		})
	}
	res.finish(time.Since(start))
	return res, nil
}

// benchTxn runs a producer's records in transactions committed every
// interval: a commit flushes (waits for every record of the transaction)
// and ends it, as a transactional application does. A zero interval does
// nothing.
type benchTxn struct {
	ctx      context.Context
	cl       *kgo.Client
	interval time.Duration
	fail     func(error)
	open     bool
	since    time.Time
}

func newBenchTxn(ctx context.Context, cl *kgo.Client, interval time.Duration, fail func(error)) *benchTxn {
	return &benchTxn{ctx: ctx, cl: cl, interval: interval, fail: fail}
}

// maybeCommit ends the open transaction once it is interval old and
// begins the next one; call it before each record.
func (t *benchTxn) maybeCommit() {
	if t.interval <= 0 {
		return
	}
	if t.open && time.Since(t.since) < t.interval {
		return
	}
	t.end()
	if err := t.cl.BeginTransaction(); err != nil {
		t.fail(fmt.Errorf("begin transaction: %w", err))
		return
	}
	t.open, t.since = true, time.Now()
}

// end commits the open transaction.
func (t *benchTxn) end() {
	if !t.open {
		return
	}
	t.open = false
	if err := t.cl.Flush(t.ctx); err != nil {
		t.fail(fmt.Errorf("flush transaction: %w", err))
	}
	if err := t.cl.EndTransaction(t.ctx, kgo.TryCommit); err != nil {
		t.fail(fmt.Errorf("commit transaction: %w", err))
	}
}
