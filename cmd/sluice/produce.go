package main

// sluice produce TOPIC: one record per stdin line, with an optional key,
// headers, acks, compression and fixed partition.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() { clientCommands = append(clientCommands, produceCmd) }

// acksOpts maps --acks to kgo options. Idempotent writes need acks=all, so
// they are switched off for 1 and 0.
func acksOpts(acks string) ([]kgo.Opt, error) {
	switch acks {
	case "all", "-1":
		return []kgo.Opt{kgo.RequiredAcks(kgo.AllISRAcks())}, nil
	case "1":
		return []kgo.Opt{kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite()}, nil
	case "0":
		return []kgo.Opt{kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite()}, nil
	}
	return nil, fmt.Errorf("unknown --acks %q (want all, 1 or 0)", acks)
}

// compressionOpt maps -z to the producer's batch compression.
func compressionOpt(name string) (kgo.Opt, error) {
	var c kgo.CompressionCodec
	switch name {
	case "", "none":
		c = kgo.NoCompression()
	case "gzip":
		c = kgo.GzipCompression()
	case "snappy":
		c = kgo.SnappyCompression()
	case "lz4":
		c = kgo.Lz4Compression()
	case "zstd":
		c = kgo.ZstdCompression()
	default:
		return nil, fmt.Errorf("unknown compression %q (want none, gzip, snappy, lz4 or zstd)", name)
	}
	return kgo.ProducerBatchCompression(c), nil
}

// producedJSON is one line of `produce -v --format json`.
type producedJSON struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	Timestamp int64  `json:"timestamp"`
}

func produceCmd(g *globals) *cobra.Command {
	var (
		key         string
		headers     []string
		acks        string
		compression string
		partition   int32
		verbose     bool
		timeout     time.Duration
	)
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce records read from stdin, one per line",
		Long: "Produce records read from stdin, one record per line (the trailing newline\n" +
			"is dropped). Every record gets the same key (-k) and headers (-H).",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			topic := args[0]
			asJSON, err := g.jsonOutput()
			if err != nil {
				return err
			}
			var hdrs []kgo.RecordHeader
			for _, h := range headers {
				k, v, err := parseKV(h)
				if err != nil {
					return fmt.Errorf("-H: %w", err)
				}
				hdrs = append(hdrs, kgo.RecordHeader{Key: k, Value: []byte(v)})
			}
			opts, err := acksOpts(acks)
			if err != nil {
				return err
			}
			copt, err := compressionOpt(compression)
			if err != nil {
				return err
			}
			opts = append(opts, copt, kgo.DefaultProduceTopic(topic), kgo.RecordDeliveryTimeout(timeout),
				kgo.AllowAutoTopicCreation()) // like kcat and the Java producer: the broker decides
			if partition >= 0 {
				opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
			}
			cl, err := g.newClient(opts...)
			if err != nil {
				return err
			}
			defer cl.Close()

			var (
				mu       sync.Mutex // serialises callback output and counters
				failed   int
				firstErr error
				out      = cmd.OutOrStdout()
				errOut   = cmd.ErrOrStderr()
			)
			n := 0
			in := bufio.NewReaderSize(cmd.InOrStdin(), 64<<10)
			for {
				line, rerr := in.ReadBytes('\n')
				if rerr != nil && !errors.Is(rerr, io.EOF) {
					return fmt.Errorf("read stdin: %w", rerr)
				}
				if len(line) > 0 {
					if line[len(line)-1] == '\n' {
						line = line[:len(line)-1]
					}
					n++
					num := n
					r := &kgo.Record{Value: line, Headers: hdrs, Partition: partition}
					if cmd.Flags().Changed("key") {
						r.Key = []byte(key)
					}
					cl.Produce(cmd.Context(), r, func(r *kgo.Record, err error) {
						mu.Lock()
						defer mu.Unlock()
						if err != nil {
							failed++
							if firstErr == nil {
								firstErr = err
							}
							fmt.Fprintf(errOut, "record %d: %v\n", num, err)
							return
						}
						switch {
						case verbose && asJSON:
							b, _ := json.Marshal(producedJSON{r.Topic, r.Partition, r.Offset, r.Timestamp.UnixMilli()})
							fmt.Fprintf(out, "%s\n", b)
						case verbose:
							fmt.Fprintf(out, "Produced to partition %d at offset %d with timestamp %d.\n",
								r.Partition, r.Offset, r.Timestamp.UnixMilli())
						}
					})
				}
				if rerr != nil { // io.EOF
					break
				}
			}
			if err := cl.Flush(cmd.Context()); err != nil {
				return fmt.Errorf("flush: %w", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if failed > 0 {
				return fmt.Errorf("%d of %d records failed to produce to %s: %w", failed, n, topic, firstErr)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&key, "key", "k", "", "key for every record")
	f.StringArrayVarP(&headers, "header", "H", nil, "header key=value for every record (repeatable)")
	f.StringVar(&acks, "acks", "all", "required acks: all, 1 or 0")
	f.StringVarP(&compression, "compression", "z", "none", "compression: none, gzip, snappy, lz4 or zstd")
	f.Int32VarP(&partition, "partition", "p", -1, "partition to produce to (-1: chosen by key hash, or sticky when unkeyed)")
	f.BoolVarP(&verbose, "verbose", "v", false, "print the partition and offset of every record (a JSON line each with --format json)")
	f.DurationVar(&timeout, "delivery-timeout", 30*time.Second, "fail a record not acknowledged within this time")
	return cmd
}
