package main

// The commit half of `sluice bench group`: OffsetCommit requests per second
// on one coordinator, from concurrent committers that each wait for every
// answer before sending the next, as a consumer does.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// commitConfig describes one commit run.
type commitConfig struct {
	Brokers    []string
	Topic      string
	Partitions int32         // partitions of the topic; commits go round them
	Clients    int           // kgo clients (connections to the coordinator)
	Inflight   int           // committers per client, each one request at a time
	Groups     int           // groups the committers spread over (1: all in one)
	Commits    int           // stop after this many commits ...
	Duration   time.Duration // ... or after this long, whichever comes first
}

// commitResult is what one commit run reports. A commit is one
// OffsetCommit request carrying one partition's offset.
type commitResult struct {
	Clients       int     `json:"clients"`
	Inflight      int     `json:"inflight_per_client"`
	Groups        int     `json:"groups"`
	Commits       int64   `json:"commits"`
	Errors        int64   `json:"errors"`
	ElapsedSec    float64 `json:"elapsed_sec"`
	CommitsPerSec float64 `json:"commits_per_sec"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	MaxMs         float64 `json:"max_ms"`
	FirstError    string  `json:"first_error,omitempty"`
}

// commitVersions caps OffsetCommit at v9: v10 names topics by id, which a
// raw request built here does not fill in. Sluice serves up to v9.
func commitVersions() *kversion.Versions {
	v := kversion.Stable()
	v.SetMaxKeyVersion(kmsg.OffsetCommit.Int16(), 9)
	return v
}

// commitOnce sends one simple (generation -1, no member) commit of offset
// to partition and returns the first error in the answer.
func commitOnce(ctx context.Context, cl *kgo.Client, group, topic string, partition int32, offset int64) error {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = group, -1
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.LeaderEpoch = partition, offset, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("%s[%d]: %w", t.Topic, p.Partition, err)
			}
		}
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return errors.New("OffsetCommit answer lacks the partition")
	}
	return nil
}

// runCommitBench runs cfg.Clients x cfg.Inflight committers until
// cfg.Commits commits have been sent or cfg.Duration has passed. Each
// client first commits once, untimed, to find the coordinator and connect.
func runCommitBench(ctx context.Context, cfg commitConfig) (commitResult, error) {
	res := commitResult{Clients: cfg.Clients, Inflight: cfg.Inflight, Groups: cfg.Groups}
	if cfg.Clients <= 0 || cfg.Inflight <= 0 || cfg.Groups <= 0 || cfg.Commits <= 0 || cfg.Duration <= 0 || cfg.Partitions <= 0 {
		return res, errors.New("clients, inflight, groups, commits, duration and partitions must be positive")
	}
	clients := make([]*kgo.Client, cfg.Clients)
	defer func() {
		for _, cl := range clients {
			if cl != nil {
				cl.Close()
			}
		}
	}()
	for i := range clients {
		cl, err := kgo.NewClient(kgo.SeedBrokers(cfg.Brokers...), kgo.MaxVersions(commitVersions()),
			kgo.ClientID(fmt.Sprintf("sluice-bench-committer-%d", i)))
		if err != nil {
			return res, fmt.Errorf("create client: %w", err)
		}
		clients[i] = cl
	}
	if err := ensureTopic(ctx, clients[0], cfg.Topic, cfg.Partitions); err != nil {
		return res, err
	}
	prefix := fmt.Sprintf("sluice-bench-commit-%08x", rand.Uint32())
	groupOf := func(committer int) string { return fmt.Sprintf("%s-%d", prefix, committer%cfg.Groups) }
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	for i, cl := range clients {
		if err := commitOnce(wctx, cl, groupOf(i*cfg.Inflight), cfg.Topic, 0, 0); err != nil {
			cancel()
			return res, fmt.Errorf("first commit of client %d: %w", i, err)
		}
	}
	cancel()

	// A request that is not answered in time ends the run with an error
	// rather than blocking it.
	rctx, cancel := context.WithTimeout(ctx, cfg.Duration+30*time.Second)
	defer cancel()
	var (
		next     atomic.Int64
		errs     atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
		mu       sync.Mutex
		lat      []time.Duration
	)
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	for c := range cfg.Clients * cfg.Inflight {
		cl, group := clients[c/cfg.Inflight], groupOf(c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 1024)
			for {
				n := next.Add(1)
				if n > int64(cfg.Commits) || rctx.Err() != nil {
					break
				}
				t0 := time.Now()
				if t0.After(deadline) {
					break
				}
				if err := commitOnce(rctx, cl, group, cfg.Topic, int32(n%int64(cfg.Partitions)), n); err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	slices.Sort(lat)
	res.Commits, res.Errors = int64(len(lat)), errs.Load()
	if s, _ := firstErr.Load().(string); s != "" {
		res.FirstError = s
	}
	res.ElapsedSec = elapsed.Seconds()
	if res.ElapsedSec > 0 {
		res.CommitsPerSec = float64(res.Commits) / res.ElapsedSec
	}
	ms := make([]float64, len(lat))
	for i, d := range lat {
		ms[i] = durMs(d)
	}
	res.P50Ms, res.P99Ms, res.MaxMs = percentile(ms, 0.50), percentile(ms, 0.99), percentile(ms, 1)
	return res, nil
}
