package vi

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/internal/arena"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
)

// KLAddr returns the address of the cost that [ELBO] gives the latent at
// addr: "kl(" + addr + ")". Its expectation under the guide is the KL
// divergence of the guide from the prior at that site, hence the name.
func KLAddr(addr string) string {
	if a, ok := klAddrs.Load(addr); ok {
		return a.(string)
	}
	a := "kl(" + addr + ")"
	if klAddrCount.Add(1) <= maxKLAddrs {
		klAddrs.Store(addr, a)
	}
	return a
}

// klAddrs holds the cost addresses made so far, up to maxKLAddrs of them,
// so that a step of a model whose addresses repeat makes none anew.
var (
	klAddrs     sync.Map
	klAddrCount atomic.Int64
)

const maxKLAddrs = 1 << 16

// ELBO is the evidence lower bound of a model and a guide,
//
//	ELBO = E_q[ log p(x, z) - log q(z) ],
//
// laid out as a multi-cost stochastic computation graph whose loss is
// -ELBO. Run returns a trace holding, in this order:
//
//   - the guide's sites: its plates, its sample sites (the random
//     variables being trained), its intervened sites, its own cost sites
//     and its deterministic sites (such as the critic inputs that q.Input
//     records, which must reach the objective's trace to be read);
//   - for each of the model's sites in the model's order: for a latent z,
//     a cost site at [KLAddr](z) whose cost is log q(z|..) - log p(z|..),
//     [B x 1]; the model's observe sites (cost -log p(x|..)) and cost
//     sites, as the model recorded them; the plates that only the model
//     enters.
//
// Each cost's parents come from the provenance of its value, so an
// estimator sees only the costs its site can reach: in a chain
// z1 -> z2 -> x, z2's learning signal holds kl(z2) and x but not kl(z1).
// The model's own sample, param and deterministic sites are not in the
// trace: its latents are the guide's.
//
// Each latent's cost is inside the latent's plates (guide and model must
// sample it inside the same plates, in the same order) and has Scale the
// product of the guide's and the model's site Scale, the plates' own
// scale counted once, and Mask their combined mask; the handlers given to
// Run apply to the guide, so trace.Scale and trace.Mask passed there
// weigh the latents' costs, not the model's observations (to leave
// missing data points out, pass trace.MaskPlate in ModelHandlers). For
// minibatches,
// put the data in a subsampled plate (ppl.Plate with ppl.Subsample): the
// sites inside it, and only those, are weighed by N/n, so global latents
// keep their full KL. The Scale field multiplies the Scale of every cost,
// and is therefore refused above 1 when a latent is outside every plate.
//
// With AnalyticKL, a latent whose guide and prior have a closed-form KL
// divergence in [dist.KL] (a pair of one family: Normal, LogNormal,
// MultivariateNormal, MultivariateNormalDiag, Gamma, Beta, Dirichlet,
// Exponential, Poisson, Bernoulli, Categorical or OneHotCategorical) has
// the cost KL(q || p) instead of the sampled log ratio:
// the same expectation, usually with less variance (not always: for the
// exact posterior as guide the sampled bound is constant). Latents are
// paired by address whatever the order in which the guide draws them; a
// latent whose prior depends on a latent that the guide draws from it (a
// guide that samples in the reverse order of the model, say) keeps the
// sampled log ratio, since the closed form would not have its expectation
// there. That cost
// depends on the distributions' parameters, not on the sampled value, so
// it is reachable from the latent's parents but not from the latent
// itself.
//
// ELBO is a value type; its zero value is not usable (nil Model and
// Guide). It is safe for concurrent use when Model and Guide are.
type ELBO struct {
	// Model is the joint p(x, z): it samples every latent and observes the
	// data.
	Model ppl.Model
	// Guide is the variational distribution q(z): it samples every latent
	// of the model, at the same addresses, and observes nothing.
	Guide ppl.Model
	// AnalyticKL uses the closed-form KL divergence for latents whose
	// guide and prior have one (see [dist.KL]); other latents keep the
	// sampled log ratio.
	AnalyticKL bool
	// Scale, when not 0, multiplies the Scale of every cost of the
	// objective. Below 1 (1/K to average over K particles per data point,
	// say) it weighs every cost alike. Above 1 (N/B for a minibatch) it
	// suits only models whose latents are all local, each inside a plate:
	// Run fails, naming the latent, when Scale is above 1 and the guide
	// samples a latent outside every plate, whose KL it would weigh too.
	// For minibatches, a subsampled ppl.Plate is the right tool: it weighs
	// the sites inside it, and only those. 0 means 1.
	Scale float64
	// ModelHandlers apply to every run of the model only, before the
	// objective's own: trace.Condition feeds it data by address,
	// trace.Do, trace.Mask and trace.Scale act on its sites. A
	// trace.Condition, trace.Do or trace.Substitute address that the model
	// never reaches is an error naming it, unless the handler is wrapped
	// with trace.Optional.
	ModelHandlers []ppl.Handler
	// GuideHandlers apply to every run of the guide only, before the
	// handlers given to Run, and are checked the same way.
	GuideHandlers []ppl.Handler
}

// Run runs the guide under env and handlers, then the model on env's tape
// with each latent given the guide's value, and returns the objective's
// trace (see [ELBO]).
//
// The guide runs with env as given (a nil Tape is replaced by a new tape
// that both runs share). The model runs with the guide's batch and
// FirstID one past the guide's largest id; each of its latents takes the
// id of the guide's site at the same address, so a tensor of either run
// names a random variable by one id and the provenance of every cost is in
// the guide's ids. A guide value substituted by trace.Override is
// substituted in the model too, and both sides score it with their
// distributions' log-density formulas, without support checks (the
// continuous extension that relaxation estimators evaluate). A latent
// that the guide fixed by intervention (trace.Do) is fixed in the model
// too and has no cost. The model's plates take the guide's subsample, and
// the handlers act on the plates of the model that the guide lacks
// (trace.ReplayPlates of an earlier trace of the objective gives a re-run
// the same minibatch).
//
// Run returns an error wrapping a *[ppl.SiteError] naming the address
// when the model samples a latent that the guide does not, when the guide
// samples a site that the model lacks or does not sample, when the
// guide's value does not have the shape of the model's distribution at a
// site, when the guide observes data, and when a cost's address is taken
// by a site of the model or the guide; and the errors of the two runs.
func (e ELBO) Run(env ppl.Config, handlers ...ppl.Handler) (*trace.Trace, error) {
	p, err := runPair("ELBO", e.Model, e.Guide, env, handlers, handlersOf(e.ModelHandlers, e.GuideHandlers))
	if err != nil {
		return nil, err
	}
	sites := p.rec.sites[:0]
	defer func() {
		clear(sites)
		p.rec.sites = sites[:0]
	}()
	for _, s := range p.guide.Sites() {
		if s.Stochastic() || s.Intervened || s.Kind == ppl.KindCost || s.Kind == ppl.KindDeterministic || s.Kind == ppl.KindPlate {
			sites = append(sites, s)
		}
	}
	for _, ms := range p.model.Sites() {
		switch {
		case ms.Kind == ppl.KindPlate && p.guide.Site(ms.Addr) == nil:
			sites = append(sites, ms)
		case ms.Stochastic():
			c, err := e.latentCost(p, ms)
			if err != nil {
				return nil, fmt.Errorf("vi: ELBO: %w", err)
			}
			sites = append(sites, c)
		case ms.IsCost():
			sites = append(sites, ms)
		}
	}
	if err := scaleCosts(sites, e.Scale, p.guide); err != nil {
		return nil, fmt.Errorf("vi: ELBO: %w", err)
	}
	tr, err := trace.Compose(sites...)
	if err != nil {
		return nil, fmt.Errorf("vi: ELBO: %w", err)
	}
	return tr, nil
}

// scaleCosts multiplies the Scale of the cost sites among sites by factor,
// unless factor is 0 or 1. It fails when factor is not finite and
// positive, and when factor is above 1 (a minibatch's N/B) while guide
// samples a latent outside every plate: factor would multiply that global
// latent's KL too, the minibatch mistake that widens its posterior by
// about sqrt(factor). A factor below 1 (1/K, averaging K particles) weighs
// every cost alike and is allowed.
func scaleCosts(sites []*ppl.Site, factor float64, guide *trace.Trace) error {
	if factor == 0 || factor == 1 {
		return nil
	}
	if !(factor > 0) || math.IsInf(factor, 0) {
		return fmt.Errorf("field Scale must be finite and > 0, got %v", factor)
	}
	for _, s := range guide.Sites() {
		if factor > 1 && s.Stochastic() && len(s.Plates) == 0 {
			return &ppl.SiteError{Addr: s.Addr, Err: fmt.Errorf(
				"field Scale %v would weigh the cost of this latent, which is outside every plate, and give it a posterior too wide; "+
					"for minibatches leave Scale 0 and put the data and the local latents in a subsampled plate (ppl.Plate with ppl.Subsample), "+
					"which weighs the sites inside it, and only those, by N/n", factor)}
		}
	}
	for _, s := range sites {
		if s.IsCost() {
			s.Scale *= factor
		}
	}
	return nil
}

// latentCost returns the cost site of the model's latent ms.
func (e ELBO) latentCost(p pair, ms *ppl.Site) (*ppl.Site, error) {
	addr := KLAddr(ms.Addr)
	if p.guide.Site(addr) != nil || p.model.Site(addr) != nil {
		return nil, p.checkFree(addr, fmt.Sprintf("the cost of latent %q", ms.Addr))
	}
	gs := p.guide.Site(ms.Addr)
	var cost *ad.Tensor
	if e.AnalyticKL && p.closedFormHolds(ms) {
		kl, err := dist.KL(gs.Dist, ms.Dist)
		switch {
		case err == nil:
			cost = kl
		case !errors.Is(err, dist.ErrNoKL):
			return nil, &ppl.SiteError{Addr: ms.Addr, Err: err}
		}
	}
	if cost == nil {
		lq, err := logProb(gs)
		if err != nil {
			return nil, err
		}
		lp, err := logProb(ms)
		if err != nil {
			return nil, err
		}
		cost = ad.Sub(lq, lp)
	}
	if r, rows := cost.Rows(), gs.Value.Rows(); r != rows {
		if r != 1 {
			return nil, &ppl.SiteError{Addr: ms.Addr, Err: fmt.Errorf("cost has %d rows, the guide's value has %d", r, rows)}
		}
		cost = ad.Add(cost, cost.Tape().Zeros(rows, 1))
	}
	s := siteRecords.Get(cost.Tape())
	*s = ppl.Site{
		Addr:  addr,
		Kind:  ppl.KindCost,
		ID:    -1,
		Value: cost,
		Cost:  cost,
		// Both sites carry the Scale of their plates (the same plates,
		// with the same subsample); the cost counts it once.
		Scale:  gs.Scale * ms.Scale / gs.Plates.Scale(),
		Plates: gs.Plates,
		Mask:   combineMasks(gs.Mask, ms.Mask),
	}
	return s, nil
}

// siteRecords are the cost sites vi makes on each tape.
var siteRecords = arena.NewKey[ppl.Site]()

// closedFormHolds reports whether the closed-form KL of the model's
// latent ms has the expectation of its sampled log ratio: when no parent
// of the prior depends, in the guide, on the latent itself. A guide that
// draws the latents in another order than the model can make the prior's
// parents descendants of the latent; the closed form would then integrate
// the latent against its guide marginal while the parents hold values
// drawn from it.
func (p pair) closedFormHolds(ms *ppl.Site) bool {
	for _, d := range p.guide.Graph().Descendants(ms.Addr) {
		if s := p.guide.Site(d); s.Stochastic() && ms.Parents.Has(s.ID) {
			return false
		}
	}
	return true
}

// combineMasks returns the product of two masks, either of which may be
// nil (every row counts).
func combineMasks(a, b *ad.Tensor) *ad.Tensor {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return ad.Mul(a, b)
}

// Bound reports that the loss of the objective is the negative of a lower
// bound on the log-likelihood, so that training metrics report the bound
// (the optional interface infer.Bounder).
func (ELBO) Bound() bool { return true }

// Bounds returns the bound of each row of tr, a trace returned by
// [ELBO.Run]: minus the sum of the row's scaled and masked costs
// ([RowCost]), [B x 1], with gradient paths. With site Scale 1 and no
// masks, row b is a one-sample estimate of the ELBO of data point b in a
// model whose rows are data points, and of the whole data set's ELBO in a
// model whose data are in a plate (each row a particle, whose mean over
// rows estimates the ELBO); the sum of Bounds is -[Loss].
func (ELBO) Bounds(tr *trace.Trace) (*ad.Tensor, error) {
	c := RowCost(tr)
	if c == nil {
		return nil, errors.New("vi: ELBO: Bounds: the trace has no costs")
	}
	return ad.Neg(c), nil
}
