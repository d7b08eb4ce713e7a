package vi_test

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
	"github.com/backpropq/backpropq/vi"
)

// normal returns N(loc, scale²) broadcast to the run's batch.
func normal(ctx *ppl.Ctx, loc, scale float64) dist.Normal {
	tp := ctx.Tape()
	return dist.Normal{Loc: ppl.Expand(ctx, tp.Scalar(loc)), Scale: tp.Scalar(scale)}
}

// The ELBO of a conjugate model, z ~ N(0, 1), x | z ~ N(z, 1), x = 2: with
// the exact posterior N(1, 1/2) as the guide every row of the bound is
// log p(x) = log N(2; 0, 2).
func ExampleELBO() {
	model := func(ctx *ppl.Ctx) {
		z := ppl.Sample(ctx, "z", normal(ctx, 0, 1))
		ppl.Observe(ctx, "x", dist.Normal{Loc: z, Scale: ctx.Tape().Scalar(1)}, ppl.Tile(ctx, ctx.Tape().Scalar(2)))
	}
	guide := func(ctx *ppl.Ctx) { ppl.Sample(ctx, "z", normal(ctx, 1, math.Sqrt(0.5))) }
	obj := vi.ELBO{Model: model, Guide: guide}
	tr, err := obj.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	bounds, _ := obj.Bounds(tr)
	fmt.Printf("bounds %.4f %.4f %.4f\n", bounds.At(0, 0), bounds.At(1, 0), bounds.At(2, 0))
	fmt.Printf("log p(x) %.4f\n", -0.5*math.Log(2*math.Pi*2)-1)
	fmt.Printf("loss %.4f\n", vi.Loss(tr).Item())
	fmt.Println("costs", tr.Graph().Costs())
	// Output:
	// bounds -2.2655 -2.2655 -2.2655
	// log p(x) -2.2655
	// loss 6.7965
	// costs [kl(z) x]
}

// In a two-layer sigmoid belief net z1 -> z2 -> x with a guide that
// samples z1 then z2 given z1, each latent's learning signal holds only the
// costs it reaches: z2 does not reach z1's KL term.
func ExampleELBO_graph() {
	tr, err := vi.ELBO{Model: sbn, Guide: forwardGuide}.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 4})
	if err != nil {
		fmt.Println(err)
		return
	}
	g := tr.Graph()
	for _, z := range g.Stochastic() {
		fmt.Println(z, "reaches", g.CostsFrom(z))
	}
	fmt.Println("kl(z2) depends on", g.Parents(vi.KLAddr("z2")))
	// Output:
	// z1 reaches [kl(z1) kl(z2) x]
	// z2 reaches [kl(z2) x]
	// kl(z2) depends on [z1 z2]
}

// With AnalyticKL, a Normal latent's cost is the closed-form KL divergence
// from its prior, which does not depend on the sampled value.
func ExampleELBO_analyticKL() {
	obj := vi.ELBO{Model: conj.model, Guide: conj.guide(0, 1), AnalyticKL: true}
	tr, err := obj.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 2})
	if err != nil {
		fmt.Println(err)
		return
	}
	kl := tr.Site(vi.KLAddr("z")).Cost
	fmt.Printf("KL %.4f %.4f\n", kl.At(0, 0), kl.At(1, 0))
	fmt.Println("z reaches", tr.Graph().CostsFrom("z"))
	// Output:
	// KL 0.1832 0.1832
	// z reaches [x]
}

// The importance-weighted bound tightens toward log p(x) as the number of
// particles grows; the conjugate model's log p(x) is known.
func ExampleIWAE() {
	fmt.Printf("log p(x) %.2f\n", conj.logEvidence())
	for _, k := range []int{1, 10, 100} {
		obj := vi.IWAE{Model: conj.model, Guide: conj.guide(0, 1), K: k}
		tr, err := obj.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 500})
		if err != nil {
			fmt.Println(err)
			return
		}
		bounds, _ := obj.Bounds(tr)
		fmt.Printf("K=%-3d mean bound %.1f\n", k, ad.Mean(bounds).Item())
	}
	// Output:
	// log p(x) -1.84
	// K=1   mean bound -4.8
	// K=10  mean bound -2.1
	// K=100 mean bound -1.9
}

// VIMCOSignal gives each particle its leave-one-out learning signal, in
// cost units: the particles with the largest weights get the most negative
// signal, so a score-function step makes them more likely. LogWeights and
// VIMCOSignal read the trace alone.
func ExampleVIMCOSignal() {
	obj := vi.IWAE{Model: conj.model, Guide: conj.guide(0, 1), K: 3}
	tr, err := obj.Run(ppl.Config{Rand: rand.New(rand.NewPCG(1, 2)), Batch: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	logw, _ := vi.LogWeights(tr)
	signal, _ := vi.VIMCOSignal(tr)
	for k := range 3 {
		fmt.Printf("log w %6.2f  signal %6.2f\n", logw.At(0, k), signal.At(k, 0))
	}
	// Output:
	// log w  -3.08  signal  -0.31
	// log w  -4.03  signal   0.17
	// log w  -3.63  signal   0.02
}

// Loss is the [1 x 1] loss of an objective's trace; its gradient trains the
// guide. Here plain gradient descent on reparameterized samples moves the
// guide of the conjugate model to its posterior.
func ExampleLoss() {
	store := nn.NewStore()
	guide := func(ctx *ppl.Ctx) {
		loc := ppl.Param(ctx, "q/loc", 1, 1, nn.Zeros{})
		logScale := ppl.Param(ctx, "q/log_scale", 1, 1, nn.Zeros{})
		ppl.Sample(ctx, "z", dist.Normal{Loc: ppl.Expand(ctx, loc), Scale: ad.Exp(logScale)})
	}
	obj := vi.ELBO{Model: conj.model, Guide: guide, AnalyticKL: true}
	rng := rand.New(rand.NewPCG(1, 2))
	opt := nn.NewAdam(0.05)
	for range 500 {
		tp := ad.NewTape()
		tr, err := obj.Run(ppl.Config{Tape: tp, Rand: rng, Params: store, Batch: 32})
		if err != nil {
			fmt.Println(err)
			return
		}
		store.ZeroGrad()
		tp.Backward(ad.Scale(vi.Loss(tr), 1.0/32))
		if err := opt.Step(store.Params()); err != nil {
			fmt.Println(err)
			return
		}
	}
	m, sd := conj.posterior()
	fmt.Printf("posterior N(%.1f, %.1f²), guide N(%.1f, %.1f²)\n", m, sd,
		store.Get("q/loc").Value.At(0, 0), math.Exp(store.Get("q/log_scale").Value.At(0, 0)))
	// Output:
	// posterior N(1.7, 0.7²), guide N(1.7, 0.7²)
}

// Run's handlers apply to the guide: replaying chosen values evaluates the
// bound's terms there.
func ExampleKLAddr() {
	tp := ad.NewTape()
	z := tp.FromData(2, 1, []float64{0, 1})
	tr, err := vi.ELBO{Model: conj.model, Guide: conj.guide(0, 1)}.Run(
		ppl.Config{Tape: tp, Batch: 2}, trace.ReplayValues(map[string]*ad.Tensor{"z": z}))
	if err != nil {
		fmt.Println(err)
		return
	}
	kl := tr.Site(vi.KLAddr("z")).Cost
	fmt.Println(vi.KLAddr("z"))
	fmt.Printf("log q(z) - log p(z): %.4f %.4f\n", kl.At(0, 0), kl.At(1, 0))
	// Output:
	// kl(z)
	// log q(z) - log p(z): 0.4610 -0.0390
}

// ppl.Tile brings a data set of B rows to a run of K particles per data
// point, batch-major: the K rows of a data point are consecutive.
func Example_tile() {
	data := []float64{10, 20}
	model := func(ctx *ppl.Ctx) {
		x := ppl.Tile(ctx, ctx.Tape().FromData(2, 1, data))
		fmt.Println(x.Data())
	}
	for _, batch := range []int{2, 6} {
		if _, err := trace.Run(model, ppl.Config{Batch: batch}); err != nil {
			fmt.Println(err)
		}
	}
	// Output:
	// [10 20]
	// [10 10 10 20 20 20]
}
