package main

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/examples/internal/exrun"
	"github.com/backpropq/backpropq/examples/internal/mnist"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/vi"
)

// hidden is the width of the deterministic tanh layers (two each way).
const hidden = 200

// Sizes of the latent spaces.
const (
	// gaussLatents is the number of Gaussian latents of -model gauss.
	gaussLatents = 50
	// catLatents and catClasses shape -model discrete: catLatents
	// Categorical latents of catClasses classes each.
	catLatents = 20
	catClasses = 10
	// mixedGauss is the width of the Gaussian latent of -model mixed, whose
	// Categorical latent has catClasses classes.
	mixedGauss = 20
)

// Addresses of the latents.
const (
	gaussAddr = "z"
	catAddr   = "c"
)

// catSite returns the address of Categorical latent i of -model discrete.
func catSite(i int) string {
	if i < len(catSites) {
		return catSites[i]
	}
	return fmt.Sprintf("c%02d", i)
}

// catSites are the addresses of the categorical sites, made once.
var catSites = func() (a [catLatents]string) {
	for i := range a {
		a[i] = fmt.Sprintf("c%02d", i)
	}
	return a
}()

// kinds lists the -model values.
var kinds = []struct{ name, help string }{
	{"gauss", "50 Gaussian latents, 784-200-200-50 encoder and mirrored decoder (IWAE paper, one stochastic layer)"},
	{"discrete", "20 Categorical latents of 10 classes (one-hot), 200-200 tanh each way"},
	{"mixed", "a 20-dimensional Gaussian latent z and a 10-class Categorical latent c, 200-200 tanh each way"},
}

func checkKind(name string) error {
	for _, k := range kinds {
		if k.name == name {
			return nil
		}
	}
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.name
	}
	return fmt.Errorf("unknown model %q (have %v)", name, names)
}

// vae is one of the command's models and its guide, as ppl programs over a
// batch of binary images that they read by closure.
type vae struct {
	kind string
	// pixelLogit is the logit of each pixel's mean over the training set,
	// the initial bias of the decoder's output layer.
	pixelLogit []float64
	// data maps each tape to the batch its current run reads, for the
	// NVIL baseline's input (see features).
	data exrun.TapeData
	// criticInputs hands the Backprop-Q critics of each categorical site
	// the (centered) image through q.Input: the expected cost of a code
	// depends on the image it must explain, which the codes alone do not
	// tell a critic.
	criticInputs bool
	// pixelInit initializes the decoder's output bias to pixelLogit.
	pixelInit nn.Initializer
}

func newVAE(kind string, train *mnist.Split) (*vae, error) {
	if err := checkKind(kind); err != nil {
		return nil, err
	}
	mean := make([]float64, mnist.Pixels)
	for i := 0; i < train.Len(); i++ {
		for j, p := range train.Images[i*mnist.Pixels : (i+1)*mnist.Pixels] {
			mean[j] += float64(p) / 255
		}
	}
	for j := range mean {
		m := min(max(mean[j]/float64(max(train.Len(), 1)), 1e-3), 1-1e-3)
		mean[j] = math.Log(m / (1 - m))
	}
	m := &vae{kind: kind, pixelLogit: mean}
	m.pixelInit = nn.InitFunc(func(d *mat.Dense, _ *rand.Rand) { copy(d.RawMatrix().Data, m.pixelLogit) })
	return m, nil
}

// dense applies the affine map whose parameters are named ps (weights,
// bias) to x.
func dense(ctx *ppl.Ctx, ps [2]string, x *ad.Tensor, out int, bias nn.Initializer) *ad.Tensor {
	w := ppl.Param(ctx, ps[0], x.Cols(), out, nn.GlorotUniform{})
	b := ppl.Param(ctx, ps[1], 1, out, bias)
	return ad.Add(ad.MatMul(x, w), b)
}

// mlp maps x through two tanh layers of hidden units, then an affine map to
// out units: the network name, whose layers are name/0, name/1 and
// name/out.
func mlp(ctx *ppl.Ctx, name string, x *ad.Tensor, out int, bias nn.Initializer) *ad.Tensor {
	ps, ok := mlpParams[name]
	if !ok {
		ps = paramNames(name)
	}
	for _, l := range ps[:2] {
		x = ad.Tanh(dense(ctx, l, x, hidden, nn.Zeros{}))
	}
	return dense(ctx, ps[2], x, out, bias)
}

// paramNames returns the parameter names of the layers of network name:
// name/0/W and name/0/b, name/1/..., name/out/....
func paramNames(name string) (ps [3][2]string) {
	for i, l := range [3]string{name + "/0", name + "/1", name + "/out"} {
		ps[i] = [2]string{l + "/W", l + "/b"}
	}
	return ps
}

// mlpParams holds the parameter names of the command's networks, made
// once so that a run makes no string.
var mlpParams = func() map[string][3][2]string {
	m := map[string][3][2]string{}
	for _, n := range []string{"p/x", "q/z", "q/c", "q/zc"} {
		m[n] = paramNames(n)
	}
	return m
}()

// uniformLogits returns zero logits of k classes for every row of the run.
func uniformLogits(ctx *ppl.Ctx, k int) *ad.Tensor {
	return ppl.Expand(ctx, ctx.Tape().Zeros(1, k))
}

// model is the generative network p(x, z). With x nil it samples the
// latents from the prior and observes nothing. When logits is not nil it
// receives the decoder's output (Bernoulli logits of the pixels).
func (m *vae) model(x *mat.Dense, logits **ad.Tensor) ppl.Model {
	return func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		var h *ad.Tensor
		switch m.kind {
		case "gauss":
			h = ppl.Sample(ctx, gaussAddr, dist.Normal{Loc: ppl.Expand(ctx, tp.Zeros(1, gaussLatents)), Scale: tp.Scalar(1)})
		case "discrete":
			cs := make([]*ad.Tensor, catLatents)
			for i := range cs {
				cs[i] = ppl.Sample(ctx, catSite(i), dist.OneHotCategorical{Logits: uniformLogits(ctx, catClasses)})
			}
			h = ad.Concat(cs...)
		case "mixed":
			z := ppl.Sample(ctx, gaussAddr, dist.Normal{Loc: ppl.Expand(ctx, tp.Zeros(1, mixedGauss)), Scale: tp.Scalar(1)})
			c := ppl.Sample(ctx, catAddr, dist.OneHotCategorical{Logits: uniformLogits(ctx, catClasses)})
			h = ad.Concat(z, c)
		}
		out := mlp(ctx, "p/x", h, mnist.Pixels, m.pixelInit)
		if logits != nil {
			*logits = out
		}
		if x != nil {
			ppl.Observe(ctx, "x", dist.BernoulliLogits(out), ppl.Tile(ctx, tp.Const(x)))
		}
	}
}

// softplusScale returns a positive scale from an unconstrained tensor.
func softplusScale(u *ad.Tensor) *ad.Tensor {
	return ad.Add(ad.Softplus(u), u.Tape().Scalar(1e-4))
}

// guide is the inference network q(z | x).
func (m *vae) guide(x *mat.Dense) ppl.Model {
	return func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		in := ppl.Tile(ctx, tp.Const(x))
		m.data.Store(tp, in)
		in = ad.Sub(in, tp.Full(1, mnist.Pixels, 0.5))
		switch m.kind {
		case "gauss":
			out := mlp(ctx, "q/z", in, 2*gaussLatents, nn.Zeros{})
			ppl.Sample(ctx, gaussAddr, dist.Normal{Loc: ad.Slice(out, 0, gaussLatents), Scale: softplusScale(ad.Slice(out, gaussLatents, 2*gaussLatents))})
		case "discrete":
			out := mlp(ctx, "q/c", in, catLatents*catClasses, nn.Zeros{})
			for i := 0; i < catLatents; i++ {
				if m.criticInputs {
					q.Input(ctx, catSite(i), in)
				}
				ppl.Sample(ctx, catSite(i), dist.OneHotCategorical{Logits: ad.Slice(out, i*catClasses, (i+1)*catClasses)})
			}
		case "mixed":
			out := mlp(ctx, "q/zc", in, 2*mixedGauss+catClasses, nn.Zeros{})
			ppl.Sample(ctx, gaussAddr, dist.Normal{Loc: ad.Slice(out, 0, mixedGauss), Scale: softplusScale(ad.Slice(out, mixedGauss, 2*mixedGauss))})
			if m.criticInputs {
				q.Input(ctx, catAddr, in)
			}
			ppl.Sample(ctx, catAddr, dist.OneHotCategorical{Logits: ad.Slice(out, 2*mixedGauss, 2*mixedGauss+catClasses)})
		}
	}
}

// elbo returns the ELBO objective of the images x.
func (m *vae) elbo(x *mat.Dense, analytic bool) vi.ELBO {
	return vi.ELBO{Model: m.model(x, nil), Guide: m.guide(x), AnalyticKL: analytic}
}

// iwae returns the importance-weighted objective of the images x with k
// particles each.
func (m *vae) iwae(x *mat.Dense, k int) vi.IWAE {
	return vi.IWAE{Model: m.model(x, nil), Guide: m.guide(x), K: k}
}

// features returns the batch of images of the run on tape tp, the input of
// the NVIL baseline.
func (m *vae) features(tp *ad.Tape) (*ad.Tensor, error) {
	t, ok := m.data.Load(tp)
	if !ok {
		return nil, fmt.Errorf("vae: no data recorded for this run")
	}
	return t, nil
}
