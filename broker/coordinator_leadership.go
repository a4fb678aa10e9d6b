package broker

// coordinatorLeadership is called after a partition of an internal topic
// (__consumer_offsets, __transaction_state) changes role on this broker:
// leads reports whether this broker now leads it, at leader epoch epoch.
// Coordinators bind to their partitions' leadership here (DESIGN
// decision 4): load the partition's state on becoming leader, drop it on
// losing the leadership.
func (b *Broker) coordinatorLeadership(p *partition, leads bool, epoch int32) {}
