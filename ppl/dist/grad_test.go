package dist

import (
	"testing"

	"github.com/backpropq/backpropq/ad"
)

// Log-probabilities, entropies, means, KL divergences and every
// reparameterized sample are differentiated by Backward as central finite
// differences say, with one-row parameters broadcasting where the case
// says so. Samples draw their noise from a fresh source with a fixed seed
// on every evaluation, so they are deterministic functions of the
// parameters.
func TestGradientsByFiniteDifferences(t *testing.T) {
	rng := newRNG
	// 4x3 values used as Normal / relaxed inputs.
	normalX := []float64{0.1, -1, 2, 0.5, 0.5, 0.5, -2, 3, 0.2, 1, 1, -1}
	binX := []float64{0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1}
	unitX := []float64{0.1, 0.9, 0.5, 0.3, 0.25, 0.7, 0.01, 0.6, 0.45, 0.8, 0.2, 0.99}
	simplexX := []float64{0.2, 0.5, 0.3, 0.1, 0.1, 0.8, 0.6, 0.3, 0.1, 0.05, 0.05, 0.9}
	cases := []struct {
		name string
		vars []*ad.Var
		loss lossFunc
	}{
		{"Normal.LogProb", []*ad.Var{newVar(1, 3, 0.3, -1, 2), newVar(4, 3, 1, 2, 0.5, 1, 1, 1, 0.7, 3, 2, 1, 0.4, 1), newVar(4, 3, normalX...)},
			func(_ *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				return weighted(Normal{Loc: p[0], Scale: p[1]}.LogProb(p[2]))
			}},
		{"Normal.Entropy+Mean", []*ad.Var{newVar(4, 1, 1, 2, 3, 4), newVar(1, 2, 0.5, 2)},
			func(_ *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				d := Normal{Loc: p[0], Scale: p[1]}
				return ad.Add(weighted(d.Entropy()), weighted(d.Mean()))
			}},
		{"Normal.RSample", []*ad.Var{newVar(1, 3, 0.3, -1, 2), newVar(4, 1, 1, 2, 0.5, 3)},
			func(_ *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				return weighted(ad.Square(Normal{Loc: p[0], Scale: p[1]}.RSample(rng())))
			}},
		{"BernoulliLogits.LogProb+Entropy+Mean", []*ad.Var{newVar(1, 3, 0.3, -4, 2)},
			func(tp *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				d := BernoulliLogits(p[0])
				return ad.Add(ad.Add(weighted(d.LogProb(tp.FromData(4, 3, binX))), weighted(d.Entropy())), weighted(d.Mean()))
			}},
		{"BernoulliProbs.LogProb+Entropy+Mean", []*ad.Var{newVar(4, 3, 0.3, 0.1, 0.9, 0.5, 0.5, 0.5, 0.2, 0.7, 0.01, 0.99, 0.4, 0.6)},
			func(tp *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				d := BernoulliProbs(p[0])
				return ad.Add(ad.Add(weighted(d.LogProb(tp.FromData(4, 3, binX))), weighted(d.Entropy())), weighted(d.Mean()))
			}},
		{"Bernoulli.RelaxedSample", []*ad.Var{newVar(4, 3, 0.3, -4, 2, 0, 1, -1, 5, 0.5, -0.5, 2, 2, -3)},
			func(_ *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				z, _ := BernoulliLogits(p[0]).RelaxedSample(rng())
				return weighted(z)
			}},
		{"BernoulliLogits.ConditionalRelaxedSample", []*ad.Var{newVar(1, 3, 0.3, -4, 2)},
			func(tp *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				return weighted(BernoulliLogits(p[0]).ConditionalRelaxedSample(tp.FromData(4, 3, binX), rng()))
			}},
		{"BernoulliProbs.ConditionalRelaxedSample", []*ad.Var{newVar(1, 3, 0.3, 0.05, 0.8)},
			func(tp *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				return weighted(BernoulliProbs(p[0]).ConditionalRelaxedSample(tp.FromData(4, 3, binX), rng()))
			}},
		{"Categorical.LogProb+Entropy", []*ad.Var{newVar(1, 4, 0.3, -1, 2, 0)},
			func(tp *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				d := Categorical{Logits: p[0]}
				return ad.Add(weighted(d.LogProb(col(tp, 0, 3, 2, 2, 1))), weighted(d.Entropy()))
			}},
		{"Categorical.LogProb.Batch", []*ad.Var{newVar(3, 4, 0.3, -1, 2, 0, 1, 1, 1, 1, -2, 0, 5, 0.5)},
			func(tp *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				return weighted(Categorical{Logits: p[0]}.LogProb(col(tp, 1, 3, 2)))
			}},
		{"Categorical.RelaxedSample", []*ad.Var{newVar(3, 4, 0.3, -1, 2, 0, 1, 1, 1, 1, -2, 0, 5, 0.5)},
			func(_ *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				z, _ := Categorical{Logits: p[0]}.RelaxedSample(rng())
				return weighted(z)
			}},
		{"Categorical.ConditionalRelaxedSample", []*ad.Var{newVar(1, 4, 0.3, -1, 2, 0)},
			func(tp *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				return weighted(Categorical{Logits: p[0]}.ConditionalRelaxedSample(col(tp, 0, 1, 2, 3, 1, 0), rng()))
			}},
		{"OneHotCategorical.LogProb+Entropy+Mean", []*ad.Var{newVar(2, 3, 0.3, -1, 2, 0, 4, -1)},
			func(tp *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				d := OneHotCategorical{Logits: p[0]}
				lp := d.LogProb(tp.FromData(2, 3, []float64{0, 0, 1, 1, 0, 0}))
				return ad.Add(ad.Add(weighted(lp), weighted(d.Entropy())), weighted(d.Mean()))
			}},
		{"OneHotCategorical.ConditionalRelaxedSample", []*ad.Var{newVar(2, 3, 0.3, -1, 2, 0, 4, -1)},
			func(tp *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				b := tp.FromData(2, 3, []float64{0, 1, 0, 1, 0, 0})
				return weighted(OneHotCategorical{Logits: p[0]}.ConditionalRelaxedSample(b, rng()))
			}},
		{"RelaxedBernoulli.LogProb", []*ad.Var{newVar(1, 3, 0.3, -1, 2), newVar(4, 1, 0.5, 1, 2, 0.3), newVar(4, 3, unitX...)},
			func(_ *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				return weighted(RelaxedBernoulli{Logits: p[0], Temperature: p[1]}.LogProb(p[2]))
			}},
		{"RelaxedBernoulli.RSample", []*ad.Var{newVar(4, 3, 0.3, -1, 2, 0, 1, 1, -1, 0.5, 0.2, 1, -2, 0), newVar(1, 1, 0.8)},
			func(_ *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				return weighted(RelaxedBernoulli{Logits: p[0], Temperature: p[1]}.RSample(rng()))
			}},
		{"RelaxedOneHotCategorical.LogProb", []*ad.Var{newVar(1, 3, 0.3, -1, 2), newVar(4, 1, 0.5, 1, 2, 0.3), newVar(4, 3, simplexX...)},
			func(_ *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				return weighted(RelaxedOneHotCategorical{Logits: p[0], Temperature: p[1]}.LogProb(p[2]))
			}},
		{"RelaxedOneHotCategorical.RSample", []*ad.Var{newVar(4, 3, 0.3, -1, 2, 0, 1, 1, -1, 0.5, 0.2, 1, -2, 0), newVar(1, 1, 0.8)},
			func(_ *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				return weighted(RelaxedOneHotCategorical{Logits: p[0], Temperature: p[1]}.RSample(rng()))
			}},
		{"Uniform.LogProb+Entropy+Mean", []*ad.Var{newVar(1, 2, -1, 0), newVar(3, 2, 1, 2, 3, 4, 0.5, 0.1)},
			func(tp *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				d := Uniform{Low: p[0], High: p[1]}
				lp := d.LogProb(tp.FromData(3, 2, []float64{0, 0.05, 2, 3, -0.5, 0.01}))
				return ad.Add(ad.Add(weighted(lp), weighted(d.Entropy())), weighted(d.Mean()))
			}},
		{"Uniform.RSample", []*ad.Var{newVar(1, 2, -1, 0), newVar(3, 2, 1, 2, 3, 4, 0.5, 0.1)},
			func(_ *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				return weighted(Uniform{Low: p[0], High: p[1]}.RSample(rng()))
			}},
		{"KL.Normal", []*ad.Var{newVar(1, 2, 0.3, -1), newVar(3, 2, 1, 2, 0.5, 1, 3, 0.2), newVar(3, 2, 0, 1, 2, 3, -1, 0), newVar(1, 1, 1.5)},
			func(_ *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				return weighted(mustKL(Normal{Loc: p[0], Scale: p[1]}, Normal{Loc: p[2], Scale: p[3]}))
			}},
		{"KL.BernoulliLogits", []*ad.Var{newVar(2, 2, 0.3, -1, 2, 0), newVar(1, 2, 1, -3)},
			func(_ *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				return weighted(mustKL(BernoulliLogits(p[0]), BernoulliLogits(p[1])))
			}},
		{"KL.BernoulliProbsLogits", []*ad.Var{newVar(2, 2, 0.3, 0.1, 0.5, 0.9), newVar(1, 2, 1, -3)},
			func(_ *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				return weighted(mustKL(BernoulliProbs(p[0]), BernoulliLogits(p[1])))
			}},
		{"KL.Categorical", []*ad.Var{newVar(2, 3, 0.3, -1, 2, 0, 1, 1), newVar(1, 3, 1, -3, 0.5)},
			func(_ *ad.Tape, p []*ad.Tensor) *ad.Tensor {
				return weighted(mustKL(Categorical{Logits: p[0]}, Categorical{Logits: p[1]}))
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkGradients(t, c.vars, c.loss) })
	}
}

func mustKL(p, q Distribution) *ad.Tensor {
	kl, err := KL(p, q)
	if err != nil {
		panic(err)
	}
	return kl
}
