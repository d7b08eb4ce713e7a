package infer

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/trace"
	"github.com/backpropq/backpropq/vi"
)

// rxModel is an enumerable test model: its sample sites, in order, with
// their supports (one [1 x D] row per value), and the parameters whose
// gradients are compared.
type rxModel struct {
	name    string
	model   ppl.Model
	sites   []string
	support [][][]float64
	params  map[string][]float64 // name -> initial row
}

// store returns a new store holding the model's parameters.
func (m rxModel) store(t *testing.T) *nn.Store {
	st := nn.NewStore()
	for name, v := range m.params {
		init := nn.InitFunc(func(d *mat.Dense, _ *rand.Rand) {
			copy(d.RawMatrix().Data, v)
		})
		_, err := st.Param(name, 1, len(v), init, nil)
		require.NoError(t, err)
	}
	return st
}

// paramNames returns the compared parameters in a fixed order.
func (m rxModel) paramNames() []string {
	names := make([]string, 0, len(m.params))
	for _, n := range []string{"a", "w", "logits", "theta"} {
		if _, ok := m.params[n]; ok {
			names = append(names, n)
		}
	}
	return names
}

// rxFlatGrads returns the gradients of the named parameters, concatenated.
func rxFlatGrads(st *nn.Store, names []string) []float64 {
	var out []float64
	for _, n := range names {
		p := st.Get(n)
		if p.Grad == nil {
			out = append(out, make([]float64, p.Value.RawMatrix().Cols)...)
			continue
		}
		out = append(out, p.Grad.RawMatrix().Data...)
	}
	return out
}

// expectation returns E[Σ costs] under the parameters of st, computed on
// a new tape by enumerating every configuration of the model's sample
// sites as the rows of one run.
func (m rxModel) expectation(t *testing.T, st *nn.Store) (*ad.Tape, *ad.Tensor) {
	configs := [][]int{{}}
	for _, sup := range m.support {
		var next [][]int
		for _, c := range configs {
			for k := range sup {
				next = append(next, append(append([]int(nil), c...), k))
			}
		}
		configs = next
	}
	n := len(configs)
	tp := ad.NewTape()
	values := map[string]*ad.Tensor{}
	for i, addr := range m.sites {
		d := len(m.support[i][0])
		data := make([]float64, 0, n*d)
		for _, c := range configs {
			data = append(data, m.support[i][c[i]]...)
		}
		values[addr] = tp.FromData(n, d, data)
	}
	tr, err := trace.Run(m.model, ppl.Config{Tape: tp, Params: st, Batch: n}, trace.ReplayValues(values))
	require.NoError(t, err)
	var cost *ad.Tensor
	for _, s := range tr.Sites() {
		if s.Kind == ppl.KindCost {
			if cost == nil {
				cost = s.ScaledCost()
			} else {
				cost = ad.Add(cost, s.ScaledCost())
			}
		}
	}
	return tp, ad.Sum(ad.Mul(ad.Exp(tr.LogProbSum()), cost))
}

// exactGrad returns ∇ E[Σ costs] at the model's initial parameters.
func (m rxModel) exactGrad(t *testing.T) []float64 {
	st := m.store(t)
	tp, expect := m.expectation(t, st)
	st.ZeroGrad()
	tp.Backward(expect)
	return rxFlatGrads(st, m.paramNames())
}

// expectedCost returns E[Σ costs] at the model's initial parameters.
func (m rxModel) expectedCost(t *testing.T) float64 {
	_, expect := m.expectation(t, m.store(t))
	return expect.Item()
}

// estimate returns the mean and standard error over reps runs of batch
// rows each of the per-row gradient that est gives.
func (m rxModel) estimate(t *testing.T, est Estimators, reps, batch int, rng *rand.Rand) (mean, se []float64) {
	st := m.store(t)
	tp := ad.NewTape()
	names := m.paramNames()
	var sum, sum2 []float64
	for r := 0; r < reps; r++ {
		tp.Reset()
		st.ZeroGrad()
		sur, err := BuildSurrogate(vi.Program{Model: m.model}, est, ppl.Config{Tape: tp, Rand: rng, Params: st, Batch: batch})
		require.NoError(t, err)
		tp.Backward(sur.Loss)
		g := rxFlatGrads(st, names)
		if sum == nil {
			sum, sum2 = make([]float64, len(g)), make([]float64, len(g))
		}
		for i, v := range g {
			v /= float64(batch)
			sum[i] += v
			sum2[i] += v * v
		}
	}
	mean, se = make([]float64, len(sum)), make([]float64, len(sum))
	n := float64(reps)
	for i := range sum {
		mean[i] = sum[i] / n
		variance := (sum2[i]/n - mean[i]*mean[i]) * n / (n - 1)
		se[i] = math.Sqrt(max(variance, 0) / n)
	}
	return mean, se
}

var rxBern = [][]float64{{0}, {1}}

// rxChain is the 3-node Bernoulli chain b1 -> b2 -> b3 with a nonlinear
// cost on all three and a second cost on b2 alone.
func rxChain() rxModel {
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		a := ppl.Param(ctx, "a", 1, 3, nn.Zeros{})
		w := ppl.Param(ctx, "w", 1, 2, nn.Zeros{})
		b1 := ppl.Sample(ctx, "b1", dist.BernoulliLogits(ppl.Expand(ctx, ad.Slice(a, 0, 1))))
		b2 := ppl.Sample(ctx, "b2", dist.BernoulliLogits(ad.Add(ad.Slice(a, 1, 2), ad.Mul(b1, ad.Slice(w, 0, 1)))))
		b3 := ppl.Sample(ctx, "b3", dist.BernoulliLogits(ad.Add(ad.Slice(a, 2, 3), ad.Mul(b2, ad.Slice(w, 1, 2)))))
		lin := ad.Sub(ad.Add(b1, ad.Scale(b2, 2)), ad.Add(ad.Scale(b3, 1.5), tp.Scalar(0.7)))
		ppl.Cost(ctx, "c", ad.Add(ad.Square(lin), ad.Scale(ad.Mul(b1, b3), 0.5)))
		ppl.Cost(ctx, "c2", ad.Scale(ad.Exp(b2), 0.8))
	}
	return rxModel{
		name:    "chain",
		model:   model,
		sites:   []string{"b1", "b2", "b3"},
		support: [][][]float64{rxBern, rxBern, rxBern},
		params:  map[string][]float64{"a": {0.3, -0.4, 0.2}, "w": {1.2, -0.9}},
	}
}

// rxOneHot is a OneHotCategorical site with 4 classes and a nonlinear
// cost.
func rxOneHot() rxModel {
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		l := ppl.Param(ctx, "logits", 1, 4, nn.Zeros{})
		v := ppl.Sample(ctx, "v", dist.OneHotCategorical{Logits: ppl.Expand(ctx, l)})
		score := ad.RowSum(ad.Mul(v, tp.FromData(1, 4, []float64{1, -2, 3, 0.5})))
		ppl.Cost(ctx, "c", ad.Add(ad.Square(ad.Sub(score, tp.Scalar(0.4))), ad.Exp(ad.Scale(score, 0.3))))
	}
	return rxModel{
		name:    "onehot4",
		model:   model,
		sites:   []string{"v"},
		support: [][][]float64{{{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}},
		params:  map[string][]float64{"logits": {0.2, -0.5, 0.1, 0.4}},
	}
}

// rxIndex is a Categorical (index-valued) site with 4 classes.
func rxIndex() rxModel {
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		l := ppl.Param(ctx, "logits", 1, 4, nn.Zeros{})
		v := ppl.Sample(ctx, "v", dist.Categorical{Logits: ppl.Expand(ctx, l)})
		table := ad.Add(tp.Zeros(ctx.Batch(), 4), tp.FromData(1, 4, []float64{2.5, -1, 0.3, 4}))
		ppl.Cost(ctx, "c", ad.Square(ad.Gather(table, v)))
	}
	return rxModel{
		name:    "index4",
		model:   model,
		sites:   []string{"v"},
		support: [][][]float64{{{0}, {1}, {2}, {3}}},
		params:  map[string][]float64{"logits": {0.2, -0.5, 0.1, 0.4}},
	}
}

// TestUnbiasedRelaxEstimators holds MuProp, REBAR and RELAX to the exact
// gradient, by enumeration, within 4 standard errors.
func TestUnbiasedRelaxEstimators(t *testing.T) {
	cases := []struct {
		name  string
		model rxModel
		est   Estimator
	}{
		{"MuProp", rxChain(), MuProp{}},
		{"REBAR", rxChain(), REBAR{}},
		{"REBAR fixed", rxChain(), REBAR{Fixed: true, Temperature: 2, Eta: 0.6}},
		{"RELAX", rxChain(), RELAX{}},
		{"RELAX concrete", rxChain(), RELAX{Concrete: true}},
		{"MuProp", rxOneHot(), MuProp{}},
		{"REBAR", rxOneHot(), REBAR{}},
		{"RELAX", rxOneHot(), RELAX{}},
		{"RELAX concrete", rxOneHot(), RELAX{Concrete: true, Temperature: 0.3}},
		{"RELAX", rxIndex(), RELAX{Hidden: 4}},
	}
	for i, c := range cases {
		t.Run(c.model.name+"/"+c.name, func(t *testing.T) {
			require.True(t, c.est.Unbiased())
			exact := c.model.exactGrad(t)
			rng := rand.New(rand.NewPCG(1, uint64(i)))
			mean, se := c.model.estimate(t, Estimators{Default: c.est}, 200, 50, rng)
			for k := range exact {
				t.Logf("param %d: exact %.5f estimate %.5f ± %.5f", k, exact[k], mean[k], se[k])
				require.InDelta(t, exact[k], mean[k], 4*se[k]+1e-12, "gradient element %d", k)
			}
		})
	}
}
