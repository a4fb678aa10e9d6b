// Package testnet holds network helpers for tests: a dialer that can make a
// client vanish without a goodbye.
package testnet

import (
	"context"
	"errors"
	"net"
	"sync"
)

// ErrCut is what a CutDialer answers once cut.
var ErrCut = errors.New("testnet: connections cut")

// CutDialer dials as net.Dialer does until Cut, which closes every
// connection it made and refuses new ones: a client using it (kgo.Dialer)
// vanishes as a crashed process would, sending nothing more.
type CutDialer struct {
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

// Dial has the signature kgo.Dialer wants.
func (d *CutDialer) Dial(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	cut := d.cut
	d.mu.Unlock()
	if cut {
		return nil, ErrCut
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		c.Close()
		return nil, ErrCut
	}
	d.conns = append(d.conns, c)
	return c, nil
}

// Cut closes every connection and refuses new ones.
func (d *CutDialer) Cut() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cut = true
	for _, c := range d.conns {
		c.Close()
	}
	d.conns = nil
}
