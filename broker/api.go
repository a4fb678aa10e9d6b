package broker

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Each API lives in its own file and registers itself here with the version
// range it serves; the ApiVersions answer is generated from these
// registrations, never kept by hand.

const apiKeyApiVersions = 18

type handlerFunc func(b *Broker, r *request) (*reply, error)

type apiHandler struct {
	min, max int16
	fn       handlerFunc
}

var handlers = map[int16]apiHandler{}

func register(key, min, max int16, fn handlerFunc) {
	if _, dup := handlers[key]; dup {
		panic("duplicate handler for api key " + kmsg.NameForKey(key))
	}
	handlers[key] = apiHandler{min: min, max: max, fn: fn}
}

// supportedAPIs lists the registrations sorted by key.
func supportedAPIs() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(handlers))
	for k, h := range handlers {
		keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: h.min, MaxVersion: h.max})
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ApiKey < keys[j].ApiKey })
	return keys
}

// done wraps a response that is complete now.
func done(resp kmsg.Response) (*reply, error) { return &reply{resp: resp}, nil }
