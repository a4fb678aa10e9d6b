// Command natsbench is the NATS JetStream baseline of scripts/bench.sh: it
// creates a file-storage stream on one subject, publishes -records messages
// of -size bytes with PublishAsync and at most -window acknowledgements
// outstanding, waits for every ack and prints one JSON object:
//
//	{"records":..., "errors":..., "elapsed_sec":..., "records_per_sec":..., "mb_per_sec":...}
//
// MB is 2^20 bytes, as in `sluice bench`.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

type result struct {
	Records       int64   `json:"records"`
	Bytes         int64   `json:"bytes"`
	Errors        int64   `json:"errors"`
	ElapsedSec    float64 `json:"elapsed_sec"`
	RecordsPerSec float64 `json:"records_per_sec"`
	MBPerSec      float64 `json:"mb_per_sec"`
	Window        int     `json:"window"`
	Storage       string  `json:"storage"`
	FirstError    string  `json:"first_error,omitempty"`
}

func main() {
	url := flag.String("url", nats.DefaultURL, "NATS server URL")
	stream := flag.String("stream", "BENCH", "stream to create (deleted first if it exists)")
	subject := flag.String("subject", "bench.data", "subject the stream captures")
	records := flag.Int("records", 1_000_000, "messages to publish")
	size := flag.Int("size", 100, "payload bytes per message")
	window := flag.Int("window", 4096, "maximum outstanding async publishes")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up after this long")
	flag.Parse()

	res, err := run(*url, *stream, *subject, *records, *size, *window, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "natsbench:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		os.Exit(1)
	}
	if res.Errors > 0 {
		os.Exit(1)
	}
}

func run(url, stream, subject string, records, size, window int, timeout time.Duration) (result, error) {
	res := result{Window: window, Storage: "file"}
	if records <= 0 || size < 0 || window <= 0 {
		return res, errors.New("records and window must be positive")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	nc, err := nats.Connect(url)
	if err != nil {
		return res, fmt.Errorf("connect %s: %w", url, err)
	}
	defer nc.Close()

	var (
		errs     atomic.Int64
		firstErr atomic.Value
	)
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(window),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			errs.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
		}))
	if err != nil {
		return res, fmt.Errorf("jetstream: %w", err)
	}
	if err := js.DeleteStream(ctx, stream); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return res, fmt.Errorf("delete stream %s: %w", stream, err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:     stream,
		Subjects: []string{subject},
		Storage:  jetstream.FileStorage,
		Replicas: 1,
	}); err != nil {
		return res, fmt.Errorf("create stream %s: %w", stream, err)
	}

	payload := make([]byte, size)
	for i := range payload {
		payload[i] = 'A' + byte(i%26)
	}
	stall := jetstream.WithStallWait(timeout)
	start := time.Now()
	for i := 0; i < records; i++ {
		// PublishAsync blocks while window acks are outstanding, which is
		// what bounds the in-flight messages; the stall wait is set to the
		// whole run's timeout so a slow server is waited for, not skipped.
		if _, err := js.PublishAsync(subject, payload, stall); err != nil {
			errs.Add(1)
			firstErr.CompareAndSwap(nil, err.Error())
			if ctx.Err() != nil {
				break
			}
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return res, fmt.Errorf("waiting for %d acks: %w", js.PublishAsyncPending(), ctx.Err())
	}
	elapsed := time.Since(start)

	res.Errors = errs.Load()
	if s, _ := firstErr.Load().(string); s != "" {
		res.FirstError = s
	}
	res.Records = int64(records) - res.Errors
	res.Bytes = res.Records * int64(size)
	res.ElapsedSec = elapsed.Seconds()
	res.RecordsPerSec = float64(res.Records) / res.ElapsedSec
	res.MBPerSec = float64(res.Bytes) / (1 << 20) / res.ElapsedSec

	// Check that the stream really holds what was acknowledged.
	if s, err := js.Stream(ctx, stream); err == nil {
		if info, err := s.Info(ctx); err == nil && info.State.Msgs != uint64(res.Records) {
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = fmt.Sprintf("stream holds %d messages, %d acknowledged", info.State.Msgs, res.Records)
			}
		}
	}
	return res, nil
}
