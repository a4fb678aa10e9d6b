package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A broker that is not the raft leader is a Kafka client of the controller
// for the metadata writes Kafka clients do not route there themselves
// (producer-id blocks, auto-created and internal topics), as Kafka brokers
// are (forward_writes.go). Only clustered nodes have a controller client: a
// standalone node always leads its quorum and never makes the extra hop.

const (
	// controllerTimeout bounds one forwarded write, retries included.
	controllerTimeout = 10 * time.Second
	// controllerBackoff is the pause before retrying after NOT_CONTROLLER, a
	// network error or while there is no leader.
	controllerBackoff = 100 * time.Millisecond
	// controllerAttempt bounds one attempt: a controller cut off by the
	// network does not answer at all, and the next attempt must reach the
	// one elected meanwhile.
	controllerAttempt = 3 * time.Second
)

// errNoController is returned by a locate func while no controller is known.
var errNoController = errors.New("no controller known")

// errControllerUnavailable wraps a forwarded request that got no answer from
// a controller in time, or whose effect has not reached this node's metadata
// yet: the caller answers a retriable error.
var errControllerUnavailable = errors.New("controller unavailable")

// controllerClient sends requests to the current controller's Kafka
// listener, found by locate, through a franz-go client kept per address.
type controllerClient struct {
	locate func() (string, error) // the controller's Kafka host:port
	done   <-chan struct{}        // closed when the broker shuts down
	logger *slog.Logger
	opts   []kgo.Opt

	mu     sync.Mutex
	addr   string
	cl     *kgo.Client
	closed bool
}

// send sends req to the controller and returns its response, retrying on
// network errors and while errCode(resp) is NOT_CONTROLLER, for at most
// controllerTimeout. Any other error code is the caller's to read.
func (c *controllerClient) send(ctx context.Context, req kmsg.Request, errCode func(kmsg.Response) int16) (kmsg.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, controllerTimeout)
	defer cancel()
	api := kmsg.NameForKey(req.Key())
	for attempt := 1; ; attempt++ {
		addr, resp, err := c.sendOnce(ctx, req)
		if err == nil && errCode(resp) != kerr.NotController.Code {
			return resp, nil
		}
		if err == nil {
			err = kerr.NotController
		}
		c.logger.Debug("controller request retry", "api", api, "controller_addr", addr, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%s to controller %s after %d attempts: %w: %w (last error: %v)", api, addr, attempt, errControllerUnavailable, ctx.Err(), err)
		case <-c.done:
			return nil, fmt.Errorf("%s to controller: %w: broker is shutting down (last error: %v)", api, errControllerUnavailable, err)
		case <-time.After(controllerBackoff):
		}
	}
}

// sendOnce sends req once to the controller as located now.
func (c *controllerClient) sendOnce(ctx context.Context, req kmsg.Request) (string, kmsg.Response, error) {
	addr, err := c.locate()
	if err != nil {
		return "", nil, err
	}
	cl, err := c.client(addr)
	if err != nil {
		return addr, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, controllerAttempt)
	defer cancel()
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	return addr, resp, err
}

// client returns the client for addr, replacing the one of a previous
// controller.
func (c *controllerClient) client(addr string) (*kgo.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("controller client closed")
	}
	if c.cl != nil && c.addr == addr {
		return c.cl, nil
	}
	if c.cl != nil {
		c.cl.Close()
		c.cl = nil
	}
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, c.opts...)...)
	if err != nil {
		return nil, fmt.Errorf("client for controller %s: %w", addr, err)
	}
	c.cl, c.addr = cl, addr
	return cl, nil
}

// close closes the client, failing requests in flight.
func (c *controllerClient) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	if c.cl != nil {
		c.cl.Close()
		c.cl = nil
	}
}

// controllerAddr is the registered Kafka address of the raft leader.
func (b *Broker) controllerAddr() (string, error) {
	id := b.meta.LeaderID()
	if id < 0 {
		return "", errNoController
	}
	if addr := b.brokerAddr(id); addr != "" {
		return addr, nil
	}
	return "", fmt.Errorf("%w: raft leader %d has no broker registration yet", errNoController, id)
}

// brokerAddr is the address other brokers reach broker id at (its
// internal address, else its advertised one), "" when it is not
// registered.
func (b *Broker) brokerAddr(id int32) string {
	for _, r := range b.meta.Brokers() {
		if r.ID == id {
			return r.Addr()
		}
	}
	return ""
}

// newControllerClient is the controller client of a clustered node.
func (b *Broker) newControllerClient() *controllerClient {
	return &controllerClient{
		locate: b.controllerAddr,
		done:   b.closing,
		logger: b.logger,
		opts:   []kgo.Opt{kgo.ClientID(fmt.Sprintf("sluice-broker-%d", b.cfg.NodeID))},
	}
}
