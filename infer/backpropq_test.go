package infer

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/trace"
	"github.com/backpropq/backpropq/vi"
)

// qEstimator is what the tests use of every Backprop-Q estimator.
type qEstimator interface {
	Stateful
	CriticHolder
	TDError(addr string) (float64, bool)
	Stats(addr string) (QSiteStats, bool)
}

// trainCritics takes steps of s with a zero learning rate, so that the
// critics of est learn the Q-functions of the model's initial parameters.
func trainCritics(t *testing.T, s *SVI, steps int) {
	t.Helper()
	opt := s.Optimizer
	s.Optimizer = &nn.SGD{LR: 0}
	for i := 0; i < steps; i++ {
		_, err := s.Step()
		require.NoError(t, err)
	}
	s.Optimizer = opt
}

// TestBackpropQControlVariateUnbiased checks that mode QControlVariate,
// with critics trained for a few hundred steps (imperfect, constant step
// size, one-step TD), agrees with the exact gradient.
func TestBackpropQControlVariateUnbiased(t *testing.T) {
	checkControlVariateUnbiased(t, 200, func() *QControlVariate {
		return NewQControlVariate(q.Config{Kind: q.TabularKind, LR: 0.05}, q.TD{})
	})
}

// checkControlVariateUnbiased trains the critics of the control-variate
// estimator newEst returns for the given steps on each enumerable model
// (chain, categorical, SBN ELBO), checks that the control variate is in
// use and the critics trained, and compares the estimate with the exact
// gradient.
func checkControlVariateUnbiased(t *testing.T, steps int, newEst func() *QControlVariate) {
	t.Helper()
	models := []struct {
		name    string
		obj     vi.Objective
		support []siteSupport
		site    string
	}{
		{"chain", vi.Program{Model: chainModel}, chainSupport, "z1"},
		{"categorical", vi.Program{Model: categoricalModel}, categoricalSupport, "z"},
		{"sbn-elbo", sbnELBO, sbnSupport, "h1"},
	}
	for _, m := range models {
		t.Run(m.name, func(t *testing.T) {
			store := initObjectiveStore(t, m.obj)
			exact := exactObjectiveGradient(t, m.obj, store, m.support)
			est := newEst()
			s := &SVI{
				Objective: m.obj, Estimators: Estimators{Default: est},
				Optimizer: nn.NewAdam(0.01), Params: store, Particles: 20, Seed: 3,
			}
			trainCritics(t, s, steps)
			a, _ := est.Coefficients(m.site)
			require.NotZero(t, a, "the control variate is in use")
			_, ok := est.TDError(m.site)
			require.True(t, ok)
			mean, se := estimateGradient(t, s, repetitions())
			requireAgree(t, exact, mean, se)
		})
	}
}

// exactQ installs in est's set, for every Q-node of the network of obj
// (zero options), a tabular critic holding the exact Q-function computed by
// enumeration over sup: E[sum of the node's sources | scope], and returns
// the largest difference between the critics est had learned and the exact
// values. Every layout field must be a one-column Binary one.
func exactQ(t *testing.T, obj vi.Objective, store *nn.Store, sup []siteSupport, est CriticHolder) float64 {
	t.Helper()
	critics := est.QCritics().Set
	tp := ad.NewTape()
	tr, err := obj.Run(ppl.Config{Tape: tp, Params: store, Batch: 1, Rand: rand.New(rand.NewPCG(1, 2))})
	require.NoError(t, err)
	net, err := q.Build(tr.Graph(), q.NetworkOptions{})
	require.NoError(t, err)
	// Every configuration's probability, site values and costs.
	type config struct {
		p     float64
		vals  map[string]float64
		costs map[string]float64
	}
	var configs []config
	n := 1 << len(sup)
	for k := 0; k < n; k++ {
		cfg := map[string]*ad.Tensor{}
		c := config{vals: map[string]float64{}, costs: map[string]float64{}}
		for i, s := range sup {
			v := float64(k >> i & 1)
			cfg[s.addr] = tp.FromData(1, 1, []float64{v})
			c.vals[s.addr] = v
		}
		tr, err := obj.Run(ppl.Config{Tape: tp, Params: store, Batch: 1}, trace.ReplayValues(cfg))
		require.NoError(t, err)
		logp := 0.0
		for _, s := range tr.Sites() {
			if s.Stochastic() {
				logp += s.LogProb.Item()
			}
			if s.IsCost() {
				c.costs[s.Addr] = s.ScaledCost().Item()
			}
		}
		c.p = math.Exp(logp)
		configs = append(configs, c)
	}
	worst := 0.0
	for _, nd := range net.Nodes {
		key := critics.Key(nd)
		learned := critics.Critic(key)
		require.NotNil(t, learned, key)
		layout := learned.Layout()
		w := layout.Width()
		cells := 1 << w
		x := mat.NewDense(cells, w, nil)
		target := make([]float64, cells)
		for cell := 0; cell < cells; cell++ {
			num, den := 0.0, 0.0
			for _, c := range configs {
				match := true
				for j, f := range layout.Fields {
					require.Equal(t, q.Binary, f.Kind)
					require.Equal(t, 1, f.Width)
					if c.vals[f.Addr] != float64(cell>>j&1) {
						match = false
					}
				}
				if !match {
					continue
				}
				for _, src := range nd.Sources {
					num += c.p * c.costs[src]
				}
				den += c.p
			}
			for j := 0; j < w; j++ {
				x.Set(cell, j, float64(cell>>j&1))
			}
			target[cell] = num / den
		}
		got := make([]float64, cells)
		learned.Predict(x, got)
		for i := range got {
			worst = math.Max(worst, math.Abs(got[i]-target[i]))
		}
		tab, err := q.NewTabular(layout, 1)
		require.NoError(t, err)
		require.NoError(t, tab.Update(x, target))
		critics.Put(key, tab)
	}
	return worst
}

// TestBackpropQLocalExactQ checks mode QLocal with the exact Q-functions
// plugged into its tabular critics against the exact gradient (Theorem 1),
// after checking that critics trained by TD (Monte Carlo returns, running
// averages) approach them.
func TestBackpropQLocalExactQ(t *testing.T) {
	for _, valueBaseline := range []bool{false, true} {
		t.Run(fmt.Sprintf("value-baseline=%v", valueBaseline), func(t *testing.T) {
			obj := vi.Program{Model: chainModel}
			store := initObjectiveStore(t, obj)
			exact := exactObjectiveGradient(t, obj, store, chainSupport)
			est := NewQLocal(q.Config{Kind: q.TabularKind}, q.TD{Lambda: 1})
			est.ValueBaseline = valueBaseline
			s := &SVI{
				Objective: obj, Estimators: Estimators{Default: est},
				Optimizer: nn.NewAdam(0.01), Params: store, Particles: 200, Seed: 3,
			}
			trainCritics(t, s, 100)
			// 20000 returns of standard deviation below 3 spread over at
			// most 8 cells: an error above 0.15 is far beyond 4 SE.
			require.Less(t, exactQ(t, obj, store, chainSupport, est), 0.15)
			s.Particles = 20
			mean, se := estimateGradient(t, s, repetitions())
			requireAgree(t, exact, mean, se)
		})
	}
}

// exactCost returns the expected total cost of obj by enumeration.
func exactCost(t *testing.T, obj vi.Objective, store *nn.Store, sup []siteSupport) float64 {
	t.Helper()
	tp := ad.NewTape()
	total := 0.0
	idx := make([]int, len(sup))
	for {
		cfg := map[string]*ad.Tensor{}
		for i, s := range sup {
			v := s.values[idx[i]]
			cfg[s.addr] = tp.FromData(1, len(v), v)
		}
		tr, err := obj.Run(ppl.Config{Tape: tp, Params: store, Batch: 1}, trace.ReplayValues(cfg))
		require.NoError(t, err)
		logp, cost := 0.0, 0.0
		for _, s := range tr.Sites() {
			if s.Stochastic() {
				logp += s.LogProb.Item()
			}
			if s.IsCost() {
				cost += s.ScaledCost().Item()
			}
		}
		total += math.Exp(logp) * cost
		i := 0
		for ; i < len(idx); i++ {
			idx[i]++
			if idx[i] < len(sup[i].values) {
				break
			}
			idx[i] = 0
		}
		if i == len(idx) {
			return total
		}
	}
}

// failingOptimizer is an optimizer whose step fails, after every term of
// the step has been built.
type failingOptimizer struct{ nn.Optimizer }

func (failingOptimizer) Step([]*nn.Param) error { return errors.New("test: optimizer fails") }

// TestBackpropQSVI trains the chain through SVI in every mode, checks that
// the exact expected cost falls, and that a failed step changes neither
// the critics nor the estimator's state.
func TestBackpropQSVI(t *testing.T) {
	cases := []struct {
		name string
		make func() qEstimator
	}{
		{"local", func() qEstimator {
			b := NewQLocal(q.Config{Kind: q.TabularKind, LR: 0.1}, q.TD{Lambda: 0.5})
			b.Baseline = NewMovingAverage(0.9)
			return b
		}},
		{"control-variate", func() qEstimator {
			return NewQControlVariate(q.Config{Kind: q.TabularKind, LR: 0.1}, q.TD{Lambda: 0.5})
		}},
		{"advantage", func() qEstimator { return NewQAdvantage(q.Config{Kind: q.TabularKind, LR: 0.1}, q.TD{Lambda: 0.5}) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			obj := vi.Program{Model: chainModel}
			store := initObjectiveStore(t, obj)
			before := exactCost(t, obj, store, chainSupport)
			est := c.make()
			s := &SVI{
				Objective: obj, Estimators: Estimators{Default: est},
				Optimizer: nn.NewAdam(0.05), Params: store, Particles: 16, Seed: 5,
			}
			for i := 0; i < 150; i++ {
				m, err := s.Step()
				require.NoError(t, err)
				require.Len(t, m.Sites, 3)
			}
			after := exactCost(t, obj, store, chainSupport)
			require.Less(t, after, before-0.3, "expected cost %v -> %v", before, after)

			state, err := est.MarshalState()
			require.NoError(t, err)
			tdErr, _ := est.TDError("z1")
			st, ok := est.Stats("z1")
			require.True(t, ok)
			require.Equal(t, tdErr, st.TDError)
			require.Greater(t, st.ReturnVar, 0.0)
			opt := s.Optimizer
			s.Optimizer = failingOptimizer{opt}
			_, err = s.Step()
			require.Error(t, err)
			s.Optimizer = opt
			state2, err := est.MarshalState()
			require.NoError(t, err)
			require.True(t, bytes.Equal(state, state2), "a failed step changed the estimator's state")
			tdErr2, _ := est.TDError("z1")
			require.Equal(t, tdErr, tdErr2)
			st2, _ := est.Stats("z1")
			require.Equal(t, st, st2)

			// The state round-trips into a fresh estimator.
			est2 := c.make()
			require.NoError(t, est2.UnmarshalState(state))
			state3, err := est2.MarshalState()
			require.NoError(t, err)
			require.True(t, bytes.Equal(state, state3))
			require.Error(t, est2.UnmarshalState(state[:len(state)-3]))
		})
	}
}

// chain20 is a chain of 20 Bernoulli sites, each depending on the previous
// one, with one delayed nonlinear cost of the last two.
func chain20(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	theta := ppl.Param(ctx, "theta", 1, 20, nn.Constant(-3))
	w := ppl.Param(ctx, "w", 1, 1, values(6))
	var z *ad.Tensor
	var prev *ad.Tensor
	for i := 0; i < 20; i++ {
		logits := ppl.Expand(ctx, ad.Slice(theta, i, i+1))
		if z != nil {
			logits = ad.Add(logits, ad.Mul(z, w))
		}
		prev = z
		z = ppl.Sample(ctx, "z["+strconv.Itoa(i)+"]", dist.BernoulliLogits(logits))
	}
	ppl.Cost(ctx, "f", ad.Scale(ad.Square(ad.Sub(ad.Add(prev, ad.Scale(z, 2)), tp.Scalar(1.2))), 5))
}

// firstSiteGradient returns the mean and variance over reps of the
// estimate of the gradient for the first site's logit theta[0].
func firstSiteGradient(t *testing.T, s *SVI, reps int) (mean, variance float64) {
	t.Helper()
	var sum, sum2 float64
	for r := 0; r < reps; r++ {
		_, _, err := s.compute()
		require.NoError(t, err)
		s.step++
		g := modelGrads(s.Params)[0] / float64(s.Particles)
		sum += g
		sum2 += g * g
	}
	n := float64(reps)
	mean = sum / n
	return mean, (sum2 - n*mean*mean) / (n - 1)
}

// estimatorOnly steps only the estimators' own parameters (names starting
// with "infer/", NVIL's baseline networks, say) with Adam at rate 0.01,
// and the model's with Model; nil Model leaves them fixed.
type estimatorOnly struct {
	nn.Optimizer
	Model nn.Optimizer
}

func newEstimatorOnly(model nn.Optimizer) estimatorOnly {
	return estimatorOnly{Optimizer: nn.NewAdam(0.01), Model: model}
}

func (o estimatorOnly) Step(params []*nn.Param) error {
	var own, model []*nn.Param
	for _, p := range params {
		if strings.HasPrefix(p.Name, "infer/") {
			own = append(own, p)
		} else {
			model = append(model, p)
		}
	}
	if o.Model != nil {
		if err := o.Model.Step(model); err != nil {
			return err
		}
	}
	return o.Optimizer.Step(own)
}

// chain20Cost returns the exact expected cost of chain20 under the
// parameters of store, by the forward recursion over the chain's
// marginals (the cost reads the last two sites only).
func chain20Cost(store *nn.Store) float64 {
	theta := store.Get("theta").Value.RawMatrix().Data
	w := store.Get("w").Value.At(0, 0)
	sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	// p1 = P(z[i] = 1); the cost needs the joint law of z[18], z[19].
	p1 := sig(theta[0])
	for i := 1; i < 19; i++ {
		p1 = (1-p1)*sig(theta[i]) + p1*sig(theta[i]+w)
	}
	f := func(a, b float64) float64 { d := a + 2*b - 1.2; return 5 * d * d }
	cost := 0.0
	for _, a := range []float64{0, 1} {
		pa := 1 - p1
		if a == 1 {
			pa = p1
		}
		pb1 := sig(theta[19] + w*a)
		cost += pa * ((1-pb1)*f(a, 0) + pb1*f(a, 1))
	}
	return cost
}

// chain20Estimators are the estimators compared on chain20: REINFORCE with
// a moving-average baseline, Enumerate (each site's values summed exactly,
// the other sites sampled: a low-variance unbiased reference), NVIL (one
// 8-unit hidden layer, without
// variance normalization so that all share one gradient scale), and
// Backprop-Q with tabular critics trained by Monte Carlo TD (lambda = 1)
// with step size lr (0: running averages, 1/n).
var chain20Estimators = []struct {
	name string
	make func(lr float64) Estimator
}{
	{"REINFORCE+MA", func(float64) Estimator { return ScoreFunction{Baseline: NewMovingAverage(0.9)} }},
	{"Enumerate", func(float64) Estimator { return Enumerate{} }},
	{"NVIL", func(float64) Estimator {
		n := NewNVIL(8)
		n.NoNormalize = true
		return ScoreFunction{Baseline: n}
	}},
	{"bpq control-variate", func(lr float64) Estimator {
		return NewQControlVariate(q.Config{Kind: q.TabularKind, LR: lr}, q.TD{Lambda: 1})
	}},
	{"bpq local", func(lr float64) Estimator {
		return NewQLocal(q.Config{Kind: q.TabularKind, LR: lr}, q.TD{Lambda: 1})
	}},
	{"bpq advantage", func(lr float64) Estimator {
		return NewQAdvantage(q.Config{Kind: q.TabularKind, LR: lr}, q.TD{Lambda: 1})
	}},
	{"bpq local+value", func(lr float64) Estimator {
		b := NewQLocal(q.Config{Kind: q.TabularKind, LR: lr}, q.TD{Lambda: 1})
		b.ValueBaseline = true
		return b
	}},
}

// TestBackpropQChain20Variance measures, on a chain of 20 Bernoulli sites
// with one delayed nonlinear cost, the variance of the first site's
// gradient with trained critics (and a trained NVIL baseline network)
// against REINFORCE with a moving-average baseline, and checks that the
// unbiased estimators agree in mean. Each estimator first trains its own
// state for 200 steps with the model fixed. The ratios are logged
// (go test -run Chain20 -v ./infer/).
func TestBackpropQChain20Variance(t *testing.T) {
	reps := 400
	if testing.Short() {
		reps = 150
	}
	type result struct{ mean, variance float64 }
	results := map[string]result{}
	for _, e := range chain20Estimators {
		obj := vi.Program{Model: chain20}
		store := initObjectiveStore(t, obj)
		s := &SVI{Objective: obj, Estimators: Estimators{Default: e.make(0)},
			Optimizer: newEstimatorOnly(nil), Params: store, Particles: 8, Seed: 11}
		for range 200 {
			_, err := s.Step()
			require.NoError(t, err)
		}
		if e.name == "NVIL" {
			require.NotNil(t, store.Get("infer/nvil/z[1]/W1"), "NVIL's network is in the store")
		}
		m, v := firstSiteGradient(t, s, reps)
		results[e.name] = result{m, v}
	}
	ref := results["REINFORCE+MA"]
	t.Logf("first-site gradient, %d estimates of 8 particles:", reps)
	for _, e := range chain20Estimators {
		r := results[e.name]
		t.Logf("%-22s mean %8.4f var %10.4g  variance ratio REINFORCE+MA / this = %6.2f", e.name, r.mean, r.variance, ref.variance/r.variance)
	}
	for _, name := range []string{"Enumerate", "NVIL", "bpq control-variate"} {
		r := results[name]
		se := math.Sqrt((ref.variance + r.variance) / float64(reps))
		require.InDelta(t, ref.mean, r.mean, 4*se, "%s and REINFORCE+MA are both unbiased", name)
	}
}

// TestBackpropQChain20Convergence trains chain20's parameters by plain SGD
// (rate 0.01, 8 particles a step) with each estimator of
// chain20Estimators, from the same initialization and seeds, after 200
// steps that train the estimators' own state with the model fixed, and
// logs the exact expected cost (chain20Cost) along the way, averaged over
// the seeds (go test -run Chain20 -v ./infer/). The critics take a
// constant step, 0.05 or 0.3 (rows marked "(0.3)"), so that they track the
// moving policy; running averages over the whole run would hold stale
// values. Every estimator must lower the cost. The Enumerate row and the
// rows at step 0.3 run only with -v (and not -short).
func TestBackpropQChain20Convergence(t *testing.T) {
	steps, seeds := 400, []uint64{1, 2, 3}
	if testing.Short() {
		steps, seeds = 100, []uint64{1}
	}
	checkpoints := []int{0, steps / 4, steps / 2, steps}
	obj := vi.Program{Model: chain20}
	initial := chain20Cost(initObjectiveStore(t, obj))
	t.Logf("expected cost after N steps of SGD, mean over seeds %v (initial %.4f):", seeds, initial)
	header := fmt.Sprintf("%-26s", "estimator")
	for _, c := range checkpoints {
		header += fmt.Sprintf(" %9s", "N="+strconv.Itoa(c))
	}
	t.Log(header + "   final per seed")
	type run struct {
		name     string
		make     func(lr float64) Estimator
		criticLR float64
	}
	var runs []run
	// The whole table only when it is read (-v) and not -short: Enumerate
	// is the slowest row, and the rows at critic step 0.3 double the
	// Backprop-Q ones.
	full := testing.Verbose() && !testing.Short()
	for _, e := range chain20Estimators {
		if e.name == "Enumerate" && !full {
			continue
		}
		runs = append(runs, run{e.name, e.make, 0.05})
	}
	for _, e := range chain20Estimators {
		if strings.HasPrefix(e.name, "bpq") && full {
			runs = append(runs, run{e.name + " (0.3)", e.make, 0.3})
		}
	}
	for _, e := range runs {
		sums := make([]float64, len(checkpoints))
		var finals []string
		for _, seed := range seeds {
			store := initObjectiveStore(t, obj)
			s := &SVI{Objective: obj, Estimators: Estimators{Default: e.make(e.criticLR)},
				Optimizer: newEstimatorOnly(nil), Params: store, Particles: 8, Seed: seed}
			for range 200 {
				_, err := s.Step()
				require.NoError(t, err)
			}
			s.Optimizer = newEstimatorOnly(&nn.SGD{LR: 0.01})
			done := 0
			for k, c := range checkpoints {
				for ; done < c; done++ {
					_, err := s.Step()
					require.NoError(t, err)
				}
				sums[k] += chain20Cost(store)
			}
			final := chain20Cost(store)
			finals = append(finals, fmt.Sprintf("%.4f", final))
			require.Less(t, final, initial, "%s, seed %d: the expected cost falls", e.name, seed)
		}
		row := fmt.Sprintf("%-26s", e.name)
		for _, v := range sums {
			row += fmt.Sprintf(" %9.4f", v/float64(len(seeds)))
		}
		t.Log(row + "   " + strings.Join(finals, " "))
	}
}

// ExampleQLocal trains a two-site Bernoulli chain with a delayed cost:
// tabular critics learn Q_a and Q_b by TD, and each site's term uses its
// critic as the local cost with the value baseline.
func ExampleQLocal() {
	model := func(ctx *ppl.Ctx) {
		theta := ppl.Param(ctx, "theta", 1, 2, nn.Zeros{})
		a := ppl.Sample(ctx, "a", dist.BernoulliLogits(ppl.Expand(ctx, ad.Slice(theta, 0, 1))))
		b := ppl.Sample(ctx, "b", dist.BernoulliLogits(ad.Add(ppl.Expand(ctx, ad.Slice(theta, 1, 2)), ad.Scale(a, 2))))
		// The cost is lowest at a = 1, b = 0.
		ppl.Cost(ctx, "f", ad.Square(ad.Sub(ad.Sub(b, a), ctx.Tape().Scalar(-1))))
	}
	est := NewQLocal(q.Config{Kind: q.TabularKind}, q.TD{Lambda: 0})
	est.ValueBaseline = true
	store := nn.NewStore()
	svi := &SVI{
		Objective:  vi.Program{Model: model},
		Estimators: Estimators{Default: est},
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
	theta := store.Get("theta").Value
	pa := 1 / (1 + math.Exp(-theta.At(0, 0)))
	pb := 1 / (1 + math.Exp(-theta.At(0, 1)-2))
	td, _ := est.TDError("a")
	fmt.Println("p(a = 1) > 0.9:", pa > 0.9)
	fmt.Println("p(b = 1 | a = 1) < 0.1:", pb < 0.1)
	fmt.Println("TD error of a below 0.1:", td < 0.1)
	// Output:
	// p(a = 1) > 0.9: true
	// p(b = 1 | a = 1) < 0.1: true
	// TD error of a below 0.1: true
}

// TestBackpropQChunks runs steps split into chunks processed by two
// workers: the critics are evaluated and trained once per chunk's trace,
// and the result does not depend on the number of workers.
func TestBackpropQChunks(t *testing.T) {
	run := func(workers int) []byte {
		obj := vi.Program{Model: chainModel}
		store := initObjectiveStore(t, obj)
		est := NewQControlVariate(q.Config{Kind: q.TabularKind, LR: 0.1}, q.TD{})
		s := &SVI{
			Objective: obj, Estimators: Estimators{Default: est},
			Optimizer: nn.NewAdam(0.05), Params: store, Particles: 16, Chunks: 4, Workers: workers, Seed: 5,
		}
		for i := 0; i < 30; i++ {
			_, err := s.Step()
			require.NoError(t, err)
		}
		_, ok := est.TDError("z3")
		require.True(t, ok)
		state, err := est.MarshalState()
		require.NoError(t, err)
		return state
	}
	require.True(t, bytes.Equal(run(1), run(2)), "the critics depend on the number of workers")
}

// TestBackpropQWithPathwise trains a model with a reparameterized Normal
// site (Pathwise) feeding a Bernoulli site (BackpropQ, MLP critics of the
// continuous scope) in one step, and checks both parameters move toward
// the optimum.
func TestBackpropQWithPathwise(t *testing.T) {
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		mu := ppl.Param(ctx, "mu", 1, 1, nn.Zeros{})
		theta := ppl.Param(ctx, "theta", 1, 1, nn.Zeros{})
		z := ppl.Sample(ctx, "z", dist.Normal{Loc: ppl.Expand(ctx, mu), Scale: tp.Scalar(0.5)})
		b := ppl.Sample(ctx, "b", dist.BernoulliLogits(ad.Add(ppl.Expand(ctx, theta), z)))
		ppl.Cost(ctx, "fz", ad.Square(ad.Sub(z, tp.Scalar(1))))
		ppl.Cost(ctx, "fb", ad.Scale(ad.Square(ad.Sub(b, tp.Scalar(0.1))), 3))
	}
	cases := []struct {
		name string
		make func() qEstimator
	}{
		{"local", func() qEstimator {
			b := NewQLocal(q.Config{Kind: q.Auto, Seed: 1}, q.TD{})
			b.ValueBaseline = true
			return b
		}},
		{"control-variate", func() qEstimator { return NewQControlVariate(q.Config{Kind: q.Auto, Seed: 1}, q.TD{}) }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			est := c.make()
			store := nn.NewStore()
			s := &SVI{
				Objective:  vi.Program{Model: model},
				Estimators: Estimators{Default: est, Sites: map[string]Estimator{"z": Pathwise{}}},
				Optimizer:  nn.NewAdam(0.05), Params: store, Particles: 16, Seed: 9,
			}
			for i := 0; i < 200; i++ {
				_, err := s.Step()
				require.NoError(t, err)
			}
			// The optimum has mu near 1 (pulled down a little by fb) and
			// p(b = 1) small, theta + z far below 0.
			mu := store.Get("mu").Value.At(0, 0)
			theta := store.Get("theta").Value.At(0, 0)
			require.Greater(t, mu, 0.5)
			require.Less(t, theta+mu, -1.5)
			_, ok := est.Stats("b")
			require.True(t, ok)
		})
	}
}
