package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker/meta"
)

// DeleteTopics: v1-6
//
// Deletes topics by name (v1-5) or by name or id (v6) through the metadata
// log; each partition's directory is removed once the deletion is applied.
// Committed offsets of deleted topics are deleted too (tombstones in
// __consumer_offsets), as Kafka does, so a re-created topic starts clean.

func init() { register(20, 1, 6, handleDeleteTopics) }

func handleDeleteTopics(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if r.version >= 6 {
		for _, t := range req.Topics {
			targets = append(targets, target{t.Topic, t.TopicID})
		}
	} else {
		for i := range req.TopicNames {
			targets = append(targets, target{name: &req.TopicNames[i]})
		}
	}
	var names []string
	var idx []int
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = tg.name, tg.id
		var t meta.Topic
		var ok bool
		if tg.name != nil {
			t, ok = b.meta.Topic(*tg.name)
		} else {
			t, ok = b.meta.TopicByID(tg.id)
		}
		switch {
		case !ok && tg.name == nil:
			st.ErrorCode = kerr.UnknownTopicID.Code
		case !ok:
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
		case t.Internal:
			st.ErrorCode = kerr.InvalidTopicException.Code
		default:
			name := t.Name
			st.Topic, st.TopicID = &name, t.ID
			names = append(names, t.Name)
			idx = append(idx, len(resp.Topics))
		}
		resp.Topics = append(resp.Topics, st)
	}
	if len(names) == 0 {
		return done(resp)
	}
	errs := b.meta.DeleteTopics(names)
	if err := b.reconcile(); err != nil {
		b.logger.Error("apply topic deletion", "err", err)
	}
	var deleted []string
	for i, err := range errs {
		if notController(err) {
			resp.Topics[idx[i]].ErrorCode = kerr.NotController.Code
		} else if err != nil {
			resp.Topics[idx[i]].ErrorCode = kerr.UnknownTopicOrPartition.Code
		} else {
			deleted = append(deleted, names[i])
		}
	}
	b.groups.ForgetTopics(deleted)
	return done(resp)
}
