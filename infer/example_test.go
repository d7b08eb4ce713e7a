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

// gradientAtZero returns the toy problem's gradient at theta = 0 estimated
// by est from rows particles, per particle.
func gradientAtZero(est infer.Estimator, rows int) float64 {
	store := nn.NewStore()
	svi := &infer.SVI{
		Objective:  vi.Program{Model: toy},
		Estimators: infer.Estimators{Default: est},
		Optimizer:  &nn.SGD{LR: 0}, // keep theta at 0
		Params:     store,
		Particles:  rows,
		Seed:       5,
	}
	if _, err := svi.Step(); err != nil {
		panic(err)
	}
	return store.Get("theta").Grad.At(0, 0) / float64(rows)
}

// ExampleARM estimates the toy problem's gradient at theta = 0, exactly
// 0.0005, from 10000 particles.
func ExampleARM() {
	fmt.Printf("%.4f\n", gradientAtZero(infer.ARM{}, 10000))
	// Output:
	// 0.0005
}

// ExampleDisARM shows DisARM's estimate at theta = 0 on the toy problem:
// there the two antithetic values always differ, and the estimate of every
// single particle is the exact gradient.
func ExampleDisARM() {
	fmt.Printf("%.6f %.6f\n", gradientAtZero(infer.DisARM{}, 1), gradientAtZero(infer.DisARM{}, 3))
	// Output:
	// 0.000500 0.000500
}

// ExamplePathwise fits the mean of a Normal site by its pathwise gradient.
func ExamplePathwise() {
	model := func(ctx *ppl.Ctx) {
		loc := ppl.Param(ctx, "loc", 1, 1, nn.Zeros{})
		z := ppl.Sample(ctx, "z", dist.Normal{Loc: ppl.Expand(ctx, loc), Scale: ctx.Tape().Full(ctx.Batch(), 1, 1)})
		ppl.Cost(ctx, "f", ad.Square(ad.Sub(z, ctx.Tape().Scalar(3))))
	}
	store := nn.NewStore()
	svi := &infer.SVI{
		Objective:  vi.Program{Model: model},
		Estimators: infer.Estimators{Default: infer.Pathwise{}},
		Optimizer:  nn.NewAdam(0.1),
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
	fmt.Printf("loc = %.1f\n", store.Get("loc").Value.At(0, 0))
	// Output:
	// loc = 3.0
}

// ExampleNVIL gives the NVIL baseline network the data as its input, as
// Mnih and Gregor do; the network's parameters live in the training store.
func ExampleNVIL() {
	x := []float64{1, 0, 1, 1}
	data := func(tp *ad.Tape, rows int) *ad.Tensor {
		d := make([]float64, 0, rows*len(x))
		for r := 0; r < rows; r++ {
			d = append(d, x...)
		}
		return tp.FromData(rows, len(x), d)
	}
	model := func(ctx *ppl.Ctx) {
		xt := data(ctx.Tape(), ctx.Batch())
		q := dist.BernoulliLogits(ad.MatMul(xt, ppl.Param(ctx, "q/W", 4, 2, nn.Zeros{})))
		h := ppl.Sample(ctx, "h", q)
		ppl.Observe(ctx, "x", dist.BernoulliLogits(ad.MatMul(h, ppl.Param(ctx, "p/W", 2, 4, nn.Zeros{}))), xt)
		ppl.Cost(ctx, "logq", q.LogProb(h))
	}
	nvil := infer.NewNVIL(8)
	nvil.Features = func(sc *infer.SiteContext) (*ad.Tensor, error) {
		return data(sc.Signal.Tape(), sc.Signal.Rows()), nil
	}
	store := nn.NewStore()
	svi := &infer.SVI{
		Objective:  vi.Program{Model: model},
		Estimators: infer.Estimators{Default: infer.ScoreFunction{Baseline: nvil}},
		Optimizer:  nn.NewAdam(0.01),
		Params:     store,
		Particles:  8,
		Seed:       1,
	}
	for i := 0; i < 5; i++ {
		if _, err := svi.Step(); err != nil {
			fmt.Println(err)
			return
		}
	}
	for _, p := range store.Params() {
		r, c := p.Value.Dims()
		fmt.Printf("%s [%dx%d]\n", p.Name, r, c)
	}
	_, _, ok := nvil.Stats("h")
	fmt.Println("running statistics:", ok)
	// Output:
	// infer/nvil/h/W1 [4x8]
	// infer/nvil/h/W2 [8x1]
	// infer/nvil/h/b1 [1x8]
	// infer/nvil/h/b2 [1x1]
	// p/W [2x4]
	// q/W [4x2]
	// running statistics: true
}

// ExampleMovingAverage reads the running baseline of a site.
func ExampleMovingAverage() {
	baseline := infer.NewMovingAverage(0.9)
	svi := &infer.SVI{
		Objective:  vi.Program{Model: toy},
		Estimators: infer.Estimators{Default: infer.ScoreFunction{Baseline: baseline}},
		Optimizer:  &nn.SGD{LR: 0},
		Params:     nn.NewStore(),
		Particles:  100,
		Seed:       1,
	}
	for i := 0; i < 20; i++ {
		if _, err := svi.Step(); err != nil {
			fmt.Println(err)
			return
		}
	}
	// At theta = 0 the cost is 0.499² or 0.501², about 0.25.
	b, _ := baseline.Value("b")
	fmt.Printf("%.2f\n", b)
	// Output:
	// 0.25
}
