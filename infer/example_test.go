package infer_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/vi"
)

// toy is the problem of REBAR and RELAX: minimize E[(b - 0.499)²] with
// b ~ Bernoulli(sigmoid(theta)). Each row is one particle.
func toy(ctx *ppl.Ctx) {
	theta := ppl.Param(ctx, "theta", 1, 1, nn.Zeros{})
	b := ppl.Sample(ctx, "b", dist.BernoulliLogits(ppl.Expand(ctx, theta)))
	ppl.Cost(ctx, "f", ad.Square(ad.Sub(b, ctx.Tape().Scalar(0.499))))
}

// ExampleSVI trains the toy problem with ARM.
func ExampleSVI() {
	store := nn.NewStore()
	svi := &infer.SVI{
		Objective:  vi.Program{Model: toy},
		Estimators: infer.Estimators{Default: infer.ARM{}},
		Optimizer:  nn.NewAdam(0.05),
		Params:     store,
		Particles:  16,
		Seed:       1,
	}
	for i := 0; i < 300; i++ {
		if _, err := svi.Step(); err != nil {
			fmt.Println(err)
			return
		}
	}
	theta := store.Get("theta").Value.At(0, 0)
	// The optimum is b = 0 always: p(b = 1) falls towards 0.
	fmt.Println("p(b = 1) < 0.02:", 1/(1+math.Exp(-theta)) < 0.02)
	// Output:
	// p(b = 1) < 0.02: true
}

// ExampleEstimators chooses estimators by address.
func ExampleEstimators() {
	est := infer.Estimators{
		Default: infer.ScoreFunction{Baseline: infer.NewMovingAverage(0.9)},
		Sites: map[string]infer.Estimator{
			"enc/*":  infer.Pathwise{},
			"enc/b*": infer.DisARM{},
		},
	}
	bern := dist.BernoulliLogits(nil)
	for _, addr := range []string{"enc/z", "enc/b1", "dec/b1"} {
		fmt.Printf("%s: %T\n", addr, est.For(addr, bern))
	}
	// Output:
	// enc/z: infer.Pathwise
	// enc/b1: infer.DisARM
	// dec/b1: infer.ScoreFunction
}

// ExampleEnumerate computes the exact gradient of the toy problem at
// theta = 0: sigmoid'(0)·(f(1) - f(0)) = 0.25·(0.501² - 0.499²) = 0.0005.
func ExampleEnumerate() {
	store := nn.NewStore()
	svi := &infer.SVI{
		Objective:  vi.Program{Model: toy},
		Estimators: infer.Estimators{Default: infer.Enumerate{}},
		Optimizer:  &nn.SGD{LR: 0},
		Params:     store,
		Particles:  1,
		Seed:       1,
	}
	if _, err := svi.Step(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%.6f\n", store.Get("theta").Grad.At(0, 0))
	// Output:
	// 0.000500
}

// ExampleScoreFunction trains a small sigmoid belief network's ELBO with
// REINFORCE and the NVIL baseline.
func ExampleScoreFunction() {
	x := []float64{1, 0, 1, 1, 0, 1}
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		xt := ppl.Expand(ctx, tp.FromData(1, 6, x))
		q := dist.BernoulliLogits(ad.Add(ad.MatMul(xt, ppl.Param(ctx, "q/W", 6, 3, nn.Normal{Std: 0.1})), ppl.Param(ctx, "q/b", 1, 3, nn.Zeros{})))
		h := ppl.Sample(ctx, "h", q)
		p := dist.BernoulliLogits(ppl.Expand(ctx, ppl.Param(ctx, "p/prior", 1, 3, nn.Zeros{})))
		ppl.Cost(ctx, "elbo/h", ad.Sub(q.LogProb(h), p.LogProb(h)))
		logits := ad.Add(ad.MatMul(h, ppl.Param(ctx, "p/W", 3, 6, nn.Normal{Std: 0.1})), ppl.Param(ctx, "p/b", 1, 6, nn.Zeros{}))
		ppl.Observe(ctx, "x", dist.BernoulliLogits(logits), xt)
	}
	svi := &infer.SVI{
		Objective:  vi.Program{Model: model},
		Estimators: infer.Estimators{Default: infer.ScoreFunction{Baseline: infer.NewNVIL(8)}},
		Optimizer:  nn.NewAdam(0.05),
		Params:     nn.NewStore(),
		Particles:  32,
		Seed:       7,
	}
	var first, last float64
	for i := 0; i < 200; i++ {
		m, err := svi.Step()
		if err != nil {
			fmt.Println(err)
			return
		}
		if i == 0 {
			first = m.Loss / float64(m.Rows)
		}
		last = m.Loss / float64(m.Rows)
	}
	fmt.Println("loss per row fell:", last < first-1)
	// Output:
	// loss per row fell: true
}

// ExampleSVI_SaveCheckpoint saves a run and resumes it elsewhere.
func ExampleSVI_SaveCheckpoint() {
	newSVI := func() *infer.SVI {
		return &infer.SVI{
			Objective:  vi.Program{Model: toy},
			Estimators: infer.Estimators{Default: infer.ScoreFunction{Baseline: infer.NewMovingAverage(0.9)}},
			Optimizer:  nn.NewAdam(0.05),
			Params:     nn.NewStore(),
			Particles:  8,
			Seed:       3,
		}
	}
	dir, err := os.MkdirTemp("", "infer")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "run.ckpt")

	a := newSVI()
	for i := 0; i < 10; i++ {
		if _, err := a.Step(); err != nil {
			fmt.Println(err)
			return
		}
	}
	if err := a.SaveCheckpoint(path); err != nil {
		fmt.Println(err)
		return
	}
	b := newSVI()
	if err := b.LoadCheckpoint(path); err != nil {
		fmt.Println(err)
		return
	}
	ma, _ := a.Step()
	mb, _ := b.Step()
	fmt.Println(b.StepCount(), ma.Loss == mb.Loss, ma.GradNorm == mb.GradNorm)
	// Output:
	// 11 true true
}

// ExampleBuildSurrogate builds the surrogate loss of one run by hand.
func ExampleBuildSurrogate() {
	tp := ad.NewTape()
	store := nn.NewStore()
	env := ppl.Config{Tape: tp, Rand: rand.New(rand.NewPCG(1, 2)), Params: store, Batch: 4}
	sur, err := infer.BuildSurrogate(vi.Program{Model: toy}, infer.Estimators{}, env)
	if err != nil {
		fmt.Println(err)
		return
	}
	tp.Backward(sur.Loss)
	addrs, _ := sur.Signals()
	fmt.Println(sur.Loss.Rows(), sur.Loss.Cols(), addrs)
	// Output:
	// 1 1 [b]
}
