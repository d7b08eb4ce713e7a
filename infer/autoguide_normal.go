package infer

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
)

// AutoNormal is a mean-field Normal guide over the unconstrained space of
// every continuous latent of a model: latent z with support S is drawn as
// T(u), u ~ Normal(loc, scale) elementwise, for T = dist.BijectTo(S) (a
// latent on the real line is the Normal itself). A latent inside plates
// gets parameters per member of its plates, and a run uses the rows of the
// members present, so a subsampled plate trains the subsample's; a latent
// outside every plate is global, with one set of parameters shared by the
// run's rows (its particles), so a model whose rows are data points puts
// them in a plate to give each its own. The model is run once, with one
// particle, to find the latents. The
// parameters live in the training store as Prefix/addr/loc and
// Prefix/addr/scale (stored through ppl.ParamIn, so the scale stays
// positive), and checkpoint like any other.
//
// The guide is fixed when it is built, from one run of the model: a later
// run of the model that samples a latent the guide does not know, lacks one
// it knows, or changes a latent's shape fails in the objective (vi.ELBO)
// with an error naming the address.
type AutoNormal struct {
	latents []latent
	prefix  string
	scale   float64
	nets    map[string]amortizer // by latent address
}

// NewAutoNormal builds the guide from one run of model. It is an error
// naming the address when a covered latent has a discrete support or a
// distribution that declares none.
func NewAutoNormal(model ppl.Model, opts AutoOptions) (*AutoNormal, error) {
	const kind = "AutoNormal"
	ls, err := discoverContinuous(kind, model, opts.Sites)
	if err != nil {
		return nil, err
	}
	g := &AutoNormal{latents: ls, prefix: opts.prefix(kind), scale: opts.initScale()}
	if g.nets, err = amortizers(kind, ls, opts); err != nil {
		return nil, err
	}
	return g, nil
}

// Guide is the guide, a ppl.Model to pass to vi.ELBO.
func (g *AutoNormal) Guide(ctx *ppl.Ctx) {
	for _, l := range g.latents {
		pctx := l.enter(ctx)
		var loc, scale *ad.Tensor
		if net, ok := g.nets[l.addr]; ok {
			loc, scale = net.forward(ctx, pctx, g.prefix+"/"+l.addr, l.ucols(), g.scale)
		} else {
			loc = l.param(ctx, pctx, g.prefix, "loc", l.ucols(), nil, nn.Zeros{})
			scale = l.param(ctx, pctx, g.prefix, "scale", l.ucols(), dist.Positive, nn.Constant(g.scale))
		}
		ppl.Sample(pctx, l.addr, l.push(dist.Normal{Loc: loc, Scale: scale}))
	}
}

// Params returns the trained location and scale of the latent addr in the
// unconstrained space, one row per member of its plates, read from store.
// It is an error naming the address when the guide does not cover addr or
// store lacks its parameters (the guide has not run on it).
func (g *AutoNormal) Params(store *nn.Store, addr string) (loc, scale *mat.Dense, err error) {
	if _, ok := g.nets[addr]; ok || !covers(g.latents, addr) {
		return nil, nil, fmt.Errorf("infer: AutoNormal: %w", siteErr(addr, "not a latent of the guide with parameters of its own (an amortized latent's come from its network)"))
	}
	loc, err = storedParam(store, g.prefix+"/"+addr+"/loc", nil)
	if err == nil {
		scale, err = storedParam(store, g.prefix+"/"+addr+"/scale", dist.Positive)
	}
	return loc, scale, err
}

// AutoDelta is the point-mass guide of maximum a posteriori estimation:
// every continuous latent z is a dist.Delta at T(u), u a parameter of the
// unconstrained space (Prefix/addr/value) and T = dist.BijectTo of z's
// support, so the ELBO's loss is -log p(x, z) at that point. It is
// plate-aware and fixed when built, as AutoNormal is.
type AutoDelta struct {
	latents []latent
	prefix  string
}

// NewAutoDelta builds the guide from one run of model, as NewAutoNormal.
func NewAutoDelta(model ppl.Model, opts AutoOptions) (*AutoDelta, error) {
	const kind = "AutoDelta"
	ls, err := discoverContinuous(kind, model, opts.Sites)
	if err != nil {
		return nil, err
	}
	return &AutoDelta{latents: ls, prefix: opts.prefix(kind)}, nil
}

// Guide is the guide, a ppl.Model to pass to vi.ELBO.
func (g *AutoDelta) Guide(ctx *ppl.Ctx) {
	for _, l := range g.latents {
		pctx := l.enter(ctx)
		u := l.param(ctx, pctx, g.prefix, "value", l.ucols(), nil, nn.Zeros{})
		ppl.Sample(pctx, l.addr, dist.Delta{Value: l.bij.Forward(u)})
	}
}

// Value returns the estimate of the latent addr, in its support, one row
// per member of its plates, read from store. It is an error naming the
// address when the guide does not cover addr or store lacks it.
func (g *AutoDelta) Value(store *nn.Store, addr string) (*mat.Dense, error) {
	for _, l := range g.latents {
		if l.addr == addr {
			u, err := storedParam(store, g.prefix+"/"+addr+"/value", nil)
			if err != nil {
				return nil, err
			}
			return l.bij.Forward(ad.NewTape().Const(u)).Value(), nil
		}
	}
	return nil, fmt.Errorf("infer: AutoDelta: %w", siteErr(addr, "not a latent of the guide"))
}

// covers reports whether ls holds the latent addr.
func covers(ls []latent, addr string) bool {
	for _, l := range ls {
		if l.addr == addr {
			return true
		}
	}
	return false
}

// storedParam returns a copy of the value of the parameter name of store,
// mapped onto c when c is not nil (a parameter of ppl.ParamIn).
func storedParam(store *nn.Store, name string, c dist.Constraint) (*mat.Dense, error) {
	p := store.Get(name)
	if p == nil {
		return nil, fmt.Errorf("infer: parameter %q is not in the store (has the guide run on it?)", name)
	}
	if c == nil {
		return mat.DenseCopyOf(p.Value), nil
	}
	t, err := dist.BijectTo(c)
	if err != nil {
		return nil, err
	}
	return mat.DenseCopyOf(t.Forward(ad.NewTape().Const(p.Value)).Value()), nil
}
