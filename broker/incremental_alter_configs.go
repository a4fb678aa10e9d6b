package broker

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// IncrementalAlterConfigs: v0-1
//
// SET, DELETE, APPEND and SUBTRACT (the last two for list configs such as
// cleanup.policy) on topic configs, validated as a whole before anything is
// changed; validate_only checks only.

func init() { register(44, 0, 1, handleIncrementalAlterConfigs) }

func handleIncrementalAlterConfigs(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	var ch configChanger
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		sr.ErrorCode, sr.ErrorMessage = ch.apply(b, rr.ResourceType, rr.ResourceName, req.ValidateOnly, false,
			func() (map[string]string, []string, int16, string) {
				return b.incrementalChanges(rr.ResourceName, rr.Configs)
			})
		resp.Resources = append(resp.Resources, sr)
	}
	ch.finish(b)
	return done(resp)
}

// incrementalChanges turns the operations into values to set and names to
// delete, validating each result.
func (b *Broker) incrementalChanges(topicName string, ops []kmsg.IncrementalAlterConfigsRequestResourceConfig) (map[string]string, []string, int16, string) {
	t := b.topicByName(topicName)
	if t == nil {
		return nil, nil, kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("Topic %s does not exist.", topicName)
	}
	v := t.view.Load()
	set := map[string]string{}
	var del []string
	seen := map[string]bool{}
	for _, c := range ops {
		d, ok := topicConfigByName[c.Name]
		if !ok {
			return nil, nil, kerr.InvalidConfig.Code, "unknown topic config name: " + c.Name
		}
		if seen[c.Name] {
			return nil, nil, kerr.InvalidRequest.Code, "Error due to duplicate config keys: " + c.Name
		}
		seen[c.Name] = true
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if err := validateTopicConfig(c.Name, c.Value); err != nil {
				return nil, nil, kerr.InvalidConfig.Code, err.Error()
			}
			set[c.Name] = *c.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			del = append(del, c.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			if d.kind != "LIST" {
				return nil, nil, kerr.InvalidConfig.Code, fmt.Sprintf("Config value append/subtract is not allowed for config %s of type %s", c.Name, d.kind)
			}
			if c.Value == nil {
				return nil, nil, kerr.InvalidConfig.Code, "null value for " + c.Name
			}
			cur, _ := v.get(c.Name)
			next := editList(cur, *c.Value, c.Op == kmsg.IncrementalAlterConfigOpAppend)
			if err := validateTopicConfig(c.Name, &next); err != nil {
				return nil, nil, kerr.InvalidConfig.Code, err.Error()
			}
			set[c.Name] = next
		default:
			return nil, nil, kerr.InvalidRequest.Code, fmt.Sprintf("unknown config operation %d", c.Op)
		}
	}
	return set, del, 0, ""
}

// editList appends or removes comma-separated items of a list config.
func editList(cur, items string, add bool) string {
	var out []string
	have := map[string]bool{}
	for _, s := range strings.Split(cur, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
			have[s] = true
		}
	}
	for _, s := range strings.Split(items, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if add && !have[s] {
			out = append(out, s)
			have[s] = true
		}
		if !add && have[s] {
			for i, o := range out {
				if o == s {
					out = append(out[:i], out[i+1:]...)
					break
				}
			}
			delete(have, s)
		}
	}
	return strings.Join(out, ",")
}
