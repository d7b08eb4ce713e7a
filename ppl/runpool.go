package ppl

import (
	"sync"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/internal/arena"
)

// runs holds the runs that finished, for [Run] to reuse with their maps.
var runs = sync.Pool{New: func() any {
	return &run{
		addrs:  make(map[string]struct{}),
		frames: make(map[string]*Frame),
		params: make(map[string]*ad.Tensor),
	}
}}

// newRun returns a run of a new generation with empty state.
func newRun() *run {
	r := runs.Get().(*run)
	r.gen++
	r.finished = false
	return r
}

// release empties r and puts it back in the pool. Ctxs of r stay
// finished: the next run of the struct has another generation.
func (r *run) release() {
	r.finished = true
	r.cfg = Config{}
	clear(r.handlers)
	r.handlers = r.handlers[:0]
	r.nextID = 0
	clear(r.addrs)
	clear(r.frames)
	clear(r.params)
	r.sampled = ad.Provenance{}
	r.current, r.inSite = "", false
	runs.Put(r)
}

// The records of a run live on its tape, like its tensors: a site or
// Ctx is reused once the tape is reset.
var (
	siteRecords = arena.NewKey[Site]()
	ctxRecords  = arena.NewKey[Ctx]()
)

// site returns a site record of the run's tape, to be filled whole.
func (r *run) site() *Site { return siteRecords.Get(r.cfg.Tape) }

// ctx returns a Ctx record of the run's tape, to be filled whole.
func (r *run) ctx() *Ctx { return ctxRecords.Get(r.cfg.Tape) }

// dispatch passes s to handler i, or to the default behaviour after the
// last handler. A site that a handler blocked skips the handlers after it.
func (r *run) dispatch(i int, s *Site) {
	for ; i < len(r.handlers); i++ {
		if !s.Blocked {
			r.handlers[i].Handle(s, r.next(i+1))
			return
		}
	}
	r.handle(s)
}

// next returns the function that passes a site to handler i (to the
// default behaviour when i is past the last handler), made once per
// pooled run.
func (r *run) next(i int) func(*Site) {
	for len(r.nexts) <= i {
		j := len(r.nexts)
		r.nexts = append(r.nexts, func(s *Site) { r.dispatch(j, s) })
	}
	return r.nexts[i]
}
