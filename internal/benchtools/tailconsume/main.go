// Command tailconsume is the consume side of the large-log section of
// scripts/bench.sh (BENCH_BIG=1). `sluice bench consume` always reads from the
// start of a topic; this reads -records records starting at a chosen offset of
// every partition, with the same direct franz-go consumer and default fetch
// settings as `sluice bench consume`, and prints one JSON object in the same
// shape ({records, bytes, errors, elapsed_sec, records_per_sec, mb_per_sec,
// ...}) plus the offsets it started from.
//
//	tailconsume -brokers A -topic T -records N -offset start|end-N|N
//
// -offset start is each partition's log start offset, end-N is N records
// before each partition's end offset (never before its start), and a plain N
// is that offset in every partition. The clock starts after the offsets have
// been listed, as in `sluice bench consume`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type result struct {
	Mode          string          `json:"mode"`
	Topic         string          `json:"topic"`
	Offset        string          `json:"offset"`
	StartOffsets  map[int32]int64 `json:"start_offsets"`
	EndOffsets    map[int32]int64 `json:"end_offsets"`
	Records       int64           `json:"records"`
	Bytes         int64           `json:"bytes"`
	Errors        int64           `json:"errors"`
	ElapsedSec    float64         `json:"elapsed_sec"`
	RecordsPerSec float64         `json:"records_per_sec"`
	MBPerSec      float64         `json:"mb_per_sec"`
	FirstOffsets  map[int32]int64 `json:"first_offsets_read"`
	FirstError    string          `json:"first_error,omitempty"`
}

func main() {
	var (
		brokers = flag.String("brokers", "127.0.0.1:9092", "seed brokers, comma-separated")
		topic   = flag.String("topic", "", "topic to read")
		records = flag.Int64("records", 1_000_000, "records to read over all partitions")
		offset  = flag.String("offset", "start", "where each partition begins: start, end-N or N")
		timeout = flag.Duration("timeout", 5*time.Minute, "give up after this long")
	)
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	res, err := run(ctx, strings.Split(*brokers, ","), *topic, *records, *offset)
	if res != nil {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		enc.Encode(res)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tailconsume:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, brokers []string, topic string, want int64, spec string) (*result, error) {
	if topic == "" || want <= 0 {
		return nil, errors.New("-topic and a positive -records are required")
	}
	res := &result{Mode: "consume", Topic: topic, Offset: spec, StartOffsets: map[int32]int64{},
		EndOffsets: map[int32]int64{}, FirstOffsets: map[int32]int64{}}

	// List the offsets with a client of its own, so that the consuming
	// client starts with no state but its assignment.
	adm, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return nil, fmt.Errorf("create admin client: %w", err)
	}
	starts, err := kadm.NewClient(adm).ListStartOffsets(ctx, topic)
	if err == nil {
		var ends kadm.ListedOffsets
		ends, err = kadm.NewClient(adm).ListEndOffsets(ctx, topic)
		if err == nil {
			ends.Each(func(o kadm.ListedOffset) {
				if o.Err != nil && err == nil {
					err = fmt.Errorf("end offset of %s[%d]: %w", topic, o.Partition, o.Err)
				}
				res.EndOffsets[o.Partition] = o.Offset
			})
			starts.Each(func(o kadm.ListedOffset) {
				if o.Err != nil && err == nil {
					err = fmt.Errorf("start offset of %s[%d]: %w", topic, o.Partition, o.Err)
				}
				res.StartOffsets[o.Partition] = o.Offset
			})
		}
	}
	adm.Close()
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	if len(res.EndOffsets) == 0 {
		return nil, fmt.Errorf("topic %s has no partitions", topic)
	}

	from := map[int32]int64{}
	var available int64
	for p, end := range res.EndOffsets {
		start := res.StartOffsets[p]
		var at int64
		switch {
		case spec == "start":
			at = start
		case strings.HasPrefix(spec, "end-"):
			n, perr := strconv.ParseInt(strings.TrimPrefix(spec, "end-"), 10, 64)
			if perr != nil || n < 0 {
				return nil, fmt.Errorf("bad -offset %q", spec)
			}
			at = max(end-n, start)
		default:
			n, perr := strconv.ParseInt(spec, 10, 64)
			if perr != nil || n < 0 {
				return nil, fmt.Errorf("bad -offset %q", spec)
			}
			at = min(max(n, start), end)
		}
		from[p] = at
		available += end - at
	}
	want = min(want, available)
	if want <= 0 {
		return res, fmt.Errorf("no records in %s from offset %s", topic, spec)
	}

	assign := map[int32]kgo.Offset{}
	for p, at := range from {
		assign[p] = kgo.NewOffset().At(at)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: assign}))
	if err != nil {
		return nil, fmt.Errorf("create consumer: %w", err)
	}
	defer cl.Close()

	t0 := time.Now()
	for res.Records < want {
		fs := cl.PollRecords(ctx, int(want-res.Records))
		if err := ctx.Err(); err != nil {
			res.finish(time.Since(t0))
			return res, err
		}
		fs.EachError(func(t string, p int32, err error) {
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = fmt.Sprintf("%s[%d]: %v", t, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			if _, ok := res.FirstOffsets[r.Partition]; !ok {
				res.FirstOffsets[r.Partition] = r.Offset
			}
			res.Records++
			res.Bytes += int64(len(r.Key) + len(r.Value))
		})
	}
	res.finish(time.Since(t0))
	return res, nil
}

func (r *result) finish(elapsed time.Duration) {
	r.ElapsedSec = elapsed.Seconds()
	if r.ElapsedSec > 0 {
		r.RecordsPerSec = float64(r.Records) / r.ElapsedSec
		r.MBPerSec = float64(r.Bytes) / (1 << 20) / r.ElapsedSec
	}
}
