package infer_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/vi"
)

// ExampleNewAutoNormal fits a Bayesian linear regression with an automatic
// mean-field guide, then draws the posterior predictive at a new input.
func ExampleNewAutoNormal() {
	rng := rand.New(rand.NewPCG(5, 6))
	xs, ys := make([]float64, 200), make([]float64, 200)
	for i := range xs {
		xs[i] = 4*rng.Float64() - 2
		ys[i] = 1.5*xs[i] - 0.7 + 0.5*rng.NormFloat64()
	}

	regression := func(xs, ys []float64) ppl.Model {
		return func(ctx *ppl.Ctx) {
			tp, p := ctx.Tape(), ctx.Batch()
			prior := dist.Normal{Loc: tp.Zeros(p, 1), Scale: tp.Full(p, 1, 2)}
			w, b := ppl.Sample(ctx, "w", prior), ppl.Sample(ctx, "b", prior)
			data := ppl.Plate(ctx, "data", len(xs))
			loc := ad.Add(ad.Mul(ppl.Broadcast(data, w), ppl.Data(data, tp.FromData(len(xs), 1, xs))), ppl.Broadcast(data, b))
			y := dist.Normal{Loc: loc, Scale: tp.Full(data.Rows(), 1, 0.5)}
			if ys == nil {
				ppl.Sample(data, "y", y) // prediction
			} else {
				ppl.Observe(data, "y", y, ppl.Data(data, tp.FromData(len(ys), 1, ys)))
			}
		}
	}
	model := regression(xs, ys)
	guide, err := infer.NewAutoNormal(model, infer.AutoOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	svi := &infer.SVI{Objective: vi.ELBO{Model: model, Guide: guide.Guide}, Optimizer: nn.NewAdam(0.02), Params: nn.NewStore(), Particles: 8}
	for range 1500 {
		if _, err := svi.Step(); err != nil {
			fmt.Println(err)
			return
		}
	}

	for _, addr := range []string{"w", "b"} {
		loc, scale, _ := guide.Params(svi.Params, addr)
		fmt.Printf("%s: %.1f ± %.2f\n", addr, loc.At(0, 0), scale.At(0, 0))
	}
	pred, err := infer.Predictive{Model: regression([]float64{2}, nil), Guide: guide.Guide, Params: svi.Params, Sites: []string{"y"}, Samples: 10000}.Run()
	if err != nil {
		fmt.Println(err)
		return
	}
	sum, _ := pred.Summary("y", 0.05, 0.95)
	fmt.Printf("y at x=2: %.1f ± %.1f, 90%% in [%.1f, %.1f]\n", sum.Mean.At(0, 0), sum.SD.At(0, 0), sum.Quantiles[0].At(0, 0), sum.Quantiles[1].At(0, 0))
	// Output:
	// w: 1.5 ± 0.03
	// b: -0.7 ± 0.04
	// y at x=2: 2.3 ± 0.5, 90% in [1.4, 3.1]
}
