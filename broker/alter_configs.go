package broker

import (
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// AlterConfigs: v0-2
//
// Replaces a topic's whole set of overrides (configs left out return to
// their defaults), after validating every value; validate_only checks only.
// Dynamic broker configs are refused: broker settings are static (flags and
// the config file) in this release.

func init() { register(33, 0, 2, handleAlterConfigs) }

func handleAlterConfigs(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	var ch configChanger
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		sr.ErrorCode, sr.ErrorMessage = ch.apply(b, rr.ResourceType, rr.ResourceName, req.ValidateOnly, true,
			func() (map[string]string, []string, int16, string) {
				set := map[string]string{}
				for _, c := range rr.Configs {
					if err := validateTopicConfig(c.Name, c.Value); err != nil {
						return nil, nil, kerr.InvalidConfig.Code, err.Error()
					}
					set[c.Name] = *c.Value
				}
				return set, nil, 0, ""
			})
		resp.Resources = append(resp.Resources, sr)
	}
	ch.finish(b)
	return done(resp)
}

// configChanger applies config changes of one request, resource by
// resource, and reopens what they affect once at the end.
type configChanger struct{ changed bool }

// apply checks the resource, computes its change and, unless validateOnly,
// commits it through the metadata log (replace: the set becomes the whole
// override set, as AlterConfigs asks).
func (ch *configChanger) apply(b *Broker, typ kmsg.ConfigResourceType, name string, validateOnly, replace bool,
	compute func() (set map[string]string, del []string, code int16, msg string)) (int16, *string) {
	code, msg := checkConfigResource(b, typ, name)
	var set map[string]string
	var del []string
	if code == 0 {
		set, del, code, msg = compute()
	}
	if code == 0 && !validateOnly {
		if err := b.meta.SetConfigs(name, set, del, replace); err != nil {
			code, msg = kerr.UnknownTopicOrPartition.Code, err.Error()
		} else {
			ch.changed = true
		}
	}
	if msg == "" {
		return code, nil
	}
	return code, &msg
}

func (ch *configChanger) finish(b *Broker) {
	if !ch.changed {
		return
	}
	if err := b.reconcile(); err != nil {
		b.logger.Error("apply configs", "err", err)
	}
}

// checkConfigResource accepts existing topics; brokers are refused as
// static and other resource types as unsupported.
func checkConfigResource(b *Broker, typ kmsg.ConfigResourceType, name string) (int16, string) {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		if b.topicByName(name) == nil {
			return kerr.UnknownTopicOrPartition.Code, fmt.Sprintf("Topic %s does not exist.", name)
		}
		return 0, ""
	case kmsg.ConfigResourceTypeBroker:
		return kerr.InvalidRequest.Code, "dynamic broker configs are not supported: set them with flags or the config file"
	default:
		return kerr.InvalidRequest.Code, "unsupported resource type " + strings.ToLower(typ.String())
	}
}
