package trace

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
)

// Replay returns a handler that gives each sample site the value of the
// sample site of t at the same address, so a model re-run under Replay of
// a guide's trace sees the guide's values. Sites t lacks, and sites whose
// counterpart in t is not a sample site, are drawn as usual.
//
// A replayed value is checked against the site's support and scored under
// the site's own distribution; the site stays a random variable of the new
// run: its value gets provenance {its own id} and Replayed is set. When t
// was recorded on the run's tape, the value is t's tensor itself, so
// gradients flow back through it into whatever produced it (a guide's
// reparameterized sample); from another tape it is copied as a constant.
// t's tape must not have been reset since t was recorded. Plates take the
// subsample of t's plate at the same address, as [ReplayPlates] gives it.
func Replay(t *Trace) ppl.Handler {
	return ppl.HandlerFunc(func(s *ppl.Site, next func(*ppl.Site)) {
		replayPlate(t, s)
		if s.Kind == ppl.KindSample {
			if rec := t.Site(s.Addr); rec != nil && rec.Kind == ppl.KindSample {
				s.Value = rec.Value
				s.Replayed = true
			}
		}
		next(s)
	})
}

// ReplayPlates returns a handler that gives each plate (a site of kind
// [ppl.KindPlate]) the subsample of t's plate at the same address, so that
// a model run after its guide, or a re-run of a program, holds the same
// members. The run fails with a [ppl.SiteError] naming the plate when t's
// plate has another size.
func ReplayPlates(t *Trace) ppl.Handler { return platesReplay{t} }

// platesReplay is the handler of [ReplayPlates].
type platesReplay struct{ t *Trace }

func (h platesReplay) Handle(s *ppl.Site, next func(*ppl.Site)) {
	replayPlate(h.t, s)
	next(s)
}

// replayPlate gives the plate site s the subsample of t's plate at its
// address, if there is one.
func replayPlate(t *Trace, s *ppl.Site) {
	if s.Kind != ppl.KindPlate {
		return
	}
	rec := t.Site(s.Addr)
	if rec == nil || rec.Kind != ppl.KindPlate {
		return
	}
	f, old := s.Frame(), rec.Frame()
	if f.Size != old.Size {
		panic(&ppl.SiteError{Addr: s.Addr, Err: fmt.Errorf("trace: plate has size %d, but size %d in the replayed trace", f.Size, old.Size)})
	}
	f.Indices = old.Indices
}

// ReplayValues returns a handler that gives each sample site whose address
// is in values that value, as [Replay] does for a recorded trace: the
// value is checked and scored under the site's distribution, gets
// provenance {the site's id}, and the site stays a random variable with
// Replayed set. Stored values (an experience-replay buffer, say) are
// copied onto the run's tape when they live on another.
func ReplayValues(values map[string]*ad.Tensor) ppl.Handler {
	return ppl.HandlerFunc(func(s *ppl.Site, next func(*ppl.Site)) {
		if v, ok := values[s.Addr]; ok && s.Kind == ppl.KindSample {
			s.Value = v
			s.Replayed = true
		}
		next(s)
	})
}

// Condition returns a handler that observes the given values: a sample
// site whose address is in values becomes an observe site (kind
// [ppl.KindObserve], ID -1) with that value, which is checked against the
// support and scored, and costs -log p like any observation; the model
// receives the value unchanged, with its own provenance (none, for data).
// An observe site whose address is in values observes that value instead
// of the model's. A value of another tape than the run's is copied onto it
// as a constant ([ppl.Site].Conditioned), so one map of data serves every
// run. The handler is [Addressed].
func Condition(values map[string]*ad.Tensor) ppl.Handler {
	return addressed{values: values, HandlerFunc: func(s *ppl.Site, next func(*ppl.Site)) {
		if v, ok := values[s.Addr]; ok && (s.Kind == ppl.KindSample || s.Kind == ppl.KindObserve) {
			s.Kind = ppl.KindObserve
			s.ID = -1
			s.Value = v
			s.Conditioned = true
		}
		next(s)
	}}
}

// Do returns a handler that intervenes at the given sample sites: the
// site's value is fixed to the given tensor without drawing or scoring it.
// The site becomes a deterministic site (kind [ppl.KindDeterministic], ID
// -1, Intervened set) and is no longer a random variable of the graph; the
// model receives the tensor unchanged, with its own provenance, so the
// sites downstream depend on whatever the tensor depends on instead of on
// the site. The tensor must have the distribution's value shape. The
// handler is [Addressed].
func Do(values map[string]*ad.Tensor) ppl.Handler {
	return addressed{values: values, HandlerFunc: func(s *ppl.Site, next func(*ppl.Site)) {
		if v, ok := values[s.Addr]; ok && s.Kind == ppl.KindSample {
			s.Kind = ppl.KindDeterministic
			s.ID = -1
			s.Value = v
			s.Intervened = true
		}
		next(s)
	}}
}

// Substitute returns a handler that replaces parameter values: a param
// site created by [ppl.Param] whose address is in values returns that
// tensor instead of the store's parameter (Param is then nil), unchanged
// and with its own provenance. The tensor must have the requested shape.
// Parameters of a [ppl.Module] cannot be substituted (the run fails with a
// [ppl.SiteError]). The handler is [Addressed].
func Substitute(values map[string]*ad.Tensor) ppl.Handler {
	return addressed{values: values, HandlerFunc: func(s *ppl.Site, next func(*ppl.Site)) {
		if v, ok := values[s.Addr]; ok && s.Kind == ppl.KindParam {
			s.Value = v
		}
		next(s)
	}}
}

// Override returns a handler that puts arbitrary tensors in place of
// sample values, as estimators do when they re-run a model with relaxed
// or mean-field values (MuProp, REBAR). For each sample site fn is called
// before the site is drawn, with the site's address and distribution set;
// a nil result leaves the site alone. A tensor returned must have the
// distribution's value shape and be on the run's tape. The site is then
// not drawn and not scored (LogProb stays nil, Substituted is set); its
// value is the tensor with provenance {the site's id}, so the gradient
// flows through it, and the site remains a random variable with the same
// parents, which keeps the graph of the run the shape of an ordinary one.
func Override(fn func(s *ppl.Site) *ad.Tensor) ppl.Handler {
	return ppl.HandlerFunc(func(s *ppl.Site, next func(*ppl.Site)) {
		if s.Kind == ppl.KindSample {
			if v := fn(s); v != nil {
				s.Value = v
				s.Substituted = true
			}
		}
		next(s)
	})
}

// Block returns a handler that hides the sites for which match reports
// true from every later handler, the trace of [Run] included; the sites
// still run (they are drawn, scored and validated) and the model receives
// their values. A hidden sample site still gives its value its own
// provenance, so in a trace that lacks it the dependence of later sites
// on it is not visible: the graph leaves out ids it does not hold.
func Block(match func(s *ppl.Site) bool) ppl.Handler {
	return ppl.HandlerFunc(func(s *ppl.Site, next func(*ppl.Site)) {
		if match(s) {
			s.Blocked = true
		}
		next(s)
	})
}

// Addrs returns a predicate, for [Block], that matches the sites at the
// given addresses.
func Addrs(addrs ...string) func(s *ppl.Site) bool {
	set := make(map[string]bool, len(addrs))
	for _, a := range addrs {
		set[a] = true
	}
	return func(s *ppl.Site) bool { return set[s.Addr] }
}

// Under returns a predicate, for [Block], that matches the sites in the
// scope with the given address: Under("decoder") matches "decoder/x" and
// "decoder/fc/W" but not "decoderx".
func Under(scope string) func(s *ppl.Site) bool {
	prefix := scope + "/"
	return func(s *ppl.Site) bool { return strings.HasPrefix(s.Addr, prefix) }
}

// Scale returns a handler that multiplies the Scale of every sample,
// observe and cost site by factor, so that objectives built from
// [ppl.Site.ScaledLogProb] and [ppl.Site.ScaledCost] weigh them by it.
// Every site is weighed, global latents included: N/B suits a minibatch of
// B out of N data points only in a model whose every latent is local; for
// a model with global latents, a subsampled plate ([ppl.Plate] with
// [ppl.Subsample]) weighs the sites inside it and only those. Values, raw
// log-probs and costs are unchanged. Nested Scale handlers multiply. The
// run fails with a [ppl.SiteError] at the first such site if factor is
// not finite and positive.
func Scale(factor float64) ppl.Handler {
	return ppl.HandlerFunc(func(s *ppl.Site, next func(*ppl.Site)) {
		if scored(s) {
			if !(factor > 0) || math.IsInf(factor, 0) {
				panic(&ppl.SiteError{Addr: s.Addr, Err: fmt.Errorf("trace: Scale: factor must be finite and > 0, got %v", factor)})
			}
			s.Scale *= factor
		}
		next(s)
	})
}

// scored reports whether s is a kind that Scale and Mask apply to.
func scored(s *ppl.Site) bool {
	return s.Kind == ppl.KindSample || s.Kind == ppl.KindObserve || s.Kind == ppl.KindCost
}

// Seed returns a handler that makes rng the run's random source; it is
// shorthand for ppl.Config{Rand: rng}. Every draw of the run comes from
// rng, so the same seed gives the same run.
func Seed(rng *rand.Rand) ppl.Handler { return ppl.Config{Rand: rng} }
