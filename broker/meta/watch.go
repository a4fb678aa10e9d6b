package meta

// Watch returns a channel that receives after every applied change to the
// metadata, and a func that stops the notifications. The channel has a buffer
// of one and sends never block, so several changes may arrive as one
// notification: a watcher re-reads the state it cares about when woken.
// The channel is not closed by cancel.
func (s *Store) Watch() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.wmu.Lock()
	id := s.nextW
	s.nextW++
	s.watchers[id] = ch
	s.wmu.Unlock()
	return ch, func() {
		s.wmu.Lock()
		delete(s.watchers, id)
		s.wmu.Unlock()
	}
}

// notify wakes every watcher; the state machine calls it after each change.
func (s *Store) notify() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for _, ch := range s.watchers {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
