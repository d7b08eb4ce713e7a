package infer

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
)

// AutoOptions configure an automatic guide (NewAutoNormal, NewAutoDelta,
// NewAutoMultivariateNormal, NewAutoDiscrete).
type AutoOptions struct {
	// Prefix is the address prefix of the guide's parameters in the
	// training store ("Prefix/w/loc"); the default is the guide's type
	// name, such as "AutoNormal". Guides combined with Guides need
	// distinct prefixes when they are of the same type.
	Prefix string
	// Sites are the address patterns (path.Match syntax) of the latents
	// the guide covers; empty means every latent of the model. A pattern
	// that matches no latent is an error naming it.
	Sites []string
	// InitScale is the initial standard deviation of the Normal guides
	// in the unconstrained space (default 0.1).
	InitScale float64
	// Amortize, for AutoNormal, maps a plate's name to the inputs of its
	// members, [members x F] (the plate's data set, with the rows that
	// ppl.Data takes): a latent whose innermost plate is listed gets its
	// location and scale from an MLP of its member's inputs instead of
	// parameters per member, so the guide serves members it has never
	// seen. See Hidden.
	Amortize map[string]*ad.Tensor
	// Hidden is the width of the amortizing MLP's hidden layer (default
	// 32).
	Hidden int
}

// prefix returns the options' prefix, or def.
func (o AutoOptions) prefix(def string) string {
	if o.Prefix != "" {
		return o.Prefix
	}
	return def
}

// initScale returns InitScale or its default.
func (o AutoOptions) initScale() float64 {
	if o.InitScale > 0 {
		return o.InitScale
	}
	return 0.1
}

// plateSpec is a plate a latent sits inside, as the model entered it.
type plateSpec struct {
	name      string
	size, sub int // sub is the subsample size, 0 when not subsampled
}

// latent is a random variable of a model, as an automatic guide sees it
// from a run of the model.
type latent struct {
	addr    string
	cols    int // value columns
	plates  []plateSpec
	support dist.Constraint
	bij     dist.Transform // onto support; nil for a discrete support
	finite  dist.Finite    // nil unless the distribution is Finite
}

// discover runs model once, with one particle, a fixed random source and a
// store of its own, and returns its latents that match patterns (all of
// them when patterns is empty), in the model's order.
func discover(kind string, model ppl.Model, patterns []string) ([]latent, error) {
	if model == nil {
		return nil, fmt.Errorf("infer: %s: nil model", kind)
	}
	for _, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("infer: %s: pattern %q: %w", kind, p, err)
		}
	}
	tr, err := trace.Run(model, ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 1, Params: nn.NewStore()})
	if err != nil {
		return nil, fmt.Errorf("infer: %s: running the model: %w", kind, err)
	}
	used := make(map[string]bool)
	var out []latent
	for _, s := range tr.Sites() {
		if !s.Stochastic() || !matchAny(patterns, s.Addr, used) {
			continue
		}
		l, err := newLatent(s)
		if err != nil {
			return nil, fmt.Errorf("infer: %s: %w", kind, err)
		}
		out = append(out, l)
	}
	for _, p := range patterns {
		if !used[p] {
			return nil, fmt.Errorf("infer: %s: pattern %q matches no latent of the model", kind, p)
		}
	}
	return out, nil
}

// matchAny reports whether addr matches one of patterns (true when there
// are none), marking the patterns that match as used.
func matchAny(patterns []string, addr string, used map[string]bool) bool {
	if len(patterns) == 0 {
		return true
	}
	hit := false
	for _, p := range patterns {
		if ok, _ := path.Match(p, addr); ok {
			used[p], hit = true, true
		}
	}
	return hit
}

// newLatent describes the sample site s.
func newLatent(s *ppl.Site) (latent, error) {
	l := latent{addr: s.Addr, cols: s.Value.Cols()}
	for _, f := range s.Plates {
		ps := plateSpec{name: f.Name, size: f.Size}
		if f.Indices != nil {
			ps.sub = len(f.Indices)
		}
		l.plates = append(l.plates, ps)
	}
	decl, ok := s.Dist.(dist.Declared)
	if !ok {
		return l, &ppl.SiteError{Addr: s.Addr, Err: errors.New("the distribution declares no support (dist.Declared)")}
	}
	l.support = decl.Support()
	l.bij, _ = dist.BijectTo(l.support)
	l.finite, _ = s.Dist.(dist.Finite)
	return l, nil
}

// discoverContinuous is discover for a guide of continuous latents: a
// covered latent with a discrete support is an error naming it.
func discoverContinuous(kind string, model ppl.Model, patterns []string) ([]latent, error) {
	ls, err := discover(kind, model, patterns)
	if err != nil {
		return nil, err
	}
	for _, l := range ls {
		if l.bij == nil {
			return nil, fmt.Errorf("infer: %s: %w", kind, siteErr(l.addr,
				"support %v is discrete: cover it with AutoDiscrete or a guide of its own (see Guides)", l.support))
		}
	}
	return ls, nil
}

// ucols returns the columns of l's value in the unconstrained space.
func (l latent) ucols() int { return l.bij.InverseCols(l.cols) }

// enter returns ctx inside l's plates, with the model's subsample sizes.
func (l latent) enter(ctx *ppl.Ctx) *ppl.Ctx {
	for _, p := range l.plates {
		var opts []ppl.PlateOption
		if p.sub > 0 {
			opts = append(opts, ppl.Subsample(p.sub))
		}
		ctx = ppl.Plate(ctx, p.name, p.size, opts...)
	}
	return ctx
}

// members returns the number of members of l's plates: one row of a
// per-point parameter each.
func (l latent) members() int {
	n := 1
	for _, p := range l.plates {
		n *= p.size
	}
	return n
}

// param returns the guide parameter prefix/l.addr/name of cols columns,
// one row per member of l's plates, at pctx's rows: the rows of the
// members present (the subsample's) for every particle inside plates, the
// one row broadcast to the batch outside them.
func (l latent) param(ctx, pctx *ppl.Ctx, prefix, name string, cols int, c dist.Constraint, init nn.Initializer) *ad.Tensor {
	addr := prefix + "/" + l.addr + "/" + name
	var p *ad.Tensor
	if c == nil {
		p = ppl.Param(ctx, addr, l.members(), cols, init)
	} else {
		p = ppl.ParamIn(ctx, addr, l.members(), cols, c, init)
	}
	if len(l.plates) == 0 {
		return ppl.Expand(ctx, p)
	}
	return ppl.Data(pctx, p)
}

// push returns base, a distribution over l's unconstrained space, pushed
// onto l's support.
func (l latent) push(base dist.Distribution) dist.Distribution {
	if _, id := l.bij.(dist.Identity); id {
		return base
	}
	return dist.Transformed{Base: base, Transform: l.bij}
}

// Guides returns a guide that runs each of guides in turn on the same run:
// automatic guides for some latents (AutoOptions.Sites) and guides written
// by hand for others. Each latent must be sampled by exactly one of them; a
// latent sampled twice is an error naming its address, as is one that none
// samples (reported by the objective, vi.ELBO).
func Guides(guides ...ppl.Model) ppl.Model {
	return func(ctx *ppl.Ctx) {
		for _, g := range guides {
			g(ctx)
		}
	}
}

// siteErr returns a SiteError for addr.
func siteErr(addr, format string, args ...any) error {
	return &ppl.SiteError{Addr: addr, Err: fmt.Errorf(format, args...)}
}
