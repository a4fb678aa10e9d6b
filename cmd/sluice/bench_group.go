package main

// sluice bench group: consumer-group figures. "settle" times rebalances of a
// group (bench_group_settle.go) for each balancer; "commit" measures
// OffsetCommit requests per second on one coordinator
// (bench_group_commit.go). Every phase is bounded by a count and a time.

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() { benchSubcommands = append(benchSubcommands, benchGroupCmd) }

// groupBenchFlags are the flags of `sluice bench group`.
type groupBenchFlags struct {
	measure       string
	balancers     []string
	members       int
	partitions    int32
	rebalances    int
	heartbeat     time.Duration
	settleTimeout time.Duration
	clients       int
	inflight      int
	groups        []int
	commits       int
	duration      time.Duration
	timeout       time.Duration
}

// groupBenchResult is what `sluice bench group --format json` prints.
type groupBenchResult struct {
	Mode       string         `json:"mode"`
	Topic      string         `json:"topic"`
	Partitions int32          `json:"partitions"`
	Settle     []settleResult `json:"settle,omitempty"`
	Commit     []commitResult `json:"commit,omitempty"`
	Errors     int64          `json:"errors"`
	FirstError string         `json:"first_error,omitempty"`
}

// fail counts n errors and keeps the first one's text.
func (r *groupBenchResult) fail(n int64, err string) {
	r.Errors += n
	if r.FirstError == "" {
		r.FirstError = err
	}
}

const groupBenchTopic = "sluice-bench-group"

func benchGroupCmd(g *globals, shared *benchConfig) *cobra.Command {
	f := groupBenchFlags{}
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Time consumer-group rebalances and measure offset commits per second",
		Long: "Measure a consumer group on one coordinator.\n\n" +
			"settle: --members clients join one group on a topic of --partitions partitions;\n" +
			"then --rebalances times one more member joins and leaves again. Each change is\n" +
			"timed from just before it (the new client is created, or the leaving client's\n" +
			"Close sends LeaveGroup) until every member holds at least one partition and\n" +
			"together they hold each partition exactly once, as seen in the\n" +
			"OnPartitionsAssigned/Revoked callbacks. Existing members learn of a rebalance\n" +
			"from a heartbeat answer, so --heartbeat bounds how soon they rejoin. Run for\n" +
			"each --balancers (range is eager; cooperative-sticky takes two rounds).\n\n" +
			"commit: --clients clients with --inflight committers each send OffsetCommit\n" +
			"requests of one partition (generation -1, as an admin or a self-assigning\n" +
			"client commits), each waiting for its answer, spread over --groups groups,\n" +
			"until --commits are sent or --duration passes. One run per --groups value.\n\n" +
			"The topic (--topic, default " + groupBenchTopic + ") is created when missing.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			topic := shared.Topic
			if !cmd.Flags().Changed("topic") {
				topic = groupBenchTopic
			}
			return runGroupBench(cmd, g, topic, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.measure, "measure", "all", "what to measure: settle, commit or all")
	fl.StringSliceVar(&f.balancers, "balancers", []string{"range", "cooperative-sticky"}, "balancers to time rebalances with")
	fl.IntVar(&f.members, "members", 10, "members of the group (settle)")
	fl.Int32Var(&f.partitions, "partitions", 20, "partitions of the topic, when it is created")
	fl.IntVar(&f.rebalances, "rebalances", 20, "times one more member joins and leaves again (settle)")
	fl.DurationVar(&f.heartbeat, "heartbeat", 3*time.Second, "heartbeat interval of the members (franz-go's and Java's default: 3s)")
	fl.DurationVar(&f.settleTimeout, "settle-timeout", 30*time.Second, "longest wait for one rebalance to settle")
	fl.IntVar(&f.clients, "clients", 8, "committing clients (commit)")
	fl.IntVar(&f.inflight, "inflight", 1, "committers per client, each with one request in flight (commit)")
	fl.IntSliceVar(&f.groups, "groups", []int{8, 1}, "groups the committers spread over; one run per value (commit)")
	fl.IntVar(&f.commits, "commits", 200_000, "commits per run, at most (commit)")
	fl.DurationVar(&f.duration, "duration", 10*time.Second, "time per commit run, at most (commit)")
	fl.DurationVar(&f.timeout, "timeout", 10*time.Minute, "bound on the whole command")
	return cmd
}

func runGroupBench(cmd *cobra.Command, g *globals, topic string, f groupBenchFlags) error {
	asJSON, err := g.jsonOutput()
	if err != nil {
		return err
	}
	brokers := g.seedBrokers()
	if len(brokers) == 0 {
		return fmt.Errorf("no brokers given (use --brokers or SLUICE_BROKERS)")
	}
	settle, commit := f.measure == "all" || f.measure == "settle", f.measure == "all" || f.measure == "commit"
	if !settle && !commit {
		return fmt.Errorf("unknown --measure %q (want settle, commit or all)", f.measure)
	}
	for _, b := range f.balancers {
		if _, err := balancerFor(b); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()

	res := groupBenchResult{Mode: "group", Topic: topic}
	res.Partitions, err = groupBenchTopicPartitions(ctx, brokers, topic, f.partitions)
	if err != nil {
		return err
	}
	if settle {
		for _, b := range f.balancers {
			s, err := runSettleBench(ctx, settleConfig{
				Brokers: brokers, Topic: topic, Balancer: b, Members: f.members, Partitions: res.Partitions,
				Rebalances: f.rebalances, Heartbeat: f.heartbeat, Timeout: f.settleTimeout,
			})
			if err != nil {
				return fmt.Errorf("settle (%s): %w", b, err)
			}
			if s.Error != "" {
				res.fail(1, b+": "+s.Error)
			}
			res.Settle = append(res.Settle, s)
		}
	}
	if commit {
		for _, n := range f.groups {
			c, err := runCommitBench(ctx, commitConfig{
				Brokers: brokers, Topic: topic, Partitions: res.Partitions, Clients: f.clients,
				Inflight: f.inflight, Groups: n, Commits: f.commits, Duration: f.duration,
			})
			if err != nil {
				return fmt.Errorf("commit (%d groups): %w", n, err)
			}
			if c.Errors > 0 {
				res.fail(c.Errors, fmt.Sprintf("%d groups: %s", n, c.FirstError))
			}
			res.Commit = append(res.Commit, c)
		}
	}
	if asJSON {
		err = writeJSON(cmd.OutOrStdout(), res)
	} else {
		err = printGroupBench(cmd.OutOrStdout(), res)
	}
	if err != nil {
		return err
	}
	if res.Errors > 0 {
		return fmt.Errorf("%d errors, first: %s", res.Errors, res.FirstError)
	}
	return nil
}

// groupBenchTopicPartitions creates the topic when missing and returns how
// many partitions it has.
func groupBenchTopicPartitions(ctx context.Context, brokers []string, topic string, partitions int32) (int32, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, fmt.Errorf("create client: %w", err)
	}
	defer cl.Close()
	if err := ensureTopic(ctx, cl, topic, partitions); err != nil {
		return 0, err
	}
	// A topic just created may take a moment to show in Metadata.
	adm := kadm.NewClient(cl)
	for i := 0; ; i++ {
		tds, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return 0, fmt.Errorf("look up topic %s: %w", topic, err)
		}
		if td, ok := tds[topic]; ok && td.Err == nil && len(td.Partitions) > 0 {
			return int32(len(td.Partitions)), nil
		} else if i == 50 {
			return 0, fmt.Errorf("topic %s does not show in Metadata: %v", topic, td.Err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func printGroupBench(w io.Writer, r groupBenchResult) error {
	tw := newTable(w)
	tableRow(tw, "TOPIC", fmt.Sprintf("%s (%d partitions)", r.Topic, r.Partitions))
	for _, s := range r.Settle {
		name := fmt.Sprintf("SETTLE %s, %d members, heartbeat %v", strings.ToUpper(s.Balancer), s.Members,
			time.Duration(s.HeartbeatMs*float64(time.Millisecond)))
		tableRow(tw, name)
		tableRow(tw, "  FORM", fmtMs(s.FormMs))
		tableRow(tw, "  JOIN P50/P99/MAX", fmt.Sprintf("%s / %s / %s (%d)", fmtMs(s.JoinP50Ms), fmtMs(s.JoinP99Ms), fmtMs(s.JoinMaxMs), s.Joins))
		tableRow(tw, "  LEAVE P50/P99/MAX", fmt.Sprintf("%s / %s / %s (%d)", fmtMs(s.LeaveP50Ms), fmtMs(s.LeaveP99Ms), fmtMs(s.LeaveMaxMs), s.Leaves))
		if s.Error != "" {
			tableRow(tw, "  ERROR", s.Error)
		}
	}
	for _, c := range r.Commit {
		tableRow(tw, fmt.Sprintf("COMMIT %d clients x %d, %d groups", c.Clients, c.Inflight, c.Groups))
		tableRow(tw, "  COMMITS/S", strconv.FormatFloat(c.CommitsPerSec, 'f', 0, 64)+fmt.Sprintf(" (%d in %.2fs)", c.Commits, c.ElapsedSec))
		tableRow(tw, "  LATENCY P50/P99/MAX", fmt.Sprintf("%s / %s / %s", fmtMs(c.P50Ms), fmtMs(c.P99Ms), fmtMs(c.MaxMs)))
		if c.Errors > 0 {
			tableRow(tw, "  ERRORS", fmt.Sprintf("%d, first: %s", c.Errors, c.FirstError))
		}
	}
	return tw.Flush()
}
