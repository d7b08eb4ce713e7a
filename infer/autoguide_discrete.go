package infer

import (
	"fmt"

	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
)

// AutoDiscrete is a mean-field guide over the discrete latents of a model
// whose distributions are dist.Finite: a Bernoulli latent of D columns is
// drawn from independent Bernoullis with logits Prefix/addr/logits, [1 x
// D]; a latent of K classes (an index or a one-hot row) from a categorical
// of the same encoding with K logits. The logits start at 0 (uniform). A
// latent inside plates gets logits per member of its plates, as AutoNormal's
// parameters. Train it with an estimator for discrete sites (Enumerate,
// DisARM, BackpropQ, ...); combine it with a continuous guide with Guides.
type AutoDiscrete struct {
	latents []latent
	prefix  string
}

// NewAutoDiscrete builds the guide from one run of model. It is an error
// naming the address when a covered latent is not dist.Finite.
func NewAutoDiscrete(model ppl.Model, opts AutoOptions) (*AutoDiscrete, error) {
	const kind = "AutoDiscrete"
	ls, err := discover(kind, model, opts.Sites)
	if err != nil {
		return nil, err
	}
	for _, l := range ls {
		if l.finite == nil {
			return nil, fmt.Errorf("infer: %s: %w", kind, siteErr(l.addr,
				"support %v is not finite: cover it with AutoNormal or AutoDelta (see Guides)", l.support))
		}
	}
	return &AutoDiscrete{latents: ls, prefix: opts.prefix(kind)}, nil
}

// Guide is the guide, a ppl.Model to pass to vi.ELBO.
func (g *AutoDiscrete) Guide(ctx *ppl.Ctx) {
	for _, l := range g.latents {
		pctx := l.enter(ctx)
		switch l.finite.Encoding() {
		case dist.Binary:
			logits := l.param(ctx, pctx, g.prefix, "logits", l.cols, nil, nn.Zeros{})
			ppl.Sample(pctx, l.addr, dist.BernoulliLogits(logits))
		case dist.OneHot:
			logits := l.param(ctx, pctx, g.prefix, "logits", l.finite.Classes(), nil, nn.Zeros{})
			ppl.Sample(pctx, l.addr, dist.OneHotCategorical{Logits: logits})
		default:
			logits := l.param(ctx, pctx, g.prefix, "logits", l.finite.Classes(), nil, nn.Zeros{})
			ppl.Sample(pctx, l.addr, dist.Categorical{Logits: logits})
		}
	}
}
