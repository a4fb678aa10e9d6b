package main

// sluice bench produce / consume: flags and output around bench_run.go.

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"
)

func init() { clientCommands = append(clientCommands, benchCmd) }

// benchSubcommands are the `sluice bench` subcommands kept in their own
// files (bench_group.go); they see the shared --topic and --records flags
// through cfg.
var benchSubcommands []func(g *globals, cfg *benchConfig) *cobra.Command

func benchCmd(g *globals) *cobra.Command {
	cfg := benchConfig{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure produce and consume throughput and latency",
		Long: "Measure produce and consume throughput and latency. MB/s counts 2^20 bytes,\n" +
			"as kafka-producer-perf-test does. --format json prints one JSON object.",
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&cfg.Topic, "topic", "sluice-bench", "topic to use")
	pf.IntVar(&cfg.Records, "records", 1_000_000, "number of records to produce or consume")

	prod := &cobra.Command{
		Use:   "produce",
		Short: "Produce --records records and report records/s, MB/s and latency percentiles",
		Long: "Produce --records values of --record-size bytes and report records/s, MB/s\n" +
			"and the p50/p99/p99.9 latency from each Produce call to its acknowledgement.\n" +
			"The topic is created with --partitions if it does not exist. With acks 1 or 0\n" +
			"up to 5 produce requests are in flight per broker (the Java default).\n" +
			"--rate caps records/s over all producers, to measure latency at a fixed load.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd, g, cfg, runProduceBench)
		},
	}
	f := prod.Flags()
	f.IntVar(&cfg.RecordSize, "record-size", 100, "value size in bytes")
	f.StringVar(&cfg.Acks, "acks", "1", "required acks: all, 1 or 0")
	f.StringVarP(&cfg.Compression, "compression", "z", "none", "compression: none, gzip, snappy, lz4 or zstd")
	f.Int32Var(&cfg.Partitions, "partitions", 1, "partitions, when the topic is created")
	f.IntVar(&cfg.Producers, "producers", 1, "number of concurrent producer clients")
	f.DurationVar(&cfg.Linger, "linger", 5*time.Millisecond, "producer linger")
	f.Int32Var(&cfg.BatchBytes, "batch-bytes", 1<<20, "maximum record batch size in bytes")
	f.IntVar(&cfg.Rate, "rate", 0, "cap on records per second (0: as fast as possible)")
	f.BoolVar(&cfg.Idempotent, "idempotent", false, "use the idempotent producer (acks=all)")
	f.DurationVar(&cfg.CommitInterval, "transactional", 0, "produce in transactions committed this often (e.g. 100ms; implies --idempotent)")

	cons := &cobra.Command{
		Use:   "consume",
		Short: "Consume --records records from the start of --topic and report records/s and MB/s",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd, g, cfg, runConsumeBench)
		},
	}
	cmd.AddCommand(prod, cons)
	for _, add := range benchSubcommands {
		cmd.AddCommand(add(g, &cfg))
	}
	return cmd
}

// runBench runs one bench with the flag values, prints the result and fails
// when any record failed.
func runBench(cmd *cobra.Command, g *globals, cfg benchConfig, run func(context.Context, benchConfig) (benchResult, error)) error {
	asJSON, err := g.jsonOutput()
	if err != nil {
		return err
	}
	cfg.Brokers = g.seedBrokers()
	if len(cfg.Brokers) == 0 {
		return fmt.Errorf("no brokers given (use --brokers or SLUICE_BROKERS)")
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		err = writeJSON(cmd.OutOrStdout(), res)
	} else {
		err = printBench(cmd.OutOrStdout(), res)
	}
	if err != nil {
		return err
	}
	if res.Errors > 0 {
		return fmt.Errorf("%d errors, first: %s", res.Errors, res.FirstError)
	}
	return nil
}

func printBench(w io.Writer, r benchResult) error {
	tw := newTable(w)
	tableRow(tw, "MODE", r.Mode)
	tableRow(tw, "TOPIC", r.Topic)
	tableRow(tw, "RECORDS", r.Records)
	tableRow(tw, "ERRORS", r.Errors)
	tableRow(tw, "ELAPSED", time.Duration(r.ElapsedSec*float64(time.Second)).Round(time.Millisecond))
	tableRow(tw, "RECORDS/S", strconv.FormatFloat(r.RecordsPerSec, 'f', 0, 64))
	tableRow(tw, "MB/S", strconv.FormatFloat(r.MBPerSec, 'f', 2, 64))
	if r.Mode == "produce" && r.Records > 0 {
		tableRow(tw, "LATENCY P50", fmtMs(r.P50Ms))
		tableRow(tw, "LATENCY P99", fmtMs(r.P99Ms))
		tableRow(tw, "LATENCY P99.9", fmtMs(r.P999Ms))
		tableRow(tw, "LATENCY MAX", fmtMs(r.MaxMs))
	}
	if r.FirstError != "" {
		tableRow(tw, "FIRST ERROR", r.FirstError)
	}
	return tw.Flush()
}

func fmtMs(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) + "ms" }
