package broker

// coordinatorLeadership is called after a partition of an internal topic
// (__consumer_offsets, __transaction_state) changes role on this broker:
// leads reports whether this broker now leads it, at leader epoch epoch.
// Coordinators bind to their partitions' leadership here (DESIGN
// decision 4): load the partition's state on becoming leader, drop it on
// losing the leadership.
//
// broker.New opens the partitions (and so calls this) before it builds the
// coordinators: until then there is nothing to bind, and
// newGroupCoordinator and newTxnCoordinator load every partition led by
// then themselves.
func (b *Broker) coordinatorLeadership(p *partition, leads bool, epoch int32) {
	switch p.t.name {
	case offsetsTopic:
		if b.groups != nil {
			b.groups.leadership(p, leads, epoch)
		}
	case txnTopic:
		if b.txns != nil {
			b.txnLeadership(p, leads)
		}
	}
}
