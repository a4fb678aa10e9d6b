// Command manyparts is the many-partitions part of scripts/bench.sh
// (BENCH_SCALE=1). It names its topics PREFIX0000, PREFIX0001, ... and has
// two subcommands, each printing one JSON object:
//
//	manyparts create  -brokers A -topics 1000 -partitions 10 [-batch 100]
//	    creates the topics with one CreateTopics request per -batch topics
//	    and reports the time the whole creation took.
//	manyparts produce -brokers A -topics 1000 -partitions 10 -records N
//	    produces N records round-robin over every partition of every topic
//	    from one franz-go client (acks=1, 5 ms linger, 1 MiB batches by
//	    default, like `sluice bench produce`) and reports records/s.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

type common struct {
	brokers    string
	prefix     string
	topics     int
	partitions int
	timeout    time.Duration
}

func (c *common) register(fs *flag.FlagSet) {
	fs.StringVar(&c.brokers, "brokers", "127.0.0.1:9092", "seed broker HOST:PORT")
	fs.StringVar(&c.prefix, "prefix", "scale-", "topic name prefix")
	fs.IntVar(&c.topics, "topics", 1000, "number of topics")
	fs.IntVar(&c.partitions, "partitions", 10, "partitions per topic")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Minute, "give up after this long")
}

func (c *common) names() []string {
	ns := make([]string, c.topics)
	for i := range ns {
		ns[i] = fmt.Sprintf("%s%04d", c.prefix, i)
	}
	return ns
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: manyparts create|produce [flags]")
		os.Exit(2)
	}
	var (
		out any
		err error
	)
	switch os.Args[1] {
	case "create":
		out, err = create(os.Args[2:])
	case "produce":
		out, err = produce(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if out != nil {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "manyparts:", err)
		os.Exit(1)
	}
}

type createResult struct {
	Topics     int     `json:"topics"`
	Partitions int     `json:"partitions"`
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	ElapsedSec float64 `json:"elapsed_sec"`
	FirstError string  `json:"first_error,omitempty"`
}

func create(args []string) (any, error) {
	var c common
	fs := flag.NewFlagSet("create", flag.ContinueOnError)
	c.register(fs)
	batch := fs.Int("batch", 100, "topics per CreateTopics request")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *batch <= 0 || c.topics <= 0 || c.partitions <= 0 {
		return nil, errors.New("create: -batch, -topics and -partitions must be positive")
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32(c.timeout / time.Millisecond))

	res := &createResult{}
	names := c.names()
	start := time.Now()
	for from := 0; from < len(names); from += *batch {
		part := names[from:min(from+*batch, len(names))]
		res.Requests++
		resps, err := adm.CreateTopics(ctx, int32(c.partitions), -1, nil, part...)
		if err != nil {
			return res, fmt.Errorf("create topics %s..: %w", part[0], err)
		}
		for _, t := range part {
			r, ok := resps[t]
			switch {
			case !ok:
				err = errors.New("missing from the response")
			case r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists):
				err = r.Err
			default:
				res.Topics++
				res.Partitions += c.partitions
				continue
			}
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = fmt.Sprintf("%s: %v", t, err)
			}
		}
	}
	res.ElapsedSec = time.Since(start).Seconds()
	if res.Errors > 0 {
		return res, fmt.Errorf("%d topics failed, first: %s", res.Errors, res.FirstError)
	}
	return res, nil
}

type produceResult struct {
	Mode          string  `json:"mode"`
	Topics        int     `json:"topics"`
	Partitions    int     `json:"partitions"`
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	Errors        int64   `json:"errors"`
	ElapsedSec    float64 `json:"elapsed_sec"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	FirstError    string  `json:"first_error,omitempty"`
}

func produce(args []string) (any, error) {
	var c common
	fs := flag.NewFlagSet("produce", flag.ContinueOnError)
	c.register(fs)
	records := fs.Int("records", 2_000_000, "records to produce")
	size := fs.Int("record-size", 100, "value bytes per record")
	linger := fs.Duration("linger", 5*time.Millisecond, "producer linger")
	batchBytes := fs.Int("batch-bytes", 1<<20, "maximum record batch bytes")
	acks := fs.String("acks", "1", "required acks: 1 or all")
	buffered := fs.Int("buffered", 1_000_000, "maximum records buffered in the client")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if *records <= 0 || c.topics <= 0 || c.partitions <= 0 || *size < 0 || *buffered <= 0 {
		return nil, errors.New("produce: -records, -topics, -partitions and -buffered must be positive")
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.brokers),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(*linger),
		kgo.ProducerBatchMaxBytes(int32(*batchBytes)),
		kgo.MaxBufferedRecords(min(*buffered, *records)),
	}
	switch *acks {
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(),
			kgo.MaxProduceRequestsInflightPerBroker(5))
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	default:
		return nil, fmt.Errorf("produce: unknown -acks %q", *acks)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()

	names := c.names()
	// Learn every partition's leader before the clock starts, so the
	// measurement is of producing, not of the first metadata round trips.
	if _, err := kadm.NewClient(cl).ListEndOffsets(ctx, names...); err != nil {
		return nil, fmt.Errorf("look up topics: %w", err)
	}
	value := make([]byte, *size)
	for i := range value {
		value[i] = 'A' + byte(i%26)
	}
	var (
		wg       sync.WaitGroup
		errs     atomic.Int64
		firstErr atomic.Value
	)
	nparts := c.topics * c.partitions
	sent := 0
	start := time.Now()
	for ; sent < *records && ctx.Err() == nil; sent++ {
		i := sent
		// Record i goes to partition i mod (topics*partitions): topic-major
		// round robin, so consecutive records land on different topics.
		slot := i % nparts
		r := &kgo.Record{Topic: names[slot%c.topics], Partition: int32(slot / c.topics), Value: value}
		wg.Add(1)
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				errs.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
			wg.Done()
		})
	}
	wg.Wait()
	elapsed := time.Since(start)

	res := &produceResult{Mode: "produce-many", Topics: c.topics, Partitions: nparts, Errors: errs.Load()}
	if s, _ := firstErr.Load().(string); s != "" {
		res.FirstError = s
	}
	res.Records = int64(sent) - res.Errors
	res.Bytes = res.Records * int64(*size)
	res.ElapsedSec = elapsed.Seconds()
	res.RecordsPerSec = float64(res.Records) / res.ElapsedSec
	res.MBPerSec = float64(res.Bytes) / (1 << 20) / res.ElapsedSec
	if res.Errors > 0 || sent < *records {
		return res, fmt.Errorf("%d of %d records failed or unsent, first: %s", int64(*records)-res.Records, *records, res.FirstError)
	}
	return res, nil
}
