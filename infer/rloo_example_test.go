package infer_test

import (
	"fmt"
	"math"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/vi"
)

// ExampleRLOO learns, for two data points x = 0 and x = 1, a Bernoulli
// b ~ p(b | x) that minimizes E[(b - x)²], with four samples per data
// point: ppl.Tile repeats each data point over four consecutive rows, the
// layout RLOO groups by.
func ExampleRLOO() {
	const k = 4
	model := func(ctx *ppl.Ctx) {
		x := ppl.Tile(ctx, ctx.Tape().FromData(2, 1, []float64{0, 1}))
		w := ppl.Param(ctx, "w", 1, 1, nn.Zeros{})
		c := ppl.Param(ctx, "c", 1, 1, nn.Zeros{})
		b := ppl.Sample(ctx, "b", dist.BernoulliLogits(ad.Add(ad.MatMul(x, w), c)))
		ppl.Cost(ctx, "f", ad.Square(ad.Sub(b, x)))
	}
	store := nn.NewStore()
	svi := &infer.SVI{
		Objective:  vi.Program{Model: model},
		Estimators: infer.Estimators{Default: infer.RLOO{K: k}},
		Optimizer:  nn.NewAdam(0.05),
		Params:     store,
		Particles:  2 * k,
		Seed:       1,
	}
	for i := 0; i < 500; i++ {
		if _, err := svi.Step(); err != nil {
			fmt.Println(err)
			return
		}
	}
	w, c := store.Get("w").Value.At(0, 0), store.Get("c").Value.At(0, 0)
	fmt.Println("p(b = 1 | x = 0) < 0.1:", 1/(1+math.Exp(-c)) < 0.1)
	fmt.Println("p(b = 1 | x = 1) > 0.9:", 1/(1+math.Exp(-w-c)) > 0.9)
	// Output:
	// p(b = 1 | x = 0) < 0.1: true
	// p(b = 1 | x = 1) > 0.9: true
}
