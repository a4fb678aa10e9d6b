package main

// sluice bench failover: starts a three-node cluster of this binary on
// loopback, keeps an idempotent acks=all producer writing to a replicated
// partition, and SIGKILLs the partition's leader --rounds times; each
// round's failover time runs from the kill to the first acknowledgement of
// a record produced after it (necessarily by a new leader). The killed node
// is restarted and the round waits for the ISR to be whole again.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func init() { benchSubcommands = append(benchSubcommands, benchFailoverCmd) }

type failoverResult struct {
	Mode    string  `json:"mode"`
	Rounds  int     `json:"rounds"`
	ProbeMs float64 `json:"gossip_probe_interval_ms"`
	// RetryBackoffMs is the producer's retry backoff, 0 for franz-go's.
	RetryBackoffMs float64   `json:"retry_backoff_ms"`
	P50Ms          float64   `json:"p50_ms"`
	P99Ms          float64   `json:"p99_ms"`
	MaxMs          float64   `json:"max_ms"`
	SamplesMs      []float64 `json:"samples_ms"`
	Acked          int64     `json:"acked"`
	Errors         int64     `json:"errors"`
	FirstError     string    `json:"first_error,omitempty"`
}

func benchFailoverCmd(g *globals, _ *benchConfig) *cobra.Command {
	var rounds int
	var probe, backoff time.Duration
	var sets []string
	cmd := &cobra.Command{
		Use:   "failover",
		Short: "Start a 3-node cluster and measure leader failover (kill to first acks=all ack on the new leader)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			asJSON, err := g.jsonOutput()
			if err != nil {
				return err
			}
			if rounds < 1 {
				return fmt.Errorf("--rounds %d: want 1 or more", rounds)
			}
			res, err := runFailoverBench(cmd.Context(), rounds, probe, backoff, sets)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			tw := newTable(cmd.OutOrStdout())
			tableRow(tw, "ROUNDS", res.Rounds)
			tableRow(tw, "FAILOVER P50", fmtMs(res.P50Ms))
			tableRow(tw, "FAILOVER P99", fmtMs(res.P99Ms))
			tableRow(tw, "FAILOVER MAX", fmtMs(res.MaxMs))
			tableRow(tw, "ACKED", res.Acked)
			tableRow(tw, "ERRORS", res.Errors)
			return tw.Flush()
		},
	}
	cmd.Flags().IntVar(&rounds, "rounds", 10, "leader kills")
	cmd.Flags().DurationVar(&probe, "gossip-probe-interval", 400*time.Millisecond, "the nodes' --gossip-probe-interval")
	cmd.Flags().DurationVar(&backoff, "retry-backoff", 0, "the producer's retry backoff (0: franz-go's default, 100 ms growing to 1 s)")
	cmd.Flags().StringArrayVar(&sets, "set", nil, "extra broker config name=value for every node (repeatable)")
	return cmd
}

// benchNode is one `sluice serve` process of the bench cluster.
type benchNode struct {
	id    int32
	args  []string
	kafka string
	cmd   *exec.Cmd
	log   *os.File
}

func (n *benchNode) start(bin string) error {
	n.cmd = exec.Command(bin, n.args...)
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	return n.cmd.Start()
}

func (n *benchNode) kill() {
	if n.cmd != nil && n.cmd.Process != nil {
		_ = n.cmd.Process.Kill()
		_ = n.cmd.Wait()
	}
}

func freeLoopbackAddrs(n int) ([]string, error) {
	var out []string
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().String())
	}
	return out, nil
}

func runFailoverBench(ctx context.Context, rounds int, probe, backoff time.Duration, sets []string) (failoverResult, error) {
	res := failoverResult{Mode: "failover", Rounds: rounds, ProbeMs: durMs(probe), RetryBackoffMs: durMs(backoff)}
	bin, err := os.Executable()
	if err != nil {
		return res, err
	}
	dir, err := os.MkdirTemp("", "sluice-failover")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	addrs, err := freeLoopbackAddrs(12)
	if err != nil {
		return res, err
	}
	gossips := addrs[9:12]
	nodes := make([]*benchNode, 3)
	var seeds []string
	for i := range nodes {
		id := int32(i + 1)
		logf, err := os.Create(filepath.Join(dir, fmt.Sprintf("node%d.log", id)))
		if err != nil {
			return res, err
		}
		defer logf.Close()
		n := &benchNode{id: id, kafka: addrs[3*i], log: logf}
		n.args = []string{"serve", "--node-id", fmt.Sprint(id), "--data-dir", filepath.Join(dir, fmt.Sprint(id)),
			"--kafka-addr", addrs[3*i], "--http-addr", addrs[3*i+1], "--raft-addr", addrs[3*i+2],
			"--gossip-addr", gossips[i], "--join", strings.Join(gossips, ","), "--bootstrap-expect", "3",
			"--gossip-probe-interval", probe.String(), "--log-level", "warn",
			"--set", "default.replication.factor=3", "--set", "min.insync.replicas=2"}
		for _, s := range sets {
			n.args = append(n.args, "--set", s)
		}
		nodes[i] = n
		seeds = append(seeds, n.kafka)
		defer n.kill()
	}
	for _, n := range nodes {
		if err := n.start(bin); err != nil {
			return res, err
		}
	}
	adminCl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		return res, err
	}
	defer adminCl.Close()
	adm := kadm.NewClient(adminCl)
	const topic = "failover"
	if err := waitUntil(ctx, 60*time.Second, func(ctx context.Context) bool {
		r, err := adm.CreateTopic(ctx, 1, 3, nil, topic)
		return err == nil && (r.Err == nil || strings.Contains(r.Err.Error(), "TOPIC_ALREADY_EXISTS"))
	}); err != nil {
		return res, fmt.Errorf("create the topic: %w", err)
	}
	leaderOf := func(ctx context.Context) (int32, int) {
		m, err := adm.Metadata(ctx, topic)
		if err != nil {
			return -1, 0
		}
		p, ok := m.Topics[topic].Partitions[0]
		if !ok || p.Err != nil {
			return -1, 0
		}
		return p.Leader, len(p.ISR)
	}
	whole := func(ctx context.Context) bool { l, isr := leaderOf(ctx); return l > 0 && isr == 3 }
	if err := waitUntil(ctx, 60*time.Second, whole); err != nil {
		return res, fmt.Errorf("the partition's ISR never held 3 replicas: %w", err)
	}

	// The load: a record every 5 ms, each stamped with its start.
	popts := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0), kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.RecordDeliveryTimeout(60 * time.Second)}
	if backoff > 0 {
		popts = append(popts, kgo.RetryBackoffFn(func(int) time.Duration { return backoff }))
	}
	prod, err := kgo.NewClient(popts...)
	if err != nil {
		return res, err
	}
	defer prod.Close()
	var mu sync.Mutex
	var acks []time.Time // ack time of records started after killAt
	var killAt time.Time
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-loadCtx.Done():
				return
			case <-t.C:
			}
			began := time.Now()
			prod.Produce(loadCtx, &kgo.Record{Value: []byte("x")}, func(_ *kgo.Record, err error) {
				now := time.Now()
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						res.Errors++
						if res.FirstError == "" {
							res.FirstError = err.Error()
						}
					}
					return
				}
				res.Acked++
				if !killAt.IsZero() && began.After(killAt) {
					acks = append(acks, now)
				}
			})
		}
	}()
	defer func() { stopLoad(); wg.Wait() }()

	for round := 0; round < rounds; round++ {
		leader, _ := leaderOf(ctx)
		if leader < 1 || leader > 3 {
			return res, fmt.Errorf("round %d: no leader", round+1)
		}
		time.Sleep(500 * time.Millisecond) // steady load before the kill
		victim := nodes[leader-1]
		mu.Lock()
		acks = acks[:0]
		mu.Unlock()
		victim.kill()
		mu.Lock()
		killAt = time.Now()
		mu.Unlock()
		var took time.Duration
		if err := waitUntil(ctx, 30*time.Second, func(context.Context) bool {
			mu.Lock()
			defer mu.Unlock()
			if len(acks) == 0 {
				return false
			}
			took = slices.MinFunc(acks, func(a, b time.Time) int { return a.Compare(b) }).Sub(killAt)
			return true
		}); err != nil {
			return res, fmt.Errorf("round %d: no acknowledgement after killing node %d: %w", round+1, victim.id, err)
		}
		res.SamplesMs = append(res.SamplesMs, durMs(took))
		mu.Lock()
		killAt = time.Time{}
		mu.Unlock()
		if err := victim.start(bin); err != nil {
			return res, err
		}
		if err := waitUntil(ctx, 60*time.Second, whole); err != nil {
			return res, fmt.Errorf("round %d: node %d never rejoined the ISR: %w", round+1, victim.id, err)
		}
	}
	sorted := slices.Clone(res.SamplesMs)
	slices.Sort(sorted)
	res.P50Ms, res.P99Ms, res.MaxMs = percentile(sorted, 0.50), percentile(sorted, 0.99), sorted[len(sorted)-1]
	return res, nil
}

// waitUntil polls cond every 50 ms until it holds or limit passes.
func waitUntil(ctx context.Context, limit time.Duration, cond func(context.Context) bool) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		ok := cond(cctx)
		ccancel()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
