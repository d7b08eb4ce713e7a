package infer

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/vi"
)

// TestRLOOCenter checks the leave-one-out baseline on known signals: rows
// are grouped batch-major, K consecutive rows per data point.
func TestRLOOCenter(t *testing.T) {
	tp := ad.NewTape()
	for _, c := range []struct {
		k        int
		in, want []float64
	}{
		{2, []float64{1, 3, 10, 20}, []float64{-2, 2, -10, 10}},
		{4, []float64{1, 2, 3, 10}, []float64{1 - 15.0/3, 2 - 14.0/3, 3 - 13.0/3, 10 - 2}},
		{3, []float64{5, 5, 5, -1, 2, 5}, []float64{0, 0, 0, -1 - 3.5, 0, 5 - 0.5}},
	} {
		sc := &SiteContext{}
		got, loss, commit, err := RLOO{K: c.k}.Center(sc, tp.FromData(len(c.in), 1, c.in))
		require.NoError(t, err)
		assert.Nil(t, loss)
		assert.Nil(t, commit)
		assert.InDeltaSlice(t, c.want, got.Data(), 1e-12, "K=%d", c.k)
	}
	// Inside a plate of 3 members, 4 particles: row p*3 + m is member m of
	// particle p, and with K = 2 member m's samples are its rows in
	// particles 0 and 1, then in 2 and 3.
	in := []float64{0, 1, 2, 10, 11, 12, 100, 101, 102, 1000, 1001, 1002}
	want := []float64{-10, -10, -10, 10, 10, 10, -900, -900, -900, 900, 900, 900}
	sc := &SiteContext{Site: &ppl.Site{Plates: ppl.Stack{&ppl.Frame{Name: "data", Size: 3}}}}
	got, _, _, err := RLOO{K: 2}.Center(sc, tp.FromData(len(in), 1, in))
	require.NoError(t, err)
	assert.InDeltaSlice(t, want, got.Data(), 1e-12)
	_, _, _, err = RLOO{K: 3}.Center(sc, tp.FromData(len(in), 1, in))
	assert.ErrorContains(t, err, "3 per particle inside plates")
}

// plateModel draws a global Bernoulli g and, in a plate of two members
// with data x = (1, -1), a local Bernoulli z given g and x; each member's
// cost depends on its z, g and x, and a cost outside the plate on g.
func plateModel(ctx *ppl.Ctx) {
	tp := ctx.Tape()
	theta := ppl.Param(ctx, "theta", 1, 1, values(0.3))
	w := ppl.Param(ctx, "w", 1, 2, values(0.8, -0.6))
	g := ppl.Sample(ctx, "g", dist.BernoulliLogits(ppl.Expand(ctx, theta)))
	ppl.Cost(ctx, "fg", ad.Scale(g, 0.7))
	data := ppl.Plate(ctx, "data", 2)
	x := ppl.Data(data, tp.FromData(2, 1, []float64{1, -1}))
	gi := ppl.Broadcast(data, g)
	logits := ad.Add(ad.Mul(x, ad.Slice(w, 0, 1)), ad.Mul(gi, ad.Slice(w, 1, 2)))
	z := ppl.Sample(data, "z", dist.BernoulliLogits(logits))
	ppl.Cost(data, "fz", ad.Square(ad.Sub(ad.Add(z, gi), ad.Scale(x, 0.5))))
}

// TestRLOOUnbiasedInPlates checks RLOO on a model with a global latent and
// a local one in a plate, whose samples are grouped by member across
// particles, against the exact gradient by enumeration.
func TestRLOOUnbiasedInPlates(t *testing.T) {
	obj := vi.Program{Model: plateModel}
	support := []siteSupport{{"g", bitRows(1)}, {"z", bitRows(2)}}
	// g has a row per particle, z one per member of the plate.
	rows := map[string]int{"g": 1, "z": 2}
	for _, k := range []int{2, 4} {
		t.Run(fmt.Sprintf("K=%d", k), func(t *testing.T) {
			store := initObjectiveStore(t, obj)
			exact := exactSiteRowsGradient(t, obj, store, support, func(addr string) int { return rows[addr] }, 1)
			s := &SVI{Objective: obj, Estimators: Estimators{Default: RLOO{K: k}},
				Optimizer: nn.NewAdam(0.01), Params: store, Particles: 20, Seed: 5}
			mean, se := estimateGradient(t, s, repetitions())
			requireAgree(t, exact, mean, se)
		})
	}
}

// bitRows returns every row of n bits.
func bitRows(n int) [][]float64 {
	out := make([][]float64, 1<<n)
	for c := range out {
		out[c] = make([]float64, n)
		for i := range out[c] {
			out[c][i] = float64(c >> i & 1)
		}
	}
	return out
}

var sbn43Support = []siteSupport{{"h1", bitRows(4)}, {"h2", bitRows(3)}}

// TestRLOOUnbiased checks RLOO, alone and as the baseline of
// ScoreFunction, against the exact gradient by enumeration on a two-layer
// SBN (4 and 3 latent units) and on a model with categorical, Bernoulli
// and one-hot sites.
func TestRLOOUnbiased(t *testing.T) {
	models := []struct {
		name    string
		obj     vi.Objective
		support []siteSupport
	}{
		{"sbn-4-3", sbnSizedELBO(4, 3), sbn43Support},
		{"categorical", vi.Program{Model: categoricalModel}, categoricalSupport},
	}
	for _, m := range models {
		for _, c := range []struct {
			name string
			est  Estimator
		}{
			{"RLOO K=2", RLOO{K: 2}},
			{"RLOO K=4", RLOO{K: 4}},
			{"ScoreFunction+RLOO K=5", ScoreFunction{Baseline: RLOO{K: 5}}},
		} {
			t.Run(m.name+"/"+c.name, func(t *testing.T) {
				store := initObjectiveStore(t, m.obj)
				exact := exactObjectiveGradient(t, m.obj, store, m.support)
				s := &SVI{Objective: m.obj, Estimators: Estimators{Default: c.est},
					Optimizer: nn.NewAdam(0.01), Params: store, Particles: 20, Seed: 5}
				mean, se := estimateGradient(t, s, repetitions())
				requireAgree(t, exact, mean, se)
			})
		}
	}
}

// TestRLOOReducesVariance checks that the leave-one-out baseline removes
// a large constant from the learning signal: on a model whose cost is
// offset by 50, the variance of RLOO's estimate is a small fraction of
// REINFORCE's without baseline (which grows with the offset squared).
func TestRLOOReducesVariance(t *testing.T) {
	model := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		logits := ppl.Param(ctx, "logits", 1, 4, values(0.2, -0.5, 0.9, 0.1))
		z := ppl.Sample(ctx, "z", dist.Categorical{Logits: ppl.Expand(ctx, logits)})
		ppl.Cost(ctx, "f", ad.Add(ad.Square(ad.Sub(z, tp.Scalar(1.3))), tp.Scalar(50)))
	}
	variance := func(est Estimator) float64 {
		s := &SVI{Objective: vi.Program{Model: model}, Estimators: Estimators{Default: est},
			Optimizer: nn.NewAdam(0.01), Params: initStore(t, model), Particles: 20, Seed: 23}
		_, se := estimateGradient(t, s, 200)
		total := 0.0
		for _, v := range se {
			total += v * v
		}
		return total
	}
	plain, rloo := variance(ScoreFunction{}), variance(RLOO{K: 2})
	assert.Less(t, rloo, plain/20, "RLOO %g, REINFORCE %g", rloo, plain)
}

// sumOutModel draws z in a plate of two members and costs the sum of its
// members outside the plate, which ties the members' rows together.
func sumOutModel(ctx *ppl.Ctx) {
	theta := ppl.Param(ctx, "theta", 1, 1, values(0.3))
	data := ppl.Plate(ctx, "data", 2)
	z := ppl.Sample(data, "z", dist.BernoulliLogits(ppl.Expand(data, theta)))
	ppl.Cost(ctx, "f", ad.Square(ppl.SumOut(data, z)))
}

// TestRLOOErrors checks that bad configurations are errors naming the
// site: K below 2, rows that are not a multiple of K, an objective that
// ties its rows (an importance-weighted bound, a site in a plate whose cost
// sums the members), and the same through a ScoreFunction baseline.
func TestRLOOErrors(t *testing.T) {
	obj := vi.Program{Model: categoricalModel}
	for _, c := range []struct {
		est       Estimator
		obj       vi.Objective
		particles int
		want      string
	}{
		{RLOO{}, obj, 4, "need K >= 2 samples per data point"},
		{RLOO{K: 1}, obj, 4, "need K >= 2 samples per data point"},
		{RLOO{K: 2}, obj, 5, "5 rows, not a multiple of K = 2"},
		{RLOO{K: 3}, obj, 4, "4 rows, not a multiple of K = 3"},
		{ScoreFunction{Baseline: RLOO{K: 3}}, obj, 4, "RLOO: the site has 4 rows"},
		{RLOO{K: 2}, iwaeObjective(3), 2, "ties its rows together"},
		{RLOO{K: 2}, vi.Program{Model: sumOutModel}, 2, "ties its rows together"},
	} {
		t.Run(fmt.Sprintf("%T/%s", c.est, c.want), func(t *testing.T) {
			store := nn.NewStore()
			s := &SVI{Objective: c.obj, Estimators: Estimators{Default: c.est},
				Optimizer: nn.NewAdam(0.01), Params: store, Particles: c.particles, Seed: 1}
			_, err := s.Step()
			require.Error(t, err)
			assert.ErrorContains(t, err, c.want)
			site := `site "z"`
			assert.ErrorContains(t, err, site)
			assert.EqualValues(t, 0, s.StepCount(), "a failed step takes no step")
		})
	}
}
