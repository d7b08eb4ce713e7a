package vi

import (
	"errors"
	"fmt"
	"slices"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/internal/arena"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/trace"
)

// ownHandlers are the handlers an objective applies to its model only and to
// its guide only.
type ownHandlers struct{ model, guide []ppl.Handler }

func handlersOf(model, guide []ppl.Handler) ownHandlers {
	return ownHandlers{model: model, guide: guide}
}

// pair is one run of a guide and of the model replayed on its values.
type pair struct {
	guide, model *trace.Trace
	rec          *pairRecord
}

// runPair runs guide under env, own.guide and handlers, then model under
// own.model and the handlers' effect on plates, on the same tape
// with every latent given the guide's value and the guide's site id (see
// the package documentation), and checks that the two agree on their
// latents. name prefixes the errors.
func runPair(name string, model, guide ppl.Model, env ppl.Config, handlers []ppl.Handler, own ownHandlers) (pair, error) {
	switch {
	case model == nil:
		return pair{}, fmt.Errorf("vi: %s: nil model", name)
	case guide == nil:
		return pair{}, fmt.Errorf("vi: %s: nil guide", name)
	}
	if env.Tape == nil {
		// Both runs must share one tape for the guide's values to carry
		// their gradient paths into the model.
		env.Tape = ad.NewTape()
	}
	rec := pairRecords.Get(env.Tape)
	hs := append(rec.hs[:0], rec.box(0, env))
	hs = append(hs, own.guide...)
	hs = append(hs, handlers...)
	rec.hs = hs
	g, err := trace.Run(guide, hs...)
	if err == nil {
		err = trace.CheckAddrs(g, own.guide...)
	}
	if err != nil {
		return pair{}, fmt.Errorf("vi: %s: guide: %w", name, err)
	}
	for _, s := range g.Sites() {
		if s.Kind == ppl.KindObserve {
			return pair{}, fmt.Errorf("vi: %s: guide: %w", name, &ppl.SiteError{Addr: s.Addr,
				Err: errors.New("a guide must not observe data; observe it in the model")})
		}
	}
	menv := env
	if b := g.Batch(); b > 0 {
		menv.Batch = b
	}
	menv.FirstID = max(env.FirstID, g.NextID())
	ms := append(rec.hs[:0], rec.box(1, menv))
	ms = append(ms, own.model...)
	rec.plates = rec.plates[:0]
	for _, h := range handlers {
		rec.plates = append(rec.plates, platesOnly{h})
	}
	for i := range rec.plates {
		ms = append(ms, &rec.plates[i])
	}
	ms = append(ms, trace.ReplayPlates(g), replayGuide{g})
	rec.hs = ms
	m, err := trace.Run(model, ms...)
	clear(rec.hs)
	clear(rec.plates)
	if err == nil {
		err = trace.CheckAddrs(m, own.model...)
	}
	if err != nil {
		return pair{}, fmt.Errorf("vi: %s: model: %w", name, err)
	}
	for _, s := range g.Sites() {
		if !s.Stochastic() && !s.Intervened {
			continue
		}
		ms := m.Site(s.Addr)
		switch {
		case ms == nil:
			return pair{}, fmt.Errorf("vi: %s: %w", name, &ppl.SiteError{Addr: s.Addr,
				Err: errors.New("the guide samples a latent that the model lacks")})
		case ms.Kind == ppl.KindObserve:
			return pair{}, fmt.Errorf("vi: %s: %w", name, &ppl.SiteError{Addr: s.Addr,
				Err: errors.New("the guide samples a site that the model observes")})
		case !ms.Stochastic() && !ms.Intervened:
			return pair{}, fmt.Errorf("vi: %s: %w", name, &ppl.SiteError{Addr: s.Addr,
				Err: fmt.Errorf("the guide samples a site that is a %v site of the model", ms.Kind)})
		case !slices.Equal(s.Plates.Names(), ms.Plates.Names()):
			return pair{}, fmt.Errorf("vi: %s: %w", name, &ppl.SiteError{Addr: s.Addr,
				Err: fmt.Errorf("the guide samples the latent inside plates %v, the model inside plates %v", s.Plates, ms.Plates)})
		}
	}
	return pair{guide: g, model: m, rec: rec}, nil
}

// pairRecord is the memory of one [runPair] on a tape, reused once the
// tape is reset: the handlers of its two runs, and its two configs boxed
// as handlers, kept boxed while they stay the same.
type pairRecord struct {
	// sites is the memory of the objective's list of sites.
	sites  []*ppl.Site
	hs     []ppl.Handler
	plates []platesOnly
	env    [2]ppl.Config
	boxed  [2]ppl.Handler
}

var pairRecords = arena.NewKey[pairRecord]()

// box returns env as a handler, boxed once while config i stays env.
func (r *pairRecord) box(i int, env ppl.Config) ppl.Handler {
	if r.boxed[i] == nil || r.env[i] != env {
		r.env[i], r.boxed[i] = env, env
	}
	return r.boxed[i]
}

// platesOnly passes the plates of the model, and only those, through a
// handler given to an objective's Run, so that a re-run that replays the
// plates of an earlier trace (trace.ReplayPlates) holds the same
// subsample in a plate that only the model enters.
type platesOnly struct{ h ppl.Handler }

func (p platesOnly) Handle(s *ppl.Site, next func(*ppl.Site)) {
	if s.Kind == ppl.KindPlate {
		p.h.Handle(s, next)
		return
	}
	next(s)
}

// replayGuide is the model run's handler that gives each latent the value
// of the guide's site at its address and that site's id, so that a tensor
// of either run names a random variable by one id. A guide value
// substituted by trace.Override is substituted again; a value the guide
// fixed by intervention (trace.Do) is fixed again.
type replayGuide struct{ g *trace.Trace }

func (h replayGuide) Handle(s *ppl.Site, next func(*ppl.Site)) {
	g := h.g
	if s.Kind != ppl.KindSample {
		next(s)
		return
	}
	gs := g.Site(s.Addr)
	switch {
	case gs == nil:
		panic(&ppl.SiteError{Addr: s.Addr, Err: errors.New("the model samples a latent that the guide does not sample")})
	case gs.Intervened:
		s.Kind = ppl.KindDeterministic
		s.ID = -1
		s.Value = gs.Value
		s.Intervened = true
	case gs.Kind != ppl.KindSample:
		panic(&ppl.SiteError{Addr: s.Addr, Err: fmt.Errorf("the model samples a latent that is a %v site of the guide", gs.Kind)})
	default:
		if s.Dist != nil {
			b, e := s.Dist.Shape()
			r, c := gs.Value.Dims()
			if (b != r && b != 1) || e != c {
				panic(&ppl.SiteError{Addr: s.Addr, Err: fmt.Errorf(
					"shape disagreement: the guide's value is [%dx%d], the model's distribution is [%dx%d]", r, c, b, e)})
			}
		}
		s.ID = gs.ID
		s.Value = gs.Value
		if gs.Substituted {
			s.Substituted = true
		} else {
			s.Replayed = true
		}
	}
	next(s)
}

// logProb returns log p(value) of a scored site, or, for a substituted
// one, the distribution's log-density formula at the substituted value,
// the continuous extension that relaxation estimators evaluate. A panic of
// the distribution (a value its formula cannot take) is returned as an
// error naming the site.
func logProb(s *ppl.Site) (lp *ad.Tensor, err error) {
	if s.LogProb != nil {
		return s.LogProb, nil
	}
	defer func() {
		if r := recover(); r != nil {
			err = &ppl.SiteError{Addr: s.Addr, Err: fmt.Errorf("scoring the substituted value: %v", r)}
		}
	}()
	return s.Dist.LogProb(s.Value), nil
}

// checkFree returns an error if a site of p uses addr, an address the
// objective gives one of its own sites.
func (p pair) checkFree(addr, what string) error {
	if p.guide.Site(addr) != nil || p.model.Site(addr) != nil {
		return &ppl.SiteError{Addr: addr, Err: fmt.Errorf("the address of %s is used by a site of the model or the guide", what)}
	}
	return nil
}
