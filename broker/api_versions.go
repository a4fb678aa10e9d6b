package broker

import (
	"regexp"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions: v0-4
//
// Answers the supported ranges of every registered handler. A request at a
// version above 4 gets a v0 response with UNSUPPORTED_VERSION and the ranges,
// so the client retries lower (KIP-511). v3+ validates the client software
// name and version as Kafka does.

func init() { register(apiKeyApiVersions, 0, 4, handleApiVersions) }

var softwareRe = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?$`)

func handleApiVersions(b *Broker, r *request) (*reply, error) {
	req := r.kreq.(*kmsg.ApiVersionsRequest)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.ApiKeys = supportedAPIs()
	if h := handlers[apiKeyApiVersions]; r.version > h.max {
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		rep := &reply{resp: resp}
		r.version = 0 // answered as v0 (SetVersion after the handler)
		return rep, nil
	}
	if r.version >= 3 && (!softwareRe.MatchString(req.ClientSoftwareName) || !softwareRe.MatchString(req.ClientSoftwareVersion)) {
		resp.ErrorCode = kerr.InvalidRequest.Code
	}
	return done(resp)
}
