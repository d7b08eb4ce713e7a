package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/examples/internal/exrun"
	"github.com/backpropq/backpropq/examples/internal/mnist"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/trace"
	"github.com/backpropq/backpropq/vi"
)

// latent is the width of every stochastic layer.
const latent = 200

// arch describes one of the sigmoid belief networks of NVIL, MuProp, REBAR
// and RELAX (the linear ones also ARM's and DisARM's), or a deeper linear
// one.
type arch struct {
	name string
	help string
	// layers is the number of stochastic layers.
	layers int
	// hidden is the number of deterministic tanh layers between two
	// stochastic layers, and between h1 and the image (0 for linear
	// networks).
	hidden int
}

var archs = []arch{
	{"linear", "784-200: one layer of 200 Bernoulli latents, linear maps", 1, 0},
	{"linear2", "784-200-200: two layers of 200 Bernoulli latents, linear maps", 2, 0},
	{"linear3", "784-200-200-200: three layers of 200 Bernoulli latents, linear maps", 3, 0},
	{"linear4", "784-200-200-200-200: four layers of 200 Bernoulli latents, linear maps", 4, 0},
	{"nonlinear", "784-(200-200)-200: 200 latents behind two 200-unit tanh layers each way", 1, 2},
}

// modelHelp is the -model flag's usage.
func modelHelp() string {
	var b strings.Builder
	b.WriteString("model (each with a mirrored inference network):")
	for _, a := range archs {
		fmt.Fprintf(&b, "\n  %-10s %s", a.name, a.help)
	}
	return b.String()
}

func findArch(name string) (arch, error) {
	for _, a := range archs {
		if a.name == name {
			return a, nil
		}
	}
	names := make([]string, len(archs))
	for i, a := range archs {
		names[i] = a.name
	}
	return arch{}, fmt.Errorf("unknown model %q (have %v)", name, names)
}

// latentAddr returns the address of stochastic layer i (1 is nearest the
// data).
func latentAddr(i int) string {
	if i < len(latentAddrs) {
		return latentAddrs[i]
	}
	return fmt.Sprintf("h%d", i)
}

// latentAddrs are the addresses of the first layers, made once.
var latentAddrs = func() (a [16]string) {
	for i := range a {
		a[i] = fmt.Sprintf("h%d", i)
	}
	return a
}()

// affine names the parameters of one affine map.
type affine struct{ w, b string }

// netNames returns the names of the affine maps of the network prefix
// with hidden tanh layers: prefix/i/W and prefix/i/b for layer i.
func netNames(prefix string, hidden int) []affine {
	out := make([]affine, hidden+1)
	for i := range out {
		n := fmt.Sprintf("%s/%d", prefix, i)
		out[i] = affine{n + "/W", n + "/b"}
	}
	return out
}

// sbn is a sigmoid belief network and its mirrored inference network, as
// ppl programs over a batch of binary images that they read by closure.
type sbn struct {
	arch arch
	// pixelLogit is the logit of each pixel's mean over the training set,
	// the initial bias of the generative network's output layer.
	pixelLogit []float64
	// data maps each tape to the batch its current run reads, for the
	// NVIL baseline's input (see features).
	data exrun.TapeData
	// criticInputs hands each latent layer's Backprop-Q critics the image
	// through q.Input, so that a critic can tell images apart: the
	// expected cost of a code depends on the image it must explain. (The
	// layer below would be no input for a deep layer: a critic's inputs
	// must depend only on the sites of its scope, and the scope of h_i
	// for the cost of h_{i+1} holds h_i alone.)
	criticInputs bool
	// The parameter names of the generative networks p(h_i | h_i+1)
	// (pNets[i]) and p(x | h1), and of the inference networks
	// q(h_i | h_i-1) (qNets[i]), made once so that a run makes no string;
	// pixelInit initializes the output bias to pixelLogit.
	pNets, qNets [][]affine
	xNet         []affine
	pixelInit    nn.Initializer
}

func newSBN(a arch, train *mnist.Split) *sbn {
	mean := make([]float64, mnist.Pixels)
	for i := 0; i < train.Len(); i++ {
		for j, p := range train.Images[i*mnist.Pixels : (i+1)*mnist.Pixels] {
			mean[j] += float64(p) / 255
		}
	}
	for j := range mean {
		m := min(max(mean[j]/float64(train.Len()), 1e-3), 1-1e-3)
		mean[j] = math.Log(m / (1 - m))
	}
	m := &sbn{arch: a, pixelLogit: mean, xNet: netNames("p/x", a.hidden)}
	m.pNets, m.qNets = make([][]affine, a.layers+1), make([][]affine, a.layers+1)
	for i := 1; i <= a.layers; i++ {
		m.pNets[i], m.qNets[i] = netNames(fmt.Sprintf("p/%d", i), a.hidden), netNames(fmt.Sprintf("q/%d", i), a.hidden)
	}
	m.pixelInit = nn.InitFunc(func(d *mat.Dense, _ *rand.Rand) { copy(d.RawMatrix().Data, m.pixelLogit) })
	return m
}

// dense applies the affine map a to x.
func dense(ctx *ppl.Ctx, a affine, x *ad.Tensor, out int, bias nn.Initializer) *ad.Tensor {
	w := ppl.Param(ctx, a.w, x.Cols(), out, nn.GlorotUniform{})
	b := ppl.Param(ctx, a.b, 1, out, bias)
	return ad.Add(ad.MatMul(x, w), b)
}

// net maps x through the arch's deterministic tanh layers, then an affine
// map to out units, with the parameters names.
func (m *sbn) net(ctx *ppl.Ctx, names []affine, x *ad.Tensor, out int, bias nn.Initializer) *ad.Tensor {
	for i := 0; i < m.arch.hidden; i++ {
		x = ad.Tanh(dense(ctx, names[i], x, latent, nn.Zeros{}))
	}
	return dense(ctx, names[m.arch.hidden], x, out, bias)
}

// model is the generative network p(x, h): the top layer's prior has
// learned logits, each layer below is Bernoulli given the one above, and
// the image is Bernoulli given h1.
func (m *sbn) model(x *mat.Dense) ppl.Model {
	return func(ctx *ppl.Ctx) {
		top := m.arch.layers
		prior := ppl.Param(ctx, "p/prior", 1, latent, nn.Zeros{})
		h := ppl.Sample(ctx, latentAddr(top), dist.BernoulliLogits(ppl.Expand(ctx, prior)))
		for i := top - 1; i >= 1; i-- {
			h = ppl.Sample(ctx, latentAddr(i), dist.BernoulliLogits(m.net(ctx, m.pNets[i], h, latent, nn.Zeros{})))
		}
		logits := m.net(ctx, m.xNet, h, mnist.Pixels, m.pixelInit)
		ppl.Observe(ctx, "x", dist.BernoulliLogits(logits), ppl.Tile(ctx, ctx.Tape().Const(x)))
	}
}

// guide is the inference network q(h | x), mirroring the model: h1 given x,
// then each layer given the one below.
func (m *sbn) guide(x *mat.Dense) ppl.Model {
	return func(ctx *ppl.Ctx) {
		in := ppl.Tile(ctx, ctx.Tape().Const(x))
		m.data.Store(ctx.Tape(), in)
		// Centering the input as NVIL does speeds up early training.
		in = ad.Sub(in, ctx.Tape().Full(1, mnist.Pixels, 0.5))
		image := in
		for i := 1; i <= m.arch.layers; i++ {
			if m.criticInputs {
				q.Input(ctx, latentAddr(i), image)
			}
			in = ppl.Sample(ctx, latentAddr(i), dist.BernoulliLogits(m.net(ctx, m.qNets[i], in, latent, nn.Zeros{})))
		}
	}
}

// elbo returns the ELBO objective of the images x.
func (m *sbn) elbo(x *mat.Dense) vi.ELBO {
	return vi.ELBO{Model: m.model(x), Guide: m.guide(x)}
}

// trainELBO returns the ELBO of the images x estimated with k samples per
// image: k rows per image, batch-major (the layout ppl.Tile gives and
// infer.RLOO groups by), each cost scaled by 1/k so that the loss and its
// gradient are those of the batch's ELBO, whatever k.
func (m *sbn) trainELBO(x *mat.Dense, k int) vi.Objective {
	e := m.elbo(x)
	if k <= 1 {
		return e
	}
	e.Scale = 1 / float64(k)
	return samples{ELBO: e, k: k, images: x.RawMatrix().Rows}
}

// samples runs an ELBO with k rows for each of its images.
type samples struct {
	vi.ELBO
	k, images int
}

// Run runs the ELBO with k rows per image. env's batch counts the images
// (the particles of infer.SVI), or already the rows (a re-run that replays
// a step's values, which asks for the rows it replays).
func (s samples) Run(env ppl.Config, handlers ...ppl.Handler) (*trace.Trace, error) {
	if env.Batch == s.images {
		env.Batch *= s.k
	}
	return s.ELBO.Run(env, handlers...)
}

// guideLayer returns the stochastic layer (1 is nearest the data) whose
// inference network holds the parameter name, or 0 for a parameter of no
// inference network.
func guideLayer(name string) int {
	rest, ok := strings.CutPrefix(name, "q/")
	if !ok {
		return 0
	}
	layer, _, _ := strings.Cut(rest, "/")
	i, err := strconv.Atoi(layer)
	if err != nil || i < 1 {
		return 0
	}
	return i
}

// iwae returns the importance-weighted objective of the images x with k
// particles each.
func (m *sbn) iwae(x *mat.Dense, k int) vi.IWAE {
	return vi.IWAE{Model: m.model(x), Guide: m.guide(x), K: k}
}

// features returns the batch of images of the run on tape tp, the input of
// the NVIL baseline.
func (m *sbn) features(tp *ad.Tape) (*ad.Tensor, error) {
	t, ok := m.data.Load(tp)
	if !ok {
		return nil, fmt.Errorf("sbn: no data recorded for this run")
	}
	return t, nil
}
