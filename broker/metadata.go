package broker

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/broker/meta"
)

// Metadata: v0-12
//
// Lists brokers, the cluster id, the controller and the requested topics
// (all topics for a null list, or an empty one in v0), with topic ids where
// the version has them (v10+, also usable to ask by id). Unknown topics are
// auto-created when auto.create.topics.enable is on and the request allows
// it (v4+), with num.partitions partitions.
//
// Not yet: authorized operations (always "not requested": no ACLs yet).

func init() { register(3, 0, 12, handleMetadata) }

const authorizedOpsOmitted = -2147483648

func handleMetadata(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)
	resp.Brokers = b.brokerList()
	cid := b.meta.ClusterID()
	resp.ClusterID = &cid
	resp.ControllerID = b.controllerID()
	resp.AuthorizedOperations = authorizedOpsOmitted
	alive := map[int32]bool{}
	for _, br := range resp.Brokers {
		alive[br.NodeID] = true
	}

	all := req.Topics == nil || (r.version == 0 && len(req.Topics) == 0)
	if all {
		for _, t := range b.meta.Topics() {
			resp.Topics = append(resp.Topics, metadataTopic(t, 0, alive))
		}
		return done(resp)
	}
	allowAuto := b.cfg.AutoCreateTopics && (r.version < 4 || req.AllowAutoTopicCreation)
	for _, rt := range req.Topics {
		var (
			t     meta.Topic
			found bool
			name  string
		)
		if rt.Topic != nil {
			name = *rt.Topic
			t, found = b.meta.Topic(name)
		} else if rt.TopicID != [16]byte{} {
			t, found = b.meta.TopicByID(rt.TopicID)
		}
		if !found && rt.Topic != nil && allowAuto {
			var code int16
			t, code = b.autoCreate(name)
			found = code == 0
			if code != 0 && code != kerr.TopicAlreadyExists.Code {
				resp.Topics = append(resp.Topics, metadataError(name, rt.TopicID, code))
				continue
			}
			if !found {
				t, found = b.meta.Topic(name)
			}
		}
		if !found {
			code := kerr.UnknownTopicOrPartition.Code
			if rt.Topic == nil {
				code = kerr.UnknownTopicID.Code
			} else if validateTopicName(name) != nil {
				code = kerr.InvalidTopicException.Code
			}
			resp.Topics = append(resp.Topics, metadataError(name, rt.TopicID, code))
			continue
		}
		resp.Topics = append(resp.Topics, metadataTopic(t, 0, alive))
	}
	return done(resp)
}

func metadataError(name string, id [16]byte, code int16) kmsg.MetadataResponseTopic {
	t := kmsg.NewMetadataResponseTopic()
	if name != "" {
		t.Topic = &name
	}
	t.TopicID = id
	t.ErrorCode = code
	t.AuthorizedOperations = authorizedOpsOmitted
	return t
}

// metadataTopic describes a topic; replicas not in alive are listed
// offline, and a partition without a leader has LEADER_NOT_AVAILABLE.
func metadataTopic(t meta.Topic, code int16, alive map[int32]bool) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic = &name
	mt.TopicID = t.ID
	mt.IsInternal = t.Internal
	mt.ErrorCode = code
	mt.AuthorizedOperations = authorizedOpsOmitted
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, len(t.Partitions))
	for i, p := range t.Partitions {
		mp := &mt.Partitions[i]
		mp.Default()
		mp.Partition = int32(i)
		mp.Leader = p.Leader
		mp.LeaderEpoch = p.LeaderEpoch
		mp.Replicas = p.Replicas
		mp.ISR = p.ISR
		mp.OfflineReplicas = []int32{}
		for _, r := range p.Replicas {
			if !alive[r] {
				mp.OfflineReplicas = append(mp.OfflineReplicas, r)
			}
		}
		if p.Leader < 0 {
			mp.ErrorCode = kerr.LeaderNotAvailable.Code
		}
	}
	return mt
}

// autoCreate creates a topic with the broker defaults on first use.
func (b *Broker) autoCreate(name string) (meta.Topic, int16) {
	if err := validateTopicName(name); err != nil {
		return meta.Topic{}, kerr.InvalidTopicException.Code
	}
	if err := b.createTopic(meta.TopicSpec{Name: name, Partitions: b.cfg.NumPartitions, ReplicationFactor: b.defaultRF()}); err != nil {
		if errors.Is(err, meta.ErrTopicExists) {
			return meta.Topic{}, kerr.TopicAlreadyExists.Code
		}
		if notController(err) {
			return meta.Topic{}, kerr.NotController.Code
		}
		if errors.Is(err, errControllerUnavailable) {
			b.logger.Warn("auto-create topic", "topic", name, "err", err)
			return meta.Topic{}, kerr.LeaderNotAvailable.Code // retriable
		}
		b.logger.Error("auto-create topic", "topic", name, "err", err)
		return meta.Topic{}, kerr.UnknownServerError.Code
	}
	if err := b.reconcile(); err != nil {
		b.logger.Error("open auto-created topic", "topic", name, "err", err)
	}
	t, _ := b.meta.Topic(name)
	return t, 0
}

var legalTopicChars = regexp.MustCompile(`^[a-zA-Z0-9._-]+$`)

// validateTopicName applies Kafka's topic naming rules.
func validateTopicName(name string) error {
	switch {
	case name == "":
		return errors.New("topic name is empty")
	case name == "." || name == "..":
		return fmt.Errorf("topic name cannot be %q", name)
	case len(name) > 249:
		return fmt.Errorf("topic name is longer than 249 characters")
	case !legalTopicChars.MatchString(name):
		return fmt.Errorf("topic name %q contains characters other than ASCII alphanumerics, '.', '_' and '-'", name)
	}
	return nil
}
