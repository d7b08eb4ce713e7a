package infer

import (
	"fmt"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
)

// AutoMultivariateNormal is a full-rank Normal guide over the unconstrained
// space of a model's continuous global latents, laid end to end in the
// model's order as one vector u of D numbers: u ~ MultivariateNormal(loc,
// L·Lᵀ) with L lower-triangular, and latent z with support S is T(u's
// columns of z), T = dist.BijectTo(S). The parameters are Prefix/loc, [1 x
// D], and Prefix/scale_tril, [D x D] (stored through ppl.ParamIn with
// dist.LowerCholesky).
//
// Each latent is its own sample site, so the guide draws the joint law one
// latent at a time, each from its conditional given the ones before: with
// ε the standard normal noise of the earlier latents, the block of z is
// loc_z + L[z, <z]·ε + L[z, z]·ε_z. The product of the conditionals is the
// joint density, so the ELBO is the full-rank guide's.
//
// Latents inside plates have a number of members that a full-rank guide
// does not scale to: building the guide over one is an error naming it;
// give such latents to AutoNormal and combine the two with Guides.
type AutoMultivariateNormal struct {
	latents []latent
	offsets []int // offsets[i] is latent i's first column of u
	dim     int
	prefix  string
	scale   float64
}

// NewAutoMultivariateNormal builds the guide from one run of model. It is
// an error naming the address when a covered latent has a discrete support,
// declares none, or sits inside a plate.
func NewAutoMultivariateNormal(model ppl.Model, opts AutoOptions) (*AutoMultivariateNormal, error) {
	const kind = "AutoMultivariateNormal"
	ls, err := discoverContinuous(kind, model, opts.Sites)
	if err != nil {
		return nil, err
	}
	g := &AutoMultivariateNormal{latents: ls, prefix: opts.prefix(kind), scale: opts.initScale()}
	for _, l := range ls {
		if len(l.plates) > 0 {
			return nil, fmt.Errorf("infer: %s: %w", kind, siteErr(l.addr,
				"the latent is inside plate %q: a full-rank guide covers global latents only; give it to AutoNormal (see Guides)", l.plates[0].name))
		}
		g.offsets = append(g.offsets, g.dim)
		g.dim += l.ucols()
	}
	if g.dim == 0 {
		return nil, fmt.Errorf("infer: %s: the model has no latent to cover", kind)
	}
	return g, nil
}

// Guide is the guide, a ppl.Model to pass to vi.ELBO.
func (g *AutoMultivariateNormal) Guide(ctx *ppl.Ctx) {
	loc := ppl.Param(ctx, g.prefix+"/loc", 1, g.dim, nn.Zeros{})
	tril := ppl.ParamIn(ctx, g.prefix+"/scale_tril", g.dim, g.dim, dist.LowerCholesky, nn.InitFunc(g.initTril))
	trilT := ad.Transpose(tril)
	var eps *ad.Tensor // the noise of the latents drawn so far, [P x from]
	for i, l := range g.latents {
		from, to := g.offsets[i], g.offsets[i]+l.ucols()
		rows := ad.Transpose(ad.Slice(trilT, from, to)) // L[from:to, :]
		mean := ppl.Expand(ctx, ad.Slice(loc, from, to))
		if eps != nil {
			mean = ad.Add(mean, ad.MatMulT(eps, ad.Slice(rows, 0, from), false, true))
		}
		block := ad.Slice(rows, from, to)
		z := ppl.Sample(ctx, l.addr, l.push(dist.MultivariateNormal{Loc: mean, ScaleTril: block}))
		u := z
		if _, id := l.bij.(dist.Identity); !id {
			u = l.bij.Inverse(z)
		}
		e := ad.Transpose(ad.SolveLower(block, ad.Transpose(ad.Sub(u, mean)), false))
		if eps == nil {
			eps = e
		} else {
			eps = ad.Concat(eps, e)
		}
	}
}

// initTril sets m, the initial scale_tril, to InitScale times the
// identity.
func (g *AutoMultivariateNormal) initTril(m *mat.Dense, _ *rand.Rand) {
	m.Zero()
	for i := range g.dim {
		m.Set(i, i, g.scale)
	}
}

// Columns returns the columns [from, to) of the latent addr in the joint
// unconstrained vector, and false when the guide does not cover addr.
func (g *AutoMultivariateNormal) Columns(addr string) (from, to int, ok bool) {
	for i, l := range g.latents {
		if l.addr == addr {
			return g.offsets[i], g.offsets[i] + l.ucols(), true
		}
	}
	return 0, 0, false
}

// Moments returns the trained mean and covariance of the joint
// unconstrained vector, read from store (see Columns for each latent's
// part). It is an error when store lacks the guide's parameters.
func (g *AutoMultivariateNormal) Moments(store *nn.Store) (*mat.VecDense, *mat.SymDense, error) {
	loc, err := storedParam(store, g.prefix+"/loc", nil)
	if err != nil {
		return nil, nil, err
	}
	tril, err := storedParam(store, g.prefix+"/scale_tril", dist.LowerCholesky)
	if err != nil {
		return nil, nil, err
	}
	cov := mat.NewSymDense(g.dim, nil)
	for i := range g.dim {
		for j := 0; j <= i; j++ {
			var s float64
			for k := 0; k <= j; k++ {
				s += tril.At(i, k) * tril.At(j, k)
			}
			cov.SetSym(i, j, s)
		}
	}
	return mat.NewVecDense(g.dim, loc.RawRowView(0)), cov, nil
}
