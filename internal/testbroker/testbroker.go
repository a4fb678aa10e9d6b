// Package testbroker starts a Sluice broker in-process for tests, on a
// random loopback port with its data in a temporary directory.
package testbroker

import (
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/sluice-io/sluice/broker"
)

// Start runs a broker for the test's lifetime. mod may adjust the config.
func Start(t testing.TB, mod ...func(*broker.Config)) *broker.Broker {
	t.Helper()
	cfg := Config(t.TempDir())
	for _, m := range mod {
		m(&cfg)
	}
	return StartConfig(t, cfg)
}

// Config is the test default: auto-created topics, in-memory raft, a small
// __consumer_offsets (4 partitions) and no initial rebalance delay.
func Config(dir string) broker.Config {
	level := slog.LevelWarn
	if os.Getenv("SLUICE_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	var out io.Writer = os.Stderr
	return broker.Config{
		DataDir:          dir,
		KafkaAddr:        "127.0.0.1:0",
		NodeID:           1,
		AutoCreateTopics: true,
		NumPartitions:    1,

		OffsetsTopicPartitions:     4,
		GroupInitialRebalanceDelay: -1,
		// KIP-848 members learn of new assignments at their next
		// heartbeat: a short interval keeps rebalances quick.
		ConsumerGroupHeartbeatInterval: 200 * time.Millisecond,
		ConsumerGroupSessionTimeout:    6 * time.Second,
		Logger:                         slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level})),
	}
}

// StartConfig runs a broker with exactly cfg until the test ends.
func StartConfig(t testing.TB, cfg broker.Config) *broker.Broker {
	t.Helper()
	b, err := broker.New(cfg)
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- b.Serve() }()
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close broker: %v", err)
		}
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Errorf("broker Serve did not return after Close")
		}
	})
	return b
}

// Restart closes b and starts a broker on the same data directory and
// address, as a process restart would (cfg must be the config b ran with).
func Restart(t testing.TB, b *broker.Broker, cfg broker.Config) *broker.Broker {
	t.Helper()
	addr := b.Addr()
	if err := b.Close(); err != nil {
		t.Fatalf("close broker: %v", err)
	}
	cfg.KafkaAddr = addr
	return StartConfig(t, cfg)
}
