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
	changed := false
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		set := map[string]string{}
		code, msg := checkConfigResource(b, rr.ResourceType, rr.ResourceName)
		for _, c := range rr.Configs {
			if code != 0 {
				break
			}
			if err := validateTopicConfig(c.Name, c.Value); err != nil {
				code, msg = kerr.InvalidConfig.Code, err.Error()
				break
			}
			set[c.Name] = *c.Value
		}
		if code == 0 && !req.ValidateOnly {
			if err := b.meta.SetConfigs(rr.ResourceName, set, nil, true); err != nil {
				code, msg = kerr.UnknownTopicOrPartition.Code, err.Error()
			} else {
				changed = true
			}
		}
		sr.ErrorCode = code
		if msg != "" {
			sr.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, sr)
	}
	if changed {
		if err := b.reconcile(); err != nil {
			b.logger.Error("apply configs", "err", err)
		}
	}
	return done(resp)
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
