package trace

import (
	"sync"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/internal/arena"
	"github.com/backpropq/backpropq/ppl"
)

// Trace is the record of one model run: its sites in execution order, with
// lookup by address and by sample-site id. The sites are the finished
// [ppl.Site] messages, so they carry the values, log-probs, costs, scales,
// masks and parents that the run computed; their tensors are valid until
// the run's tape is reset. A Trace must not be modified once recorded and
// is safe for concurrent reads.
//
// A trace of a run on a tape given by a [ppl.Config] handler, and its
// [Graph], live on that tape like the run's tensors: once the tape is
// reset, their memory serves the traces of later runs, so a trace must
// not be used after its tape is reset (a training loop that resets its
// tape every step then makes none of them anew).
type Trace struct {
	sites []*ppl.Site
	// buf holds the sites of a small trace that [Run] records, and hs the
	// handlers of its run while it lasts, so that neither allocates.
	buf [8]*ppl.Site
	hs  [8]ppl.Handler

	// The index and the graph are built on first use, for as many sites
	// as were recorded then.
	mu      sync.Mutex
	indexed int
	byAddr  map[string]*ppl.Site
	byID    map[int]*ppl.Site
	graph   *Graph
	// tape is the tape the trace's memory belongs to, nil when none.
	tape *ad.Tape
	// seenAddrs and seenIDs are the memory of Compose's checks.
	seenAddrs map[string]bool
	seenIDs   map[int]bool
}

// traceRecords are the traces of each tape.
var traceRecords = arena.NewKey[Trace]()

// newTrace returns an empty trace whose memory belongs to tape (nil: its
// own).
func newTrace(tape *ad.Tape) *Trace {
	if tape == nil {
		t := new(Trace)
		t.sites = t.buf[:0]
		return t
	}
	t := traceRecords.Get(tape)
	clear(t.buf[:])
	if cap(t.sites) < len(t.buf) {
		t.sites = t.buf[:0]
	}
	clear(t.sites)
	t.sites, t.indexed, t.graph, t.tape = t.sites[:0], 0, nil, tape
	clear(t.byAddr)
	clear(t.byID)
	return t
}

// tapeOf returns the tape that handlers give a run, or nil when a
// handler other than a [ppl.Config] configures the run, which may set it.
func tapeOf(handlers []ppl.Handler) *ad.Tape {
	var tape *ad.Tape
	for _, h := range handlers {
		if _, ok := h.(ppl.Configurer); !ok {
			continue
		}
		c, ok := h.(ppl.Config)
		if !ok {
			return nil
		}
		if c.Tape != nil {
			tape = c.Tape
		}
	}
	return tape
}

// Run runs model once under handlers and returns its trace, or the first
// [ppl.SiteError] (also for shape panics of the ad package); any other
// panic propagates unchanged. See [ppl.Run] for the order in which
// handlers see sites and for the run's defaults. The trace records every
// site that no handler blocked, after all handlers have seen it.
//
// Handlers that configure the run rather than its sites are [Seed] and
// [ppl.Config] (tape, random source, parameter store, batch size).
func Run(model ppl.Model, handlers ...ppl.Handler) (*Trace, error) {
	t := newTrace(tapeOf(handlers))
	hs := append(t.hs[:0], handlers...)
	hs = append(hs, recorder{t})
	err := ppl.Run(model, hs...)
	clear(hs)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// Record returns a handler that appends every site it passes to t once
// the site is finished. [Run] records the outermost view itself; Record
// placed earlier in the chain records an inner view, for instance the
// sites a later [Block] hides. A Trace should receive the sites of one
// run only.
func Record(t *Trace) ppl.Handler { return recorder{t} }

// recorder is the handler of [Record].
type recorder struct{ t *Trace }

func (r recorder) Handle(s *ppl.Site, next func(*ppl.Site)) {
	next(s)
	r.t.add(s)
}

// smallTrace is the number of sites up to which a trace finds a site by
// scanning its sites rather than by building maps.
const smallTrace = 16

func (t *Trace) add(s *ppl.Site) { t.sites = append(t.sites, s) }

// index returns the lookup maps, brought up to date with the sites.
func (t *Trace) index() (byAddr map[string]*ppl.Site, byID map[int]*ppl.Site) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.byAddr == nil || t.byID == nil {
		t.byAddr = make(map[string]*ppl.Site, len(t.sites))
		t.byID = make(map[int]*ppl.Site, len(t.sites))
	}
	for _, s := range t.sites[t.indexed:] {
		t.byAddr[s.Addr] = s
		if s.Kind == ppl.KindSample && s.ID >= 0 {
			t.byID[s.ID] = s
		}
	}
	t.indexed = len(t.sites)
	return t.byAddr, t.byID
}

// Sites returns the sites in execution order. The slice aliases the trace
// and must not be modified.
func (t *Trace) Sites() []*ppl.Site { return t.sites }

// Len returns the number of sites.
func (t *Trace) Len() int { return len(t.sites) }

// Site returns the site at addr, or nil.
func (t *Trace) Site(addr string) *ppl.Site {
	if len(t.sites) <= smallTrace {
		// The last site of the address, as the map keeps.
		for i := len(t.sites) - 1; i >= 0; i-- {
			if s := t.sites[i]; s.Addr == addr {
				return s
			}
		}
		return nil
	}
	byAddr, _ := t.index()
	return byAddr[addr]
}

// ByID returns the sample site with the given id, or nil.
func (t *Trace) ByID(id int) *ppl.Site {
	if len(t.sites) <= smallTrace {
		for i := len(t.sites) - 1; i >= 0; i-- {
			if s := t.sites[i]; s.Kind == ppl.KindSample && s.ID >= 0 && s.ID == id {
				return s
			}
		}
		return nil
	}
	_, byID := t.index()
	return byID[id]
}

// NextID returns one more than the largest sample-site id of t (0 for a
// trace without sample sites): the [ppl.Config].FirstID that gives a
// second run on the same tape ids disjoint from t's.
func (t *Trace) NextID() int {
	next := 0
	for _, s := range t.sites {
		if s.Kind == ppl.KindSample {
			next = max(next, s.ID+1)
		}
	}
	return next
}

// Batch returns the number of rows of the trace's values outside every
// plate (its particles; see [ppl.Stack]), 0 for a trace without sample,
// observe or cost sites.
func (t *Trace) Batch() int {
	for _, s := range t.sites {
		switch s.Kind {
		case ppl.KindSample, ppl.KindObserve, ppl.KindCost:
			return s.Value.Rows() / s.Plates.Rows()
		}
	}
	return 0
}

// LogProbSum returns the sum over sample and observe sites of their
// scaled and masked log-probabilities ([ppl.Site.ScaledLogProb]), a
// [B x 1] tensor: log p of the trace's values for each row, the rows of
// sites inside plates summed into their particle's (see [ppl.Move]).
// Sites without a log-prob (substituted or intervened values) are left
// out. It returns nil when no site has a log-prob.
func (t *Trace) LogProbSum() *ad.Tensor {
	var sum *ad.Tensor
	for _, s := range t.sites {
		if lp := s.ScaledLogProb(); lp != nil {
			lp = ppl.Move(lp, s.Plates, nil)
			if sum == nil {
				sum = lp
			} else {
				sum = ad.Add(sum, lp)
			}
		}
	}
	return sum
}
