package broker

import (
	"errors"
	"fmt"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// peerClients keeps one Kafka client per other broker's address, for the
// requests brokers send each other outside replication (transaction
// markers, KIP-890 verification).
type peerClients struct {
	clientID string
	mu       sync.Mutex
	clients  map[string]*kgo.Client
	closed   bool
}

func newPeerClients(clientID string) *peerClients {
	return &peerClients{clientID: clientID, clients: map[string]*kgo.Client{}}
}

// get returns the client for addr.
func (pc *peerClients) get(addr string) (*kgo.Client, error) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.closed {
		return nil, errors.New("broker clients closed")
	}
	if cl := pc.clients[addr]; cl != nil {
		return cl, nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(pc.clientID))
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", addr, err)
	}
	pc.clients[addr] = cl
	return cl, nil
}

// close closes every client; later gets fail.
func (pc *peerClients) close() {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	pc.closed = true
	for _, cl := range pc.clients {
		cl.Close()
	}
	pc.clients = nil
}
