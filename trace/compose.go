package trace

import (
	"errors"
	"fmt"
	"slices"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
)

// Compose returns a trace holding the given sites, in the given order, for
// objectives that assemble one stochastic computation graph out of several
// runs on one tape: the sample sites of a guide, the costs that package vi
// synthesizes from a guide and a model, a model's observations. The sites
// are taken as they are (not copied) and must not be modified afterwards.
//
// A cost site (kind [ppl.KindCost]) is completed as the tracer completes
// the sites of [ppl.Cost]: a nil Cost is set to Value (and a nil Value to
// Cost), and Parents are set to the provenance of the cost. A zero Scale is
// set to 1. Sample sites must carry distinct ids, and the values of other
// sites name them by those ids in their provenance, as the values of one
// run do; ids of sites the trace does not hold are left out of the graph.
//
// Compose returns a *[ppl.SiteError] naming the site when a site is nil,
// has an empty or duplicate address, a sample id used twice, a nil value
// where the kind needs one, a cost that is not [B x 1], or a batch (the
// rows outside its plates, see [ppl.Stack]) that differs from the first
// sample, observe or cost site's.
func Compose(sites ...*ppl.Site) (*Trace, error) {
	var tape *ad.Tape
	for _, s := range sites {
		if s != nil && s.Value != nil {
			tape = s.Value.Tape()
			break
		}
	}
	t := newTrace(tape)
	// Earlier sites are searched for a duplicate address or id, through
	// maps when there are many.
	var addrs map[string]bool
	var ids map[int]bool
	if len(sites) > smallTrace {
		if t.seenAddrs == nil {
			t.seenAddrs, t.seenIDs = make(map[string]bool, len(sites)), make(map[int]bool)
		}
		addrs, ids = t.seenAddrs, t.seenIDs
		clear(addrs)
		clear(ids)
	}
	batch := 0
	for i, s := range sites {
		if s == nil {
			return nil, &ppl.SiteError{Err: fmt.Errorf("trace: Compose: site %d is nil", i)}
		}
		fail := func(format string, args ...any) (*Trace, error) {
			return nil, &ppl.SiteError{Addr: s.Addr, Err: fmt.Errorf("trace: Compose: "+format, args...)}
		}
		if s.Addr == "" {
			return nil, &ppl.SiteError{Err: fmt.Errorf("trace: Compose: site %d has an empty address", i)}
		}
		if addrs[s.Addr] || addrs == nil && slices.ContainsFunc(sites[:i], func(e *ppl.Site) bool { return e.Addr == s.Addr }) {
			return fail("duplicate address")
		}
		if addrs != nil {
			addrs[s.Addr] = true
		}
		if s.Scale == 0 {
			s.Scale = 1
		}
		switch s.Kind {
		case ppl.KindSample:
			if ids[s.ID] || ids == nil && slices.ContainsFunc(sites[:i], func(e *ppl.Site) bool { return e.Kind == ppl.KindSample && e.ID == s.ID }) {
				return fail("sample id %d is used by an earlier site", s.ID)
			}
			if ids != nil {
				ids[s.ID] = true
			}
		case ppl.KindCost:
			if s.Cost == nil {
				s.Cost = s.Value
			}
			if s.Value == nil {
				s.Value = s.Cost
			}
			if s.Cost == nil {
				return fail("nil cost")
			}
			if r, c := s.Cost.Dims(); c != 1 {
				return fail("cost must be [Bx1], got [%dx%d]", r, c)
			}
			s.Parents = s.Cost.Provenance()
		}
		switch s.Kind {
		case ppl.KindSample, ppl.KindObserve, ppl.KindCost:
			if s.Value == nil {
				return fail("nil value")
			}
			rows, per := s.Value.Rows(), s.Plates.Rows()
			if rows%per != 0 {
				return fail("%s site has %d rows, not a multiple of the %d rows per particle of its plates %v", s.Kind, rows, per, s.Plates)
			}
			if batch == 0 {
				batch = rows / per
			} else if rows != batch*per {
				return fail("%s site has batch %d, the trace has batch %d", s.Kind, rows/per, batch)
			}
		case ppl.KindParam, ppl.KindDeterministic, ppl.KindPlate:
		default:
			return nil, &ppl.SiteError{Addr: s.Addr, Err: errors.New("trace: Compose: invalid site kind")}
		}
		t.sites = append(t.sites, s)
	}
	return t, nil
}
