package vi

import (
	"errors"
	"fmt"
	"math"
	"path"
	"slices"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
)

// DefaultMaxValues is the largest support TraceEnum sums over when its
// MaxValues is 0.
const DefaultMaxValues = 256

// EnumAddr returns the address of the cost that TraceEnum gives the
// latent at addr once summed out: "enum(" + addr + ")".
func EnumAddr(addr string) string { return "enum(" + addr + ")" }

// TraceEnum is the ELBO of a model one of whose discrete latents is summed
// out exactly inside the objective, as Pyro's TraceEnum_ELBO does: the
// guide covers every other latent, and the latent z (Site) has no guide.
// Inside z's plates each member's z is summed out on its own: with y the
// guide's latents, the cost of each member is
//
//	-log Σ_k p(z = k | ..) · exp(-Σ costs of the member given z = k),
//
// where the costs are those of the ELBO inside z's plates (observations,
// the log ratios of local latents). The costs outside z's plates are the
// ELBO's. The remaining latents are trained by any estimator, so a mixture
// model's assignments need neither a guide nor a discrete estimator.
//
// Run runs the ELBO once per value of z (z's support must have at most
// MaxValues points): the first run draws the guide, the others replay it
// (on the same tape and with the same ids), with z fixed to that value in
// every member. Its trace holds the ELBO's sites, except that the costs
// inside z's plates are replaced by one cost at EnumAddr(z), inside z's
// plates, with z's plates' Scale.
//
// It is an error naming the address when Site matches no latent or more
// than one, when the latent is not discrete (dist.Finite), when its support
// is larger than MaxValues, when the guide samples it, and when a cost
// outside z's plates depends on z (its value changes with z's), which the
// sum over members could not account for.
type TraceEnum struct {
	ELBO
	// Site is the address pattern (path.Match syntax) of the latent to sum
	// out.
	Site string
	// MaxValues bounds the support of the summed-out latent (0:
	// DefaultMaxValues).
	MaxValues int
}

// enumSite is what a run learned about the summed-out latent.
type enumSite struct {
	addr   string
	values int
	plates ppl.Stack
	scale  float64
	logp   *ad.Tensor // log p(z = k | ..) of the run's value k
}

// Run returns the objective's trace (see TraceEnum).
func (e TraceEnum) Run(env ppl.Config, handlers ...ppl.Handler) (*trace.Trace, error) {
	sites, _, err := e.run(env, handlers)
	if err != nil {
		return nil, err
	}
	tr, err := trace.Compose(sites...)
	if err != nil {
		return nil, fmt.Errorf("vi: TraceEnum: %w", err)
	}
	return tr, nil
}

// Bound reports that the loss is the negative of a lower bound on the
// log-likelihood.
func (TraceEnum) Bound() bool { return true }

// Bounds returns the bound of each row of tr, as ELBO.Bounds does.
func (e TraceEnum) Bounds(tr *trace.Trace) (*ad.Tensor, error) { return e.ELBO.Bounds(tr) }

// Posterior returns p(z = k | the rest) for each row of the summed-out
// latent (the members of its plates, particle-major) and each value k, [rows
// x K], given the guide's draw of the other latents: the posterior
// marginals of the assignments, computed as Run computes the objective.
func (e TraceEnum) Posterior(env ppl.Config, handlers ...ppl.Handler) (*ad.Tensor, error) {
	_, joint, err := e.run(env, handlers)
	if err != nil {
		return nil, err
	}
	return ad.Softmax(joint), nil
}

// run runs the ELBO once per value and returns the objective's sites and
// the log joint of each row and value, [rows x K].
func (e TraceEnum) run(env ppl.Config, handlers []ppl.Handler) ([]*ppl.Site, *ad.Tensor, error) {
	if _, err := path.Match(e.Site, ""); err != nil || e.Site == "" {
		return nil, nil, fmt.Errorf("vi: TraceEnum: bad Site pattern %q", e.Site)
	}
	if env.Tape == nil {
		env.Tape = ad.NewTape()
	}
	limit := e.MaxValues
	if limit <= 0 {
		limit = DefaultMaxValues
	}
	var runs []*trace.Trace
	var sites []*enumSite
	for k := 0; k == 0 || k < sites[0].values; k++ {
		site := &enumSite{}
		elbo := e.ELBO
		elbo.ModelHandlers = append(slices.Clone(e.ModelHandlers), e.fix(env.Tape, k, limit, site))
		hs := handlers
		if k > 0 {
			hs = append(slices.Clone(handlers), trace.Replay(runs[0]))
		}
		tr, err := elbo.Run(env, hs...)
		if err != nil {
			return nil, nil, fmt.Errorf("vi: TraceEnum: %w", err)
		}
		switch {
		case site.addr == "":
			return nil, nil, fmt.Errorf("vi: TraceEnum: pattern %q matches no latent of the model", e.Site)
		case k > 0 && (site.addr != sites[0].addr || site.logp.Rows() != sites[0].logp.Rows()):
			return nil, nil, fmt.Errorf("vi: TraceEnum: %w", &ppl.SiteError{Addr: site.addr, Err: fmt.Errorf(
				"the summed-out latent changed between the runs of its values (first %q with %d rows)", sites[0].addr, sites[0].logp.Rows())})
		}
		if g := tr.Site(site.addr); g != nil && g.Stochastic() {
			return nil, nil, fmt.Errorf("vi: TraceEnum: %w", &ppl.SiteError{Addr: site.addr, Err: errors.New("the guide samples the latent that the model sums out")})
		}
		runs, sites = append(runs, tr), append(sites, site)
	}
	return e.combine(runs, sites)
}

// fix returns the model handler of run k: it fixes the latent matching
// e.Site to its k-th value in every row and records its log-probability
// in site.
func (e TraceEnum) fix(tp *ad.Tape, k, limit int, site *enumSite) ppl.Handler {
	return ppl.HandlerFunc(func(s *ppl.Site, next func(*ppl.Site)) {
		if s.Kind != ppl.KindSample {
			next(s)
			return
		}
		if ok, _ := path.Match(e.Site, s.Addr); !ok {
			next(s)
			return
		}
		if site.addr != "" {
			panic(&ppl.SiteError{Addr: s.Addr, Err: fmt.Errorf("a second latent matches the pattern %q (the first is %q); TraceEnum sums out one", e.Site, site.addr)})
		}
		fin, ok := s.Dist.(dist.Finite)
		if !ok {
			panic(&ppl.SiteError{Addr: s.Addr, Err: errors.New("only a discrete latent (dist.Finite) can be enumerated")})
		}
		if n := fin.SupportSize(); n > limit {
			panic(&ppl.SiteError{Addr: s.Addr, Err: fmt.Errorf("the latent takes %d values, more than the limit of %d (TraceEnum.MaxValues)", n, limit)})
		}
		rows, _ := fin.Shape()
		value := fin.EnumerateSupport(tp, rows)[k]
		*site = enumSite{addr: s.Addr, values: fin.SupportSize(), plates: s.Plates, scale: s.Scale, logp: fin.LogProb(value)}
		s.Kind, s.ID, s.Value, s.Intervened = ppl.KindDeterministic, -1, value, true
		next(s)
	})
}

// combine builds the objective's sites from the runs: the first run's
// sites with the costs inside the latent's plates replaced by the summed
// cost.
func (e TraceEnum) combine(runs []*trace.Trace, sites []*enumSite) ([]*ppl.Site, *ad.Tensor, error) {
	z := sites[0]
	inside := func(c *ppl.Site) bool {
		return len(c.Plates) >= len(z.plates) && c.Plates.Common(z.plates) == len(z.plates)
	}
	joints := make([]*ad.Tensor, len(runs))
	for k, tr := range runs {
		joint := sites[k].logp
		for _, c := range tr.Sites() {
			if !c.IsCost() {
				continue
			}
			if !inside(c) {
				if err := sameCost(runs[0].Site(c.Addr), c, z); err != nil {
					return nil, nil, err
				}
				continue
			}
			term := ppl.Move(ad.Scale(c.ScaledCost(), 1/z.scale), c.Plates, z.plates)
			joint = ad.Sub(joint, term)
		}
		joints[k] = joint
	}
	joint := ad.Concat(joints...)
	addr := EnumAddr(z.addr)
	if runs[0].Site(addr) != nil {
		return nil, nil, fmt.Errorf("vi: TraceEnum: %w", &ppl.SiteError{Addr: addr, Err: errors.New("the address of the summed-out cost is taken")})
	}
	cost := &ppl.Site{Addr: addr, Kind: ppl.KindCost, ID: -1, Value: ad.Neg(ad.LogSumExp(joint)), Scale: z.scale, Plates: z.plates}
	var out []*ppl.Site
	placed := false
	for _, s := range runs[0].Sites() {
		switch {
		case !s.IsCost() || !inside(s):
			out = append(out, s)
		case !placed:
			out, placed = append(out, cost), true
		}
	}
	if !placed {
		out = append(out, cost)
	}
	return out, joint, nil
}

// sameCost returns an error naming c when its value in a run with another
// value of the summed-out latent differs from first's.
func sameCost(first, c *ppl.Site, z *enumSite) error {
	a, b := first.Cost.Data(), c.Cost.Data()
	for i := range a {
		if math.Abs(a[i]-b[i]) > 1e-12*(1+math.Abs(a[i])) {
			return fmt.Errorf("vi: TraceEnum: %w", &ppl.SiteError{Addr: c.Addr, Err: fmt.Errorf(
				"the cost is outside the plates %v of the summed-out latent %q but depends on it", z.plates, z.addr)})
		}
	}
	return nil
}
