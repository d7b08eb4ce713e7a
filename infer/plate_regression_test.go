package infer

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/vi"
)

// The Bayesian linear regression y = w x + b + ε, ε ~ N(0, regNoise²),
// with priors w, b ~ N(0, regPrior²), on regN points.
const (
	regN     = 200
	regNoise = 0.5
	regPrior = 2.0
)

// regData returns the regression's data, drawn once from a fixed seed
// with w = 1.5 and b = -0.7.
func regData() (xs, ys []float64) {
	rng := rand.New(rand.NewPCG(11, 12))
	xs, ys = make([]float64, regN), make([]float64, regN)
	for i := range xs {
		xs[i] = 4*rng.Float64() - 2
		ys[i] = 1.5*xs[i] - 0.7 + regNoise*rng.NormFloat64()
	}
	return xs, ys
}

// regOptimum returns the means and standard deviations of w and b under
// the optimal mean-field Normal guide: its means are the exact posterior
// means, its variances the inverses of the diagonal of the posterior
// precision.
func regOptimum(xs, ys []float64) (mean, sd [2]float64) {
	var sx, sxx, sy, sxy float64
	for i, x := range xs {
		sx += x
		sxx += x * x
		sy += ys[i]
		sxy += x * ys[i]
	}
	v := regNoise * regNoise
	prec := mat.NewDense(2, 2, []float64{sxx/v + 1/(regPrior*regPrior), sx / v, sx / v, float64(len(xs))/v + 1/(regPrior*regPrior)})
	var m mat.VecDense
	if err := m.SolveVec(prec, mat.NewVecDense(2, []float64{sxy / v, sy / v})); err != nil {
		panic(err)
	}
	for j := range 2 {
		mean[j] = m.AtVec(j)
		sd[j] = 1 / math.Sqrt(prec.At(j, j))
	}
	return mean, sd
}

// regPlateModel has the data in a plate "data", subsampled to sub points
// (all when 0).
func regPlateModel(xs, ys []float64, sub int) ppl.Model {
	return func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		w, b := regPriors(ctx)
		var opts []ppl.PlateOption
		if sub > 0 {
			opts = append(opts, ppl.Subsample(sub))
		}
		data := ppl.Plate(ctx, "data", len(xs), opts...)
		x := ppl.Data(data, tp.FromData(len(xs), 1, xs))
		loc := ad.Add(ad.Mul(ppl.Broadcast(data, w), x), ppl.Broadcast(data, b))
		ppl.Observe(data, "y", dist.Normal{Loc: loc, Scale: tp.Full(data.Rows(), 1, regNoise)}, ppl.Data(data, tp.FromData(len(ys), 1, ys)))
	}
}

// regColumnModel has the data in the columns of one row per particle.
func regColumnModel(xs, ys []float64) ppl.Model {
	return func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		w, b := regPriors(ctx)
		x := tp.FromData(1, len(xs), xs)
		loc := ad.Add(ad.Mul(w, x), b)
		y := ppl.Expand(ctx, tp.FromData(1, len(ys), ys))
		ppl.Observe(ctx, "y", dist.Normal{Loc: loc, Scale: tp.Full(ctx.Batch(), len(xs), regNoise)}, y)
	}
}

func regPriors(ctx *ppl.Ctx) (w, b *ad.Tensor) {
	tp := ctx.Tape()
	p := ctx.Batch()
	prior := dist.Normal{Loc: tp.Zeros(p, 1), Scale: tp.Full(p, 1, regPrior)}
	return ppl.Sample(ctx, "w", prior), ppl.Sample(ctx, "b", prior)
}

// regGuide is the mean-field Normal guide of w and b.
func regGuide(ctx *ppl.Ctx) {
	for _, name := range []string{"w", "b"} {
		loc := ppl.Param(ctx, name+"/loc", 1, 1, nn.Zeros{})
		logScale := ppl.Param(ctx, name+"/logscale", 1, 1, nn.Constant(-1))
		ppl.Sample(ctx, name, dist.Normal{Loc: ppl.Expand(ctx, loc), Scale: ppl.Expand(ctx, ad.Exp(logScale))})
	}
}

// trainRegression trains the guide against model with the pathwise
// gradient, then averages its parameters over the last steps at a small
// learning rate (Polyak averaging, which removes most of the noise of the
// final iterates), and returns the guide's means and standard deviations.
func trainRegression(t *testing.T, model ppl.Model, steps int) (mean, sd [2]float64) {
	t.Helper()
	opt := nn.NewAdam(0.05)
	s := &SVI{
		Objective:  vi.ELBO{Model: model, Guide: regGuide},
		Estimators: Estimators{Default: Pathwise{}},
		Optimizer:  opt,
		Params:     nn.NewStore(),
		Particles:  4,
		Seed:       3,
	}
	var sum [4]float64
	averaged := steps / 3
	for i := 0; i < steps; i++ {
		if i == steps/3 {
			opt.LR = 0.005
		}
		_, err := s.Step()
		require.NoError(t, err)
		if i >= steps-averaged {
			for k, name := range []string{"w/loc", "b/loc", "w/logscale", "b/logscale"} {
				sum[k] += s.Params.Get(name).Value.At(0, 0)
			}
		}
	}
	for j := range 2 {
		mean[j] = sum[j] / float64(averaged)
		sd[j] = math.Exp(sum[2+j] / float64(averaged))
	}
	return mean, sd
}

func TestBayesianRegressionInAPlate(t *testing.T) {
	xs, ys := regData()
	wantMean, wantSD := regOptimum(xs, ys)
	steps := 3000
	full, fullSD := trainRegression(t, regPlateModel(xs, ys, 0), steps)
	cols, colsSD := trainRegression(t, regColumnModel(xs, ys), steps)
	mini, miniSD := trainRegression(t, regPlateModel(xs, ys, 50), steps)
	t.Logf("optimum: w %.4f ± %.4f, b %.4f ± %.4f", wantMean[0], wantSD[0], wantMean[1], wantSD[1])
	for _, r := range []struct {
		name     string
		mean, sd [2]float64
	}{{"plate", full, fullSD}, {"columns", cols, colsSD}, {"minibatch 50", mini, miniSD}} {
		t.Logf("%-12s: w %.4f ± %.4f, b %.4f ± %.4f", r.name, r.mean[0], r.sd[0], r.mean[1], r.sd[1])
		for j, name := range []string{"w", "b"} {
			assert.InEpsilon(t, wantMean[j], r.mean[j], 0.05, "%s: mean of %s", r.name, name)
			assert.InEpsilon(t, wantSD[j], r.sd[j], 0.05, "%s: sd of %s", r.name, name)
		}
	}
	// The same draws and the same loss, summed in another order.
	for j := range 2 {
		assert.InDelta(t, full[j], cols[j], 1e-6)
		assert.InDelta(t, fullSD[j], colsSD[j], 1e-6)
	}
}

// TestPlateMisuseFailsTheStep checks that each misuse of plates is an
// error naming the site or the plate, and that the failed step changes no
// parameter, no optimizer state and no step count.
func TestPlateMisuseFailsTheStep(t *testing.T) {
	xs, ys := regData()
	unbroadcast := func(ctx *ppl.Ctx) {
		tp := ctx.Tape()
		w, b := regPriors(ctx)
		data := ppl.Plate(ctx, "data", len(xs))
		loc := ad.Add(ad.Mul(w, tp.Full(ctx.Batch(), 1, 1)), b) // a global value used inside
		ppl.Observe(data, "y", dist.Normal{Loc: loc, Scale: tp.Full(ctx.Batch(), 1, regNoise)}, ppl.Data(data, tp.FromData(len(ys), 1, ys)))
	}
	guideInPlate := func(size int) ppl.Model {
		return func(ctx *ppl.Ctx) {
			regGuide(ctx)
			ppl.Plate(ctx, "data", size)
		}
	}
	local := func(outer, inner string) ppl.Model {
		return func(ctx *ppl.Ctx) {
			tp := ctx.Tape()
			regPriors(ctx)
			a := ppl.Plate(ctx, outer, 2)
			b := ppl.Plate(a, inner, 2)
			ppl.Sample(b, "z", dist.Normal{Loc: tp.Zeros(b.Rows(), 1), Scale: tp.Full(b.Rows(), 1, 1)})
		}
	}
	localGuide := func(outer, inner string) ppl.Model {
		return func(ctx *ppl.Ctx) {
			regGuide(ctx)
			tp := ctx.Tape()
			a := ppl.Plate(ctx, outer, 2)
			b := ppl.Plate(a, inner, 2)
			ppl.Sample(b, "z", dist.Normal{Loc: tp.Zeros(b.Rows(), 1), Scale: tp.Full(b.Rows(), 1, 1)})
		}
	}
	cases := []struct {
		name string
		obj  vi.ELBO
		want []string
	}{
		{"global value inside a plate", vi.ELBO{Model: unbroadcast, Guide: regGuide}, []string{`site "y"`, "plates []", "plates [data[200]]", "ppl.Broadcast"}},
		{"subsample larger than the plate", vi.ELBO{Model: regPlateModel(xs, ys, 300), Guide: regGuide}, []string{`site "data"`, "subsample of 300 is larger than the plate's size 200"}},
		{"plate reused at another size", vi.ELBO{Model: regPlateModel(xs, ys, 0), Guide: guideInPlate(100)}, []string{`site "data"`, "size 200", "size 100"}},
		{"plates nested in other orders", vi.ELBO{Model: local("rows", "cols"), Guide: localGuide("cols", "rows")}, []string{`site "z"`, "[cols[2] rows[2]]", "[rows[2] cols[2]]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opt := nn.NewAdam(0.05)
			s := &SVI{Objective: vi.ELBO{Model: regPlateModel(xs, ys, 0), Guide: regGuide}, Estimators: Estimators{Default: Pathwise{}},
				Optimizer: opt, Params: nn.NewStore(), Particles: 4, Seed: 3}
			_, err := s.Step()
			require.NoError(t, err)
			snapshot := func() []float64 {
				var v []float64
				for _, p := range s.Params.Params() {
					v = append(v, p.Value.RawMatrix().Data...)
					st := opt.State()[p.Name]
					v = append(v, float64(st.Step))
					for _, b := range st.Buffers {
						v = append(v, b.RawMatrix().Data...)
					}
				}
				return v
			}
			before := snapshot()
			s.Objective = tc.obj
			_, err = s.Step()
			require.Error(t, err)
			for _, w := range tc.want {
				assert.ErrorContains(t, err, w)
			}
			assert.Equal(t, before, snapshot())
			assert.EqualValues(t, 1, s.StepCount())
		})
	}
}
