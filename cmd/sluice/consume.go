package main

// sluice consume TOPIC...: a direct (non-group) consumer that prints records
// through a -f format or as JSON lines, from a chosen -o offset, until -n
// records were printed or SIGINT.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() { clientCommands = append(clientCommands, consumeCmd) }

// parseOffset turns -o into a kgo offset: start, end, N (exact), -N (N before
// the end), +N (N after the start) or @ms (first record at/after ms).
func parseOffset(s string) (kgo.Offset, error) {
	o := kgo.NewOffset()
	switch s {
	case "start", "oldest", "beginning":
		return o.AtStart(), nil
	case "end", "newest", "latest":
		return o.AtEnd(), nil
	}
	bad := fmt.Errorf("invalid offset %q (want start, end, N, -N, +N or @timestamp_ms)", s)
	switch {
	case strings.HasPrefix(s, "@"):
		milli, err := strconv.ParseInt(s[1:], 10, 64)
		if err != nil || milli < 0 {
			return o, bad
		}
		return o.AfterMilli(milli), nil
	case strings.HasPrefix(s, "-"):
		n, err := strconv.ParseInt(s[1:], 10, 64)
		if err != nil || n < 0 {
			return o, bad
		}
		return o.AtEnd().Relative(-n), nil
	case strings.HasPrefix(s, "+"):
		n, err := strconv.ParseInt(s[1:], 10, 64)
		if err != nil || n < 0 {
			return o, bad
		}
		return o.AtStart().Relative(n), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return o, bad
	}
	return o.At(n), nil
}

// jsonRecord is one line of `consume --format json`. Key is null for a
// record without a key.
type jsonRecord struct {
	Topic     string       `json:"topic"`
	Partition int32        `json:"partition"`
	Offset    int64        `json:"offset"`
	Timestamp int64        `json:"timestamp"`
	Key       *string      `json:"key"`
	Value     string       `json:"value"`
	Headers   []jsonHeader `json:"headers"`
}

type jsonHeader struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

func toJSONRecord(r *kgo.Record) jsonRecord {
	j := jsonRecord{
		Topic: r.Topic, Partition: r.Partition, Offset: r.Offset,
		Timestamp: r.Timestamp.UnixMilli(), Value: string(r.Value),
		Headers: make([]jsonHeader, 0, len(r.Headers)),
	}
	if r.Key != nil {
		k := string(r.Key)
		j.Key = &k
	}
	for _, h := range r.Headers {
		j.Headers = append(j.Headers, jsonHeader{h.Key, string(h.Value)})
	}
	return j
}

func consumeCmd(g *globals) *cobra.Command {
	var (
		offset        string
		count         int
		format        string
		partitions    []int32
		readCommitted bool
	)
	cmd := &cobra.Command{
		Use:   "consume TOPIC...",
		Short: "Consume records and print them",
		Long: "Consume records with a direct (non-group) consumer and print them.\n\n" +
			"-o start|end|N|-N|+N|@timestamp_ms picks where every partition begins:\n" +
			"the earliest or latest offset, exactly N, N before the end, N after the\n" +
			"start, or the first record at or after a Unix time in milliseconds.\n\n" +
			"-f formats each record: %t topic, %p partition, %o offset, %k key,\n" +
			"%v value, %T timestamp (ms), %h headers (k=v,k2=v2), %K/%V key/value\n" +
			"length, %% percent; \\n \\t \\r \\\\ escapes. --format json prints one JSON\n" +
			"object per line instead. Runs until -n records were printed or SIGINT.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			asJSON, err := g.jsonOutput()
			if err != nil {
				return err
			}
			if asJSON && cmd.Flags().Changed("fmt") {
				return errors.New("-f and --format json cannot be used together")
			}
			rf, err := parseFormat(format)
			if err != nil {
				return err
			}
			off, err := parseOffset(offset)
			if err != nil {
				return err
			}
			topics := uniqueNames(args)
			opts := []kgo.Opt{kgo.ConsumeResetOffset(off)}
			if len(partitions) > 0 {
				m := make(map[string]map[int32]kgo.Offset, len(topics))
				for _, t := range topics {
					m[t] = make(map[int32]kgo.Offset, len(partitions))
					for _, p := range partitions {
						m[t][p] = off
					}
				}
				opts = append(opts, kgo.ConsumePartitions(m))
			} else {
				opts = append(opts, kgo.ConsumeTopics(topics...))
			}
			if readCommitted {
				opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
			}
			cl, err := g.newClient(opts...)
			if err != nil {
				return err
			}
			defer cl.Close()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if err := checkTopics(ctx, cmd, cl, topics); err != nil {
				return err
			}
			return consumeLoop(ctx, cmd, cl, count, asJSON, rf)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&offset, "offset", "o", "start", "where to start: start, end, N, -N, +N or @timestamp_ms")
	f.IntVarP(&count, "num", "n", 0, "stop after printing this many records (0: run until SIGINT)")
	f.StringVarP(&format, "fmt", "f", `%v\n`, "record format (see above)")
	f.Int32SliceVarP(&partitions, "partitions", "p", nil, "only consume these partitions (comma-separated)")
	f.BoolVar(&readCommitted, "read-committed", false, "skip aborted transactional records")
	return cmd
}

// checkTopics fails fast when the cluster cannot be reached (the consumer
// itself would wait silently) and warns about topics that do not exist yet.
func checkTopics(ctx context.Context, cmd *cobra.Command, cl *kgo.Client, topics []string) error {
	ctx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	tds, err := kadm.NewClient(cl).ListTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("look up topics: %w", err)
	}
	for _, t := range topics {
		if td, ok := tds[t]; !ok || td.Err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "topic %s is not available yet; waiting for it\n", t)
		}
	}
	return nil
}

// consumeLoop polls and prints until count records were printed (count > 0)
// or ctx is done. Fetch errors go to stderr and consuming goes on.
func consumeLoop(ctx context.Context, cmd *cobra.Command, cl *kgo.Client, count int, asJSON bool, rf recordFormat) error {
	out := bufio.NewWriterSize(cmd.OutOrStdout(), 64<<10)
	defer out.Flush()
	enc := json.NewEncoder(out)
	var buf []byte
	printed := 0
	for count <= 0 || printed < count {
		limit := -1
		if count > 0 {
			limit = count - printed
		}
		fs := cl.PollRecords(ctx, limit)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return nil // interrupted: a normal way to stop
		}
		fs.EachError(func(t string, p int32, err error) {
			fmt.Fprintf(cmd.ErrOrStderr(), "fetch %s[%d]: %v\n", t, p, err)
		})
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			if asJSON {
				if err := enc.Encode(toJSONRecord(r)); err != nil {
					return err
				}
			} else {
				buf = rf.appendRecord(buf[:0], r)
				if _, err := out.Write(buf); err != nil {
					return err
				}
			}
			printed++
		}
		if err := out.Flush(); err != nil {
			return err
		}
	}
	return nil
}
