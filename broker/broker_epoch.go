package broker

import "github.com/sluice-io/sluice/broker/meta"

// Broker epochs (meta/brokers.go, meta/fencing.go): this process's
// incarnation is in its gossip metadata, and its broker epoch is the one of
// the registration carrying that incarnation, read from the applied
// metadata. A standalone node has no gossip and no registrations: nothing
// there ever asks for an epoch.

// ownRegistration is this process's registration. ok is false while the
// metadata holds none of this incarnation yet (the node then makes no
// request that needs one and takes no partition role, as a Kafka broker
// before its registration is acknowledged), except under a controller of a
// version before broker epochs: that one registers no incarnation (its own
// registration has none either), so the node runs as that version did,
// with epoch -1, until an upgraded controller registers it.
func (b *Broker) ownRegistration() (meta.Broker, bool) {
	r, ok := b.meta.Broker(b.cfg.NodeID)
	if ok && r.Incarnation == b.gossip.Self().Incarnation && r.Epoch > 0 {
		return r, true
	}
	if ok && r.Incarnation == "" {
		if c, cok := b.meta.Broker(b.controllerID()); cok && c.Incarnation == "" {
			return meta.Broker{ID: r.ID, Epoch: -1}, true
		}
	}
	return meta.Broker{}, false
}

// ownBrokerEpoch is this process's broker epoch, false while it has no
// registration (ownRegistration). A standalone node answers -1, true.
func (b *Broker) ownBrokerEpoch() (int64, bool) {
	if b.gossip == nil {
		return -1, true
	}
	r, ok := b.ownRegistration()
	return r.Epoch, ok
}

// unfenced reports whether this incarnation is registered and unfenced: a
// restarted node takes no partition role before, so it neither leads nor
// follows on the roles its previous process held (which the controller is
// taking away) at their old leader epochs.
func (b *Broker) unfenced() bool {
	if b.gossip == nil {
		return true
	}
	r, ok := b.ownRegistration()
	return ok && !r.Fenced
}

// staleBrokerEpoch is the controller's check of the broker epoch a request
// carries: it must be the registered epoch of its broker, else the request
// comes from a process that has since restarted (or not registered yet).
// Kafka answers STALE_BROKER_EPOCH then. A standalone controller has no
// registrations and checks nothing. A registration without an incarnation
// was made for a process of a version before broker epochs, which sends
// -1: that is taken, so an old leader can still change its ISR while a
// cluster is upgraded.
func (b *Broker) staleBrokerEpoch(id int32, epoch int64) bool {
	if b.gossip == nil {
		return false
	}
	r, ok := b.meta.Broker(id)
	if ok && r.Incarnation == "" && epoch == -1 {
		return false
	}
	return !ok || r.Epoch <= 0 || r.Epoch != epoch
}

// brokerEpoch is broker id's registered epoch, -1 when unknown (which the
// controller takes as "not checked").
func (b *Broker) brokerEpoch(id int32) int64 {
	if r, ok := b.meta.Broker(id); ok && r.Epoch > 0 {
		return r.Epoch
	}
	return -1
}
