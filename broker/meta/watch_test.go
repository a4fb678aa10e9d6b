package meta

import "testing"

func fired(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Apply notifies before raft answers the proposer, so a change is visible on
// the channel as soon as the mutation returns.
func TestWatch(t *testing.T) {
	s := openStore(t, Config{})
	ch, cancel := s.Watch()
	other, cancelOther := s.Watch()
	defer cancelOther()
	if fired(ch) {
		t.Fatal("notified before any change")
	}
	mustCreate(t, s, TopicSpec{Name: "t", Partitions: 1})
	if !fired(ch) || !fired(other) {
		t.Fatal("no notification after create")
	}
	// Several changes while nobody reads coalesce into one wake-up.
	if err := s.CreatePartitions("t", 2, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetConfigs("t", map[string]string{"k": "v"}, nil, false); err != nil {
		t.Fatal(err)
	}
	if !fired(ch) || fired(ch) {
		t.Error("want exactly one pending notification")
	}
	// A command that changes nothing does not notify.
	s.CreateTopics([]TopicSpec{{Name: "t", Partitions: 1}})
	if fired(ch) {
		t.Error("notified for a failed create")
	}
	cancel()
	fired(other)
	s.DeleteTopics([]string{"t"})
	if fired(ch) {
		t.Error("notified after cancel")
	}
	if !fired(other) {
		t.Error("other watcher missed the delete")
	}
}
