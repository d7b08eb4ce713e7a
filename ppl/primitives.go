package ppl

import (
	"bytes"
	"errors"
	"fmt"
	"unsafe"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl/dist"
)

// Sample draws the random variable addr from d and returns its [B x D]
// value, whose provenance is the site's own id: every tensor computed from
// it depends on this site. The distribution's parameters must be tensors
// of the run's tape. The handlers may replace the value (replay,
// condition, substitution); see [Site].
//
// Sample panics with a [SiteError] when addr is empty or already used in
// this run, when d's parameters are invalid, when a supplied value is
// outside d's support or of the wrong shape, when d's batch differs from
// the run's, and when the run has no random source but must draw.
//
// Sample and [Observe] take any distribution, a concrete value or a
// dist.Distribution; they are generic in its type so that a training loop
// that resets its tape every step does not allocate for the distribution
// values its model passes.
func Sample[D dist.Distribution](ctx *Ctx, addr string, d D) *ad.Tensor {
	ctx.check("Sample")
	s := ctx.run.site()
	box := reuseBox(s.box, d)
	*s = Site{Addr: ctx.Addr(addr), Kind: KindSample, Dist: box, Scale: ctx.plates.Scale(), Plates: ctx.plates, box: box}
	ctx.run.start(s, addr)
	s.ID = ctx.run.nextID
	ctx.run.nextID++
	ctx.run.send(s)
	return s.Value
}

// reuseBox returns d as a [dist.Distribution]: old when it holds a value
// of d's type with the same bits, else d in a new interface value.
//
// Sample and Observe are generic so that a model's distribution values
// need not be put in a new interface value every run, which allocates
// for a distribution of more than one word. The site record a run on a
// tape uses was used by the run before the tape's reset, which in a
// training loop was the same site: its distribution's parameters were the
// same tape nodes, so the old interface value holds an equal value and
// serves again.
func reuseBox[D dist.Distribution](old dist.Distribution, d D) dist.Distribution {
	if o, ok := old.(D); ok && sameBits(&o, &d) {
		return old
	}
	return d
}

// sameBits reports whether *a and *b have the same bytes.
func sameBits[T any](a, b *T) bool {
	n := int(unsafe.Sizeof(*a))
	return bytes.Equal(unsafe.Slice((*byte)(unsafe.Pointer(a)), n), unsafe.Slice((*byte)(unsafe.Pointer(b)), n))
}

// Observe scores the observed value under d: it records a cost site whose
// cost is -log p(value), [B x 1], and whose parents are the sample sites
// that cost depends on. value must be on the run's tape.
//
// Observe panics with a [SiteError] when addr is empty or already used,
// when d's parameters are invalid, and when value is outside d's support,
// of the wrong shape, or on another tape.
func Observe[D dist.Distribution](ctx *Ctx, addr string, d D, value *ad.Tensor) {
	ctx.check("Observe")
	s := ctx.run.site()
	box := reuseBox(s.box, d)
	*s = Site{Addr: ctx.Addr(addr), Kind: KindObserve, ID: -1, Dist: box, Value: value, Scale: ctx.plates.Scale(), Plates: ctx.plates, box: box}
	ctx.run.start(s, addr)
	ctx.run.send(s)
}

// Cost records value, a [B x 1] tensor, as a cost to minimize. Its parents
// are the sample sites in value's provenance.
//
// Cost panics with a [SiteError] when addr is empty or already used, and
// when value is not [B x 1] or not on the run's tape.
func Cost(ctx *Ctx, addr string, value *ad.Tensor) {
	ctx.check("Cost")
	s := ctx.run.site()
	*s = Site{Addr: ctx.Addr(addr), Kind: KindCost, ID: -1, Value: value, Scale: ctx.plates.Scale(), Plates: ctx.plates}
	ctx.run.start(s, addr)
	ctx.run.send(s)
}

// Deterministic records value under addr as a named intermediate, for
// inspection in a trace, and returns value unchanged.
//
// Deterministic panics with a [SiteError] when addr is empty or already
// used, and when value is nil or on another tape.
func Deterministic(ctx *Ctx, addr string, value *ad.Tensor) *ad.Tensor {
	ctx.check("Deterministic")
	s := ctx.run.site()
	*s = Site{Addr: ctx.Addr(addr), Kind: KindDeterministic, ID: -1, Value: value, Scale: ctx.plates.Scale(), Plates: ctx.plates}
	ctx.run.start(s, addr)
	ctx.run.send(s)
	return s.Value
}

// start checks the address of a new site and makes it the current one.
func (r *run) start(s *Site, rel string) {
	r.current = s.Addr
	if rel == "" {
		panic(&SiteError{Addr: s.Addr, Err: errors.New("empty address")})
	}
	if _, dup := r.addrs[s.Addr]; dup {
		panic(&SiteError{Addr: s.Addr, Err: errors.New("duplicate address: a site of this run already has it")})
	}
	r.addrs[s.Addr] = struct{}{}
}

// send passes s through the handler chain.
func (r *run) send(s *Site) {
	r.current = s.Addr
	r.inSite = true
	r.dispatch(0, s)
	// Not deferred: a panic leaves inSite set for Run to read.
	r.inSite = false
}

// fail panics with a SiteError for s.
func fail(s *Site, format string, args ...any) {
	panic(&SiteError{Addr: s.Addr, Err: fmt.Errorf(format, args...)})
}

// handle is the default behaviour, run after the last handler.
func (r *run) handle(s *Site) {
	switch s.Kind {
	case KindSample:
		r.sample(s)
	case KindObserve:
		r.observe(s)
	case KindCost:
		r.cost(s)
	case KindParam:
		r.param(s)
	case KindDeterministic:
		r.deterministic(s)
	case KindPlate:
		r.plate(s)
	default:
		fail(s, "invalid site kind %d", s.Kind)
	}
}

// checkDist validates the parameters of s.Dist.
func checkDist(s *Site) {
	if s.Dist == nil {
		fail(s, "nil distribution")
	}
	if err := s.Dist.Validate(); err != nil {
		panic(&SiteError{Addr: s.Addr, Err: err})
	}
}

// checkBatch checks the rows of a value at s against the run's batch and
// s's plates, fixing the batch size on the first use.
func (r *run) checkBatch(s *Site, rows int, what string) {
	per := s.Plates.Rows()
	if r.cfg.Batch == 0 {
		if rows%per != 0 {
			fail(s, "%s has %d rows, not a multiple of the %d rows per particle of the site's plates %v", what, rows, per, s.Plates)
		}
		r.cfg.Batch = rows / per
		return
	}
	want := r.cfg.Batch * per
	if rows == want {
		return
	}
	for k := len(s.Plates) - 1; k >= 0; k-- {
		if rows == r.cfg.Batch*s.Plates[:k].Rows() {
			fail(s, "%s has the %d rows of plates %v, but the site is inside plates %v (%d rows): use ppl.Broadcast to bring a value into a plate", what, rows, s.Plates[:k], s.Plates, want)
		}
	}
	if len(s.Plates) > 0 {
		fail(s, "%s has %d rows, the site's plates %v need %d", what, rows, s.Plates, want)
	}
	if rows == 1 {
		fail(s, "%s has batch 1, the run has batch %d (ppl.Expand broadcasts a [1xD] parameter to the batch)", what, r.cfg.Batch)
	}
	fail(s, "%s has batch %d, the run has batch %d", what, rows, r.cfg.Batch)
}

// checkDistRows checks the rows of s.Dist inside a plate, where a
// distribution with the rows of an outer level would silently score one
// member's value against every member: it must have the site's rows, or
// one row (parameters without particles).
func (r *run) checkDistRows(s *Site) {
	if len(s.Plates) == 0 {
		return
	}
	if b, _ := s.Dist.Shape(); b != 1 {
		r.checkBatch(s, b, "the distribution")
	}
}

// checkTape fails unless t is a tensor of the run's tape.
func (r *run) checkTape(s *Site, t *ad.Tensor, what string) {
	if t == nil {
		fail(s, "nil %s", what)
	}
	if t.Tape() != r.cfg.Tape {
		fail(s, "%s is a tensor of another tape than the run's", what)
	}
}

// checkValue validates a value that did not come from s.Dist itself.
func checkValue(s *Site) {
	if err := s.Dist.ValidateValue(s.Value); err != nil {
		panic(&SiteError{Addr: s.Addr, Err: err})
	}
}

func (r *run) sample(s *Site) {
	checkDist(s)
	if r.cfg.Batch != 0 {
		r.checkDistRows(s)
	}
	tp := r.cfg.Tape
	var own ad.Provenance
	if s.ID >= 0 {
		own = ad.ProvenanceOf(s.ID)
	}
	switch {
	case s.Value == nil:
		if r.cfg.Rand == nil {
			fail(s, "no random source: pass one with trace.Seed or ppl.Config")
		}
		if rd, ok := s.Dist.(dist.Reparameterized); ok && !s.NoRSample {
			s.Value = rd.RSample(r.cfg.Rand)
			s.Reparameterized = true
		} else {
			s.Value = s.Dist.Sample(r.cfg.Rand)
		}
		r.checkTape(s, s.Value, "the distribution's parameters")
		r.checkBatch(s, s.Value.Rows(), "value")
	case s.Substituted:
		r.checkTape(s, s.Value, "substituted value")
		b, e := s.Dist.Shape()
		if rows, cols := s.Value.Dims(); (rows != b && b != 1) || cols != e {
			fail(s, "substituted value is [%dx%d], the distribution's values are [%dx%d]", rows, cols, b, e)
		}
		r.checkBatch(s, s.Value.Rows(), "value")
		// The parents are the provenance of the parameters; score a copy
		// of the value without provenance to read it, and keep no score.
		probe := tp.WithProvenance(ad.StopGradient(s.Value), ad.Provenance{})
		s.Parents = s.Dist.LogProb(probe).Provenance()
		s.Value = tp.WithProvenance(s.Value, own)
		r.sampled = r.sampled.Union(own)
		return
	default:
		if s.Value.Tape() != tp {
			// A value replayed from a run on another tape: copy it as a
			// constant, without gradient.
			s.Value = tp.Const(s.Value.Value())
		}
		checkValue(s)
		r.checkBatch(s, s.Value.Rows(), "value")
	}
	r.sampled = r.sampled.Union(own)
	s.Value = tp.WithProvenance(s.Value, own)
	s.LogProb = s.Dist.LogProb(s.Value)
	// The distribution interface does not expose its parameters; the
	// provenance of log p(value) is that of the parameters plus the
	// site's own id, which the parameters cannot hold because it is new.
	s.Parents = s.LogProb.Provenance().Minus(own)
}

func (r *run) observe(s *Site) {
	checkDist(s)
	if s.Conditioned && s.Value != nil && s.Value.Tape() != r.cfg.Tape {
		s.Value = r.cfg.Tape.Const(s.Value.Value())
	}
	r.checkTape(s, s.Value, "observed value")
	r.checkBatch(s, s.Value.Rows(), "observed value")
	r.checkDistRows(s)
	checkValue(s)
	s.LogProb = s.Dist.LogProb(s.Value)
	s.Cost = ad.Neg(s.LogProb)
	r.setCostParents(s, s.LogProb.Provenance())
}

func (r *run) cost(s *Site) {
	r.checkTape(s, s.Value, "cost")
	if rows, cols := s.Value.Dims(); cols != 1 {
		fail(s, "cost must be [Bx1], got [%dx%d]", rows, cols)
	}
	r.checkBatch(s, s.Value.Rows(), "cost")
	s.Cost = s.Value
	r.setCostParents(s, s.Value.Provenance())
}

// setCostParents sets the parents of the cost or observe site s to prov,
// or, when prov is empty and sample sites ran before s, to all of them
// (or fails, with StrictProvenance): a value without provenance after
// sampling has most likely lost it on its way through plain Go.
func (r *run) setCostParents(s *Site, prov ad.Provenance) {
	if !prov.Empty() || r.sampled.Empty() {
		s.Parents = prov
		return
	}
	if r.cfg.StrictProvenance {
		fail(s, "the %s carries no provenance, but sample sites ran before it; compute it from their values with ad ops or ppl.Lift so that it names the sites it depends on", s.Kind)
	}
	s.Parents = r.sampled
	s.AssumedParents = true
}

func (r *run) deterministic(s *Site) {
	r.checkTape(s, s.Value, "value")
	if s.Intervened && s.Dist != nil {
		b, e := s.Dist.Shape()
		if rows, cols := s.Value.Dims(); (rows != b && b != 1) || cols != e {
			fail(s, "fixed value is [%dx%d], the distribution's values are [%dx%d]", rows, cols, b, e)
		}
	}
	s.Parents = s.Value.Provenance()
}

// Expand returns t broadcast to the run's batch (the rows of ctx's plate
// level, inside plates): t itself when it already has the batch's rows,
// else a new [B x D] tensor whose rows are all t's
// single row, with t's gradient path and provenance. Distributions draw
// one value per row of their parameters, so a prior with [1 x D]
// parameters is expanded before a sample site in a batched model:
//
//	h := ppl.Sample(ctx, "h", dist.BernoulliLogits(ppl.Expand(ctx, prior)))
//
// Expand panics with a [SiteError] when the batch size is not yet known
// (set [Config].Batch) or t has neither 1 row nor the batch's rows.
func Expand(ctx *Ctx, t *ad.Tensor) *ad.Tensor {
	ctx.check("Expand")
	b := ctx.run.cfg.Batch * ctx.plates.Rows()
	switch {
	case b == 0:
		panic(&SiteError{Addr: ctx.run.current, After: true, Err: errors.New("Expand: the batch size is not known yet; set ppl.Config.Batch")})
	case t.Rows() == b:
		return t
	case t.Rows() != 1 && len(ctx.plates) > 0:
		panic(&SiteError{Addr: ctx.run.current, After: true, Err: fmt.Errorf("Expand: tensor has %d rows, want 1 or the %d rows of plates %v (ppl.Broadcast brings a value of an outer level in)", t.Rows(), b, ctx.plates)})
	case t.Rows() != 1:
		panic(&SiteError{Addr: ctx.run.current, After: true, Err: fmt.Errorf("Expand: tensor has %d rows, want 1 or the batch %d", t.Rows(), b)})
	}
	return ad.Add(t, t.Tape().Zeros(b, t.Cols()))
}
