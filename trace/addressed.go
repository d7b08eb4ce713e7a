package trace

import (
	"errors"
	"sort"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
)

// Addressed is an optional interface of a handler that acts on the sites
// at given addresses ([Condition], [Do], [Substitute]): Addrs returns
// them, so that an objective can report an address that its run never
// reached, most likely a misspelling, with [CheckAddrs].
type Addressed interface {
	ppl.Handler
	Addrs() []string
}

// addressed is a handler that acts on the sites at the keys of values.
type addressed struct {
	ppl.HandlerFunc
	values map[string]*ad.Tensor
}

// Addrs returns the addresses the handler acts on, sorted.
func (h addressed) Addrs() []string {
	addrs := make([]string, 0, len(h.values))
	for a := range h.values {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	return addrs
}

// optional hides the addresses of an [Addressed] handler.
type optional struct{ h ppl.Handler }

func (o optional) Handle(s *ppl.Site, next func(*ppl.Site)) { o.h.Handle(s, next) }

// Optional returns h without its addresses: [CheckAddrs] then accepts a
// run that does not reach them, for sites a model draws only sometimes.
func Optional(h ppl.Handler) ppl.Handler { return optional{h} }

// CheckAddrs returns an error naming the first address (in the handlers'
// order, then sorted) of an [Addressed] handler among handlers at which t
// has no site: a condition, intervention or substitution that never took
// effect. Handlers wrapped with [Optional] are not checked.
func CheckAddrs(t *Trace, handlers ...ppl.Handler) error {
	for _, h := range handlers {
		a, ok := h.(Addressed)
		if !ok {
			continue
		}
		for _, addr := range a.Addrs() {
			if t.Site(addr) == nil {
				return &ppl.SiteError{Addr: addr, Err: errors.New("trace: a handler acts on this address, but the run has no site there (wrap the handler with trace.Optional if the site is optional)")}
			}
		}
	}
	return nil
}
