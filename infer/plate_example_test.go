package infer_test

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/vi"
)

// ExampleSVI_plate trains a Bayesian linear regression on minibatches of
// 50 of 200 points: the slope w and intercept b are global, the data sit
// in a subsampled plate, so only the observations are weighed by 200/50.
func ExampleSVI_plate() {
	rng := rand.New(rand.NewPCG(5, 6))
	xs, ys := make([]float64, 200), make([]float64, 200)
	for i := range xs {
		xs[i] = 4*rng.Float64() - 2
		ys[i] = 1.5*xs[i] - 0.7 + 0.6*rng.NormFloat64()
	}
	x, y := ad.NewTape().FromData(200, 1, xs), ad.NewTape().FromData(200, 1, ys)

	model := func(ctx *ppl.Ctx) {
		tp, p := ctx.Tape(), ctx.Batch()
		prior := dist.Normal{Loc: tp.Zeros(p, 1), Scale: tp.Full(p, 1, 2)}
		w, b := ppl.Sample(ctx, "w", prior), ppl.Sample(ctx, "b", prior)
		data := ppl.Plate(ctx, "data", 200, ppl.Subsample(50))
		loc := ad.Add(ad.Mul(ppl.Broadcast(data, w), ppl.Data(data, x)), ppl.Broadcast(data, b))
		ppl.Observe(data, "y", dist.Normal{Loc: loc, Scale: tp.Full(data.Rows(), 1, 0.6)}, ppl.Data(data, y))
	}
	guide := func(ctx *ppl.Ctx) {
		for _, name := range []string{"w", "b"} {
			loc := ppl.Param(ctx, name+"/loc", 1, 1, nn.Zeros{})
			scale := ad.Exp(ppl.Param(ctx, name+"/logscale", 1, 1, nn.Constant(-1)))
			ppl.Sample(ctx, name, dist.Normal{Loc: ppl.Expand(ctx, loc), Scale: ppl.Expand(ctx, scale)})
		}
	}
	adam := nn.NewAdam(0.05)
	svi := &infer.SVI{
		Objective:  vi.ELBO{Model: model, Guide: guide},
		Estimators: infer.Estimators{Default: infer.Pathwise{}},
		Optimizer:  adam,
		Params:     nn.NewStore(),
		Particles:  4,
		Seed:       1,
	}
	for i := 0; i < 1500; i++ {
		if i == 1000 {
			adam.LR = 0.005 // smaller steps to settle
		}
		if _, err := svi.Step(); err != nil {
			fmt.Println(err)
			return
		}
	}
	for _, name := range []string{"w", "b"} {
		loc := svi.Params.Get(name+"/loc").Value.At(0, 0)
		scale := math.Exp(svi.Params.Get(name+"/logscale").Value.At(0, 0))
		fmt.Printf("%s: %.1f ± %.2f\n", name, loc, scale)
	}
	// Output:
	// w: 1.5 ± 0.04
	// b: -0.7 ± 0.04
}
