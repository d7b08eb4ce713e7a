package infer_test

import (
	"fmt"
	"math"
	"math/rand/v2"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/infer"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/vi"
)

// chain is a two-site stochastic program: b1 ~ Bernoulli(σ(a)),
// b2 ~ Bernoulli(σ(c + 2·b1)), with the cost (b1 + b2 - 0.3)².
func chain(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	a := ppl.Param(ctx, "a", 1, 1, nn.Constant(1))
	c := ppl.Param(ctx, "c", 1, 1, nn.Constant(0.5))
	b1 := ppl.Sample(ctx, "b1", dist.BernoulliLogits(ppl.Expand(ctx, a)))
	b2 := ppl.Sample(ctx, "b2", dist.BernoulliLogits(ad.Add(ppl.Expand(ctx, c), ad.Scale(b1, 2))))
	ppl.Cost(ctx, "f", ad.Square(ad.Sub(ad.Add(b1, b2), tp.Scalar(0.3))))
}

// trainChain trains chain with est at every site and returns the
// probability that b1 + b2 = 0 afterwards, which the optimum drives to 1.
func trainChain(est infer.Estimator) (float64, error) {
	store := nn.NewStore()
	svi := &infer.SVI{
		Objective:  vi.Program{Model: chain},
		Estimators: infer.Estimators{Default: est},
		Optimizer:  nn.NewAdam(0.05),
		Params:     store,
		Particles:  16,
		Seed:       1,
	}
	for i := 0; i < 200; i++ {
		if _, err := svi.Step(); err != nil {
			return 0, err
		}
	}
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	a, c := store.Get("a").Value.At(0, 0), store.Get("c").Value.At(0, 0)
	return (1 - sig(a)) * (1 - sig(c)), nil
}

// ExampleMuProp trains a Bernoulli chain with MuProp's Taylor control
// variate at the mean-field point.
func ExampleMuProp() {
	p, err := trainChain(infer.MuProp{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("unbiased:", infer.MuProp{}.Unbiased())
	fmt.Println("p(b1 = b2 = 0) > 0.8:", p > 0.8)
	// Output:
	// unbiased: true
	// p(b1 = b2 = 0) > 0.8: true
}

// ExampleREBAR trains a Bernoulli chain with REBAR; its scale η and
// temperature λ are parameters of the training run's store, trained to
// lower the estimator's variance.
func ExampleREBAR() {
	store := nn.NewStore()
	svi := &infer.SVI{
		Objective:  vi.Program{Model: chain},
		Estimators: infer.Estimators{Sites: map[string]infer.Estimator{"b*": infer.REBAR{}}},
		Optimizer:  nn.NewAdam(0.05),
		Params:     store,
		Particles:  16,
		Seed:       1,
	}
	for i := 0; i < 200; i++ {
		if _, err := svi.Step(); err != nil {
			fmt.Println(err)
			return
		}
	}
	for _, p := range store.Params() {
		fmt.Println(p.Name)
	}
	// Output:
	// a
	// c
	// infer/rebar/b1/eta
	// infer/rebar/b1/log_temperature
	// infer/rebar/b2/eta
	// infer/rebar/b2/log_temperature
}

// ExampleRELAX trains a Bernoulli chain with RELAX, whose control variate
// is a small network of the relaxed value fitted to the cost.
func ExampleRELAX() {
	p, err := trainChain(infer.RELAX{Hidden: 8})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("p(b1 = b2 = 0) > 0.8:", p > 0.8)
	// Output:
	// p(b1 = b2 = 0) > 0.8: true
}

// ExampleGumbelSoftmax shows the values the straight-through relaxation
// puts in the training run: hard 0/1 values, with the relaxed gradient.
func ExampleGumbelSoftmax() {
	tp := ad.NewTape()
	logits := tp.Full(8, 1, 0)
	site := &ppl.Site{Addr: "b", Kind: ppl.KindSample, Dist: dist.BernoulliLogits(logits)}
	est := infer.GumbelSoftmax{Temperature: 0.5, StraightThrough: true}
	v := est.Draw(site, rand.New(rand.NewPCG(1, 2)))
	grad := tp.Gradients(ad.Sum(v), logits)[0]
	fmt.Println("unbiased:", est.Unbiased())
	fmt.Println("values:", mat.Formatted(v.Value().T()))
	fmt.Println("gradient reaches the logits:", mat.Sum(grad) > 0)
	// Output:
	// unbiased: false
	// values: [1  0  1  0  1  0  1  0]
	// gradient reaches the logits: true
}

// ExamplePPO sets up the clipped surrogate for a batch reused over several
// steps: the snapshot holds the log-probabilities under the policy that
// drew it.
func ExamplePPO() {
	tp := ad.NewTape()
	store := nn.NewStore()
	env := ppl.Config{Tape: tp, Rand: rand.New(rand.NewPCG(1, 2)), Params: store, Batch: 4}
	model := func(ctx *ppl.Ctx) {
		theta := ppl.Param(ctx, "theta", 1, 1, nn.Zeros{})
		b := ppl.Sample(ctx, "b", dist.BernoulliLogits(ppl.Expand(ctx, theta)))
		ppl.Cost(ctx, "f", ad.Neg(b))
	}
	old := &infer.PolicySnapshot{}
	sur, err := infer.BuildSurrogate(vi.Program{Model: model}, infer.Estimators{Default: infer.PPO{Clip: 0.2, Old: old}}, env)
	if err != nil {
		fmt.Println(err)
		return
	}
	old.Record(sur.Trace)
	lp, _ := old.LogProb("b")
	fmt.Println("rows recorded:", len(lp))
	// Output:
	// rows recorded: 4
}

// ExampleTRPO takes one trust-region step on a two-action policy.
func ExampleTRPO() {
	w := nn.NewParam("W", mat.NewDense(1, 2, nil))
	actions := mat.NewDense(4, 1, []float64{0, 1, 0, 1})
	costs := []float64{1, -1, 1, -1} // action 1 is better
	policy := func(tp *ad.Tape, ps []*ad.Tensor) (dist.Distribution, error) {
		return dist.Categorical{Logits: ps[0]}, nil
	}
	res, err := infer.TRPO{MaxKL: 0.01}.Step([]*nn.Param{w}, policy, actions, costs)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("accepted:", res.Accepted, "KL within bound:", res.KL <= 0.01)
	fmt.Println("action 1 more likely:", w.Value.At(0, 1) > w.Value.At(0, 0))
	// Output:
	// accepted: true KL within bound: true
	// action 1 more likely: true
}
