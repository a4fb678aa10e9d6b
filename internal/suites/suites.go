// Package suites holds client-visible consumer-group and transaction
// scenarios that run unchanged against one in-process broker (the broker
// package's tests) and against a three-node cluster of `sluice serve`
// processes (internal/e2e), where the coordinator of the scenario's group
// or transactional id is SIGKILLed at the scenario's midpoint.
//
// A scenario gets an Env: the seed brokers, client options and a Disrupt
// hook it calls once at its midpoint with the coordinator type and key it
// depends on. Single-node callers pass a no-op, or a broker restart where
// the original test restarted the broker; the cluster kills the node that
// FindCoordinator names for the key and starts it again.
package suites

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Coordinator types, numbered as FindCoordinator numbers them.
const (
	GroupCoordinator int8 = 0
	TxnCoordinator   int8 = 1
)

// Env is where a scenario runs.
type Env struct {
	// Seeds are the Kafka addresses of the brokers.
	Seeds []string
	// Disrupt is called once, at the scenario's midpoint, with the
	// coordinator type and key (group id or transactional id) the
	// scenario depends on. It returns once the brokers serve again.
	// Nil does nothing.
	Disrupt func(t *testing.T, typ int8, key string)
	// Opts are added to every client a scenario makes (a cluster shortens
	// the metadata age so that clients follow leader changes quickly).
	Opts []kgo.Opt
}

func (e Env) disrupt(t *testing.T, typ int8, key string) {
	t.Helper()
	if e.Disrupt != nil {
		e.Disrupt(t, typ, key)
	}
}

// client makes a kgo client on the env's brokers, closed with the test.
func (e Env) client(t *testing.T, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	all := append([]kgo.Opt{kgo.SeedBrokers(e.Seeds...)}, e.Opts...)
	cl, err := kgo.NewClient(append(all, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// admin is a kadm client on the env's brokers, closed with the test.
func (e Env) admin(t *testing.T) (*kadm.Client, *kgo.Client) {
	t.Helper()
	cl := e.client(t)
	return kadm.NewClient(cl), cl
}

// Ctx is a context cancelled after d or at the end of the test.
func Ctx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// createTopic creates a topic with the brokers' default replication
// factor (1 on one node, the cluster's default on a cluster).
func createTopic(t *testing.T, adm *kadm.Client, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	resp, err := adm.CreateTopic(Ctx(t, 30*time.Second), partitions, -1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v (%s)", topic, err, resp.ErrMessage)
	}
}

// Wait polls cond every 50 ms until it holds, failing the test after d.
func Wait(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ConsumeAll reads topic from the start until n records came or wait
// passed, with the given isolation level.
func (e Env) ConsumeAll(t *testing.T, topic string, committed bool, n int, wait time.Duration) []string {
	t.Helper()
	opts := append([]kgo.Opt{kgo.SeedBrokers(e.Seeds...)}, e.Opts...)
	opts = append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if committed {
		opts = append(opts, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	var got []string
	for len(got) < n && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}
