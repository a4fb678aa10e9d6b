package broker

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker/meta"
)

func startControllerTestBroker(t *testing.T, id int32) *Broker {
	t.Helper()
	b, err := New(Config{DataDir: t.TempDir(), KafkaAddr: "127.0.0.1:0", NodeID: id})
	if err != nil {
		t.Fatal(err)
	}
	go b.Serve()
	t.Cleanup(func() { b.Close() })
	return b
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func allocCode(r kmsg.Response) int16 { return r.(*kmsg.AllocateProducerIDsResponse).ErrorCode }

// TestControllerClientRetries: no leader known, a dead address and
// NOT_CONTROLLER answers are all retried until the controller answers.
func TestControllerClientRetries(t *testing.T) {
	ctl := startControllerTestBroker(t, 1)
	dead := closedAddr(t)
	var locates atomic.Int32
	c := &controllerClient{
		locate: func() (string, error) {
			switch locates.Add(1) {
			case 1:
				return "", errNoController
			case 2:
				return dead, nil
			}
			return ctl.Addr(), nil
		},
		done:   make(chan struct{}),
		logger: slog.Default(),
	}
	defer c.close()
	var notCtl atomic.Int32
	req := kmsg.NewPtrAllocateProducerIDsRequest()
	req.BrokerID = 7
	resp, err := c.send(context.Background(), req, func(r kmsg.Response) int16 {
		if notCtl.Add(1) <= 2 {
			return kerr.NotController.Code // as from a node that lost the leadership
		}
		return allocCode(r)
	})
	if err != nil {
		t.Fatal(err)
	}
	r := resp.(*kmsg.AllocateProducerIDsResponse)
	if r.ErrorCode != 0 || r.ProducerIDLen != producerIDBlockSize || r.ProducerIDStart < 0 {
		t.Fatalf("block: %+v", r)
	}
	if n := locates.Load(); n != 5 {
		t.Fatalf("%d locates, want 5 (none, dead, 2 x NOT_CONTROLLER, answer)", n)
	}
	if next := ctl.meta.NextProducerID(); next != r.ProducerIDStart+producerIDBlockSize {
		t.Fatalf("controller's next producer id %d after block at %d", next, r.ProducerIDStart)
	}
}

// TestControllerClientBounded: with no controller, send gives up with
// errControllerUnavailable when its context ends or the broker closes.
func TestControllerClientBounded(t *testing.T) {
	done := make(chan struct{})
	c := &controllerClient{
		locate: func() (string, error) { return "", errNoController },
		done:   done,
		logger: slog.Default(),
	}
	defer c.close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	begin := time.Now()
	_, err := c.send(ctx, kmsg.NewPtrAllocateProducerIDsRequest(), allocCode)
	if !errors.Is(err, errControllerUnavailable) || !errors.Is(err, context.DeadlineExceeded) || time.Since(begin) > 2*time.Second {
		t.Fatalf("after %v: %v", time.Since(begin), err)
	}
	close(done)
	_, err = c.send(context.Background(), kmsg.NewPtrAllocateProducerIDsRequest(), allocCode)
	if !errors.Is(err, errControllerUnavailable) {
		t.Fatalf("after close: %v", err)
	}
}

// TestForwardCreateTopic: a forwarded creation reaches the controller with
// its configs, internal topics stay internal, and a second one is
// ErrTopicExists.
func TestForwardCreateTopic(t *testing.T) {
	ctl := startControllerTestBroker(t, 1)
	fwd := startControllerTestBroker(t, 2)
	fwd.ctl = &controllerClient{locate: func() (string, error) { return ctl.Addr(), nil }, done: fwd.closing, logger: fwd.logger}
	defer fwd.ctl.close()
	spec := meta.TopicSpec{Name: offsetsTopic, Partitions: 3, ReplicationFactor: 1, Internal: true,
		Configs: map[string]string{"cleanup.policy": "compact", "segment.bytes": "104857600"}}
	if err := fwd.forwardCreateTopic(spec); err != nil {
		t.Fatal(err)
	}
	mt, ok := ctl.meta.Topic(offsetsTopic)
	if !ok || len(mt.Partitions) != 3 || !mt.Internal || mt.Configs["cleanup.policy"] != "compact" || mt.Configs["segment.bytes"] != "104857600" {
		t.Fatalf("on the controller: %+v (found %v)", mt, ok)
	}
	if err := fwd.forwardCreateTopic(spec); !errors.Is(err, meta.ErrTopicExists) {
		t.Fatalf("second creation: %v", err)
	}
	if _, ok := fwd.meta.Topic(offsetsTopic); ok {
		t.Fatal("the forwarding broker created the topic itself")
	}
}

// TestAllocateProducerIDsHandler: the leader hands out disjoint blocks and
// refuses a negative broker id.
func TestAllocateProducerIDsHandler(t *testing.T) {
	b := startControllerTestBroker(t, 1)
	c := &controllerClient{locate: func() (string, error) { return b.Addr(), nil }, done: make(chan struct{}), logger: slog.Default()}
	defer c.close()
	ctx := context.Background()
	var last int64 = -1
	for range 2 {
		req := kmsg.NewPtrAllocateProducerIDsRequest()
		req.BrokerID = 3
		resp, err := c.send(ctx, req, allocCode)
		if err != nil {
			t.Fatal(err)
		}
		r := resp.(*kmsg.AllocateProducerIDsResponse)
		if r.ErrorCode != 0 || r.ProducerIDStart <= last {
			t.Fatalf("block %+v after %d", r, last)
		}
		last = r.ProducerIDStart + int64(r.ProducerIDLen) - 1
	}
	req := kmsg.NewPtrAllocateProducerIDsRequest()
	req.BrokerID = -1
	resp, err := c.send(ctx, req, allocCode)
	if err != nil {
		t.Fatal(err)
	}
	if code := allocCode(resp); code != kerr.InvalidRequest.Code {
		t.Fatalf("negative broker id: error %d", code)
	}
}
