// Command probe holds the small measurements scripts/bench.sh cannot make
// with shell tools alone:
//
//	probe ports N
//	    prints N distinct free loopback TCP ports, one a line.
//	probe kafka -addr HOST:PORT [-since UNIX_NANOS] [-min-partitions N] [-timeout D]
//	    sends Metadata requests (all topics) until one is answered, and then
//	    until it lists at least N partitions with a leader; prints JSON with
//	    the milliseconds since -since (default: the probe's own start).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: probe ports N | probe kafka -addr HOST:PORT [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "ports":
		err = ports(os.Args[2:])
	case "kafka":
		err = kafka(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "probe:", err)
		os.Exit(1)
	}
}

// ports holds all listeners open until every port is chosen, so the ports
// differ from one another; another process may still take one afterwards.
func ports(args []string) error {
	n := 1
	if len(args) > 0 {
		var err error
		if n, err = strconv.Atoi(args[0]); err != nil || n <= 0 || n > 100 {
			return fmt.Errorf("ports: want a count from 1 to 100, got %q", args[0])
		}
	}
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		ls = append(ls, l)
		fmt.Println(l.Addr().(*net.TCPAddr).Port)
	}
	return nil
}

type kafkaResult struct {
	FirstAnswerMs float64 `json:"first_answer_ms"`
	ReadyMs       float64 `json:"ready_ms"`
	Attempts      int     `json:"attempts"`
	Topics        int     `json:"topics"`
	Partitions    int     `json:"partitions"`
}

func kafka(args []string) error {
	fs := flag.NewFlagSet("kafka", flag.ContinueOnError)
	addr := fs.String("addr", "", "Kafka listener HOST:PORT")
	since := fs.Int64("since", 0, "measure from this time, in Unix nanoseconds (0: now)")
	minParts := fs.Int("min-partitions", 0, "also wait until this many partitions have a leader")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *addr == "" {
		return fmt.Errorf("kafka: -addr is required")
	}
	t0 := time.Now()
	if *since > 0 {
		t0 = time.Unix(0, *since)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()

	var (
		res     kafkaResult
		lastErr error
	)
	for ctx.Err() == nil {
		res.Attempts++
		topics, parts, err := metadata(ctx, *addr)
		lastErr = err
		if err == nil {
			if res.FirstAnswerMs == 0 {
				res.FirstAnswerMs = ms(time.Since(t0))
			}
			res.Topics, res.Partitions = topics, parts
			if parts >= *minParts {
				res.ReadyMs = ms(time.Since(t0))
				return json.NewEncoder(os.Stdout).Encode(res)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	return fmt.Errorf("kafka %s: not ready after %s (%d attempts, first answer after %.0f ms, %d partitions seen, last error: %v)",
		*addr, *timeout, res.Attempts, res.FirstAnswerMs, res.Partitions, lastErr)
}

// metadata asks for every topic over a fresh connection, so that no client
// retry backoff stretches the measurement.
func metadata(ctx context.Context, addr string) (topics, partitions int, err error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequestRetries(0), kgo.DialTimeout(time.Second))
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest() // nil Topics: all topics
	resp, err := req.RequestWith(actx, cl)
	if err != nil {
		return 0, 0, err
	}
	for _, t := range resp.Topics {
		if t.ErrorCode != 0 {
			continue
		}
		topics++
		for _, p := range t.Partitions {
			if p.ErrorCode == 0 && p.Leader >= 0 {
				partitions++
			}
		}
	}
	return topics, partitions, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
