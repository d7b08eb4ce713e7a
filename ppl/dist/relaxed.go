package dist

import (
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

// RelaxedBernoulli is the binary Concrete distribution (Maddison et al.,
// 2017): a continuous relaxation of [Bernoulli] on the open interval
// (0, 1). A sample is x = sigmoid((Logits + L) / Temperature) with L
// standard logistic noise; as the temperature goes to 0 the samples
// approach 0 or 1, with P(x → 1) = sigmoid(Logits).
//
// Logits and Temperature are [B x D] or broadcast to it; Temperature is
// typically [1 x 1] and may be a learned tensor, since RSample and LogProb
// are differentiable in it. Samples are clamped to [2^-1022, 1 - 2^-53] so
// that the log-density of a sample is always finite.
type RelaxedBernoulli struct {
	Logits      *ad.Tensor
	Temperature *ad.Tensor
}

// Shape returns the broadcast shape of Logits and Temperature.
func (d RelaxedBernoulli) Shape() (batch, event int) { return shapeOf(d.Logits, d.Temperature) }

// Sample draws a value of shape [RelaxedBernoulli.Shape] without a
// gradient path. With the same source it returns the same numbers as
// [RelaxedBernoulli.RSample].
func (d RelaxedBernoulli) Sample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	l, t := viewOf(d.Logits), viewOf(d.Temperature)
	return fill(d.Logits.Tape(), rows, cols, func(i, j int) float64 {
		return min(max(sigmoid((l.at(i, j)+logistic(rng))/t.at(i, j)), tiny), belowOne)
	})
}

// RSample draws sigmoid((Logits + L) / Temperature), differentiable in
// both parameters.
func (d RelaxedBernoulli) RSample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	noise := fill(d.Logits.Tape(), rows, cols, func(int, int) float64 { return logistic(rng) })
	x := ad.Sigmoid(ad.Div(ad.Add(d.Logits, noise), d.Temperature))
	return ad.Clamp(x, tiny, belowOne)
}

// LogProb returns the binary Concrete log-density summed over columns, as
// [B x 1]. With λ the temperature, l the logit and y = log x - log(1-x),
//
//	log p(x) = log λ + (l - λy) - 2·softplus(l - λy) - log x - log(1-x).
//
// Values outside (0, 1) give NaN or -Inf.
func (d RelaxedBernoulli) LogProb(value *ad.Tensor) *ad.Tensor {
	lx := ad.Log(value)
	l1x := ad.Log1p(ad.Neg(value))
	t := ad.Sub(d.Logits, ad.Mul(d.Temperature, ad.Sub(lx, l1x)))
	lp := ad.Sub(ad.Sub(t, ad.Scale(ad.Softplus(t), 2)), ad.Add(lx, l1x))
	return ad.RowSum(ad.Add(lp, ad.Log(d.Temperature)))
}

// Validate reports nil parameters, shapes that do not broadcast,
// non-finite logits and a temperature that is not > 0 and finite.
func (d RelaxedBernoulli) Validate() error {
	return validateRelaxed("RelaxedBernoulli", d.Logits, d.Temperature)
}

func validateRelaxed(dist string, logits, temperature *ad.Tensor) error {
	if _, _, err := checkParams(dist, param{"logits", logits}, param{"temperature", temperature}); err != nil {
		return err
	}
	if err := checkElems(dist, "logits", logits, ruleFinite, isFinite); err != nil {
		return err
	}
	return checkElems(dist, "temperature", temperature, rulePositive, isPositive)
}

// ValidateValue reports a value of the wrong shape or outside the open
// interval (0, 1).
func (d RelaxedBernoulli) ValidateValue(value *ad.Tensor) error {
	rows, cols := d.Shape()
	if err := checkValueShape("RelaxedBernoulli", value, d.Logits, rows, cols, false); err != nil {
		return err
	}
	return checkElems("RelaxedBernoulli", "value", value, "must be in the open interval (0, 1)",
		func(v float64) bool { return v > 0 && v < 1 })
}

// RelaxedOneHotCategorical is the Concrete or Gumbel-softmax distribution
// (Maddison et al., 2017; Jang et al., 2017): a continuous relaxation of
// [OneHotCategorical] on the open probability simplex. A sample is
// x = softmax((Logits + G) / Temperature) with G standard Gumbel noise; as
// the temperature goes to 0 the samples approach one-hot vectors, with
// P(argmax x = k) = softmax(Logits)_k at every temperature.
//
// Logits is [B x K] or [1 x K]; Temperature is [1 x 1] or [B x 1] (one
// temperature per row) and may be a learned tensor. Sample entries are
// clamped below at 2^-1022 (so a row may exceed 1 in sum by that much) so
// that the log-density of a sample is always finite.
type RelaxedOneHotCategorical struct {
	Logits      *ad.Tensor
	Temperature *ad.Tensor
}

// Shape returns (B, K) with B the larger row count of Logits and
// Temperature.
func (d RelaxedOneHotCategorical) Shape() (batch, event int) {
	rows, _ := shapeOf(d.Logits, d.Temperature)
	_, cols := shapeOf(d.Logits)
	return rows, cols
}

// Sample draws a value of shape [RelaxedOneHotCategorical.Shape] without
// a gradient path. With the same source it returns the same numbers as
// [RelaxedOneHotCategorical.RSample].
func (d RelaxedOneHotCategorical) Sample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	l, t := viewOf(d.Logits), viewOf(d.Temperature)
	buf := getScratch(cols)
	y := *buf
	out := fill(d.Logits.Tape(), rows, cols, func(i, j int) float64 {
		if j == 0 {
			m := math.Inf(-1)
			for k := range y {
				y[k] = (l.at(i, k) + gumbel(rng)) / t.at(i, 0)
				m = max(m, y[k])
			}
			s := 0.0
			for k, v := range y {
				y[k] = math.Exp(v - m)
				s += y[k]
			}
			for k := range y {
				y[k] = max(y[k]/s, tiny)
			}
		}
		return y[j]
	})
	scratchPool.Put(buf)
	return out
}

// RSample draws softmax((Logits + G) / Temperature), differentiable in
// both parameters.
func (d RelaxedOneHotCategorical) RSample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	g := fill(d.Logits.Tape(), rows, cols, func(int, int) float64 { return gumbel(rng) })
	x := ad.Softmax(ad.Div(ad.Add(d.Logits, g), d.Temperature))
	return ad.Clamp(x, tiny, 1)
}

// LogProb returns the Concrete log-density of a value on the simplex, as
// [B x 1], with respect to Lebesgue measure on its first K-1 coordinates:
// with λ the temperature and l the logits,
//
//	log p(x) = log (K-1)! + (K-1) log λ + Σ_k (l_k - (λ+1) log x_k)
//	           - K · log Σ_k exp(l_k - λ log x_k).
//
// A value with a zero entry gives NaN or ±Inf.
func (d RelaxedOneHotCategorical) LogProb(value *ad.Tensor) *ad.Tensor {
	k := value.Cols()
	lx := ad.Log(value)
	t := ad.Sub(d.Logits, ad.Mul(d.Temperature, lx))
	lp := ad.Sub(ad.RowSum(ad.Sub(t, lx)), ad.Scale(ad.LogSumExp(t), float64(k)))
	lgK, _ := math.Lgamma(float64(k))
	lp = ad.Add(lp, ad.Scale(ad.Log(d.Temperature), float64(k-1)))
	return ad.Add(lp, value.Tape().Scalar(lgK))
}

// Validate reports nil parameters, a temperature that is not [1 x 1] or
// one per row of Logits, non-finite logits and a temperature that is not
// > 0 and finite.
func (d RelaxedOneHotCategorical) Validate() error {
	const name = "RelaxedOneHotCategorical"
	if d.Logits != nil && d.Temperature != nil {
		if c := d.Temperature.Cols(); c != 1 {
			return wholeErr(name, "temperature", "must be [1x1] or [Bx1], got [%dx%d]", d.Temperature.Rows(), c)
		}
	}
	return validateRelaxed(name, d.Logits, d.Temperature)
}

// ValidateValue reports a value of the wrong shape, an entry outside
// (0, 1], or a row whose sum differs from 1 by more than 1e-6.
func (d RelaxedOneHotCategorical) ValidateValue(value *ad.Tensor) error {
	const name = "RelaxedOneHotCategorical"
	rows, cols := d.Shape()
	if err := checkValueShape(name, value, d.Logits, rows, cols, true); err != nil {
		return err
	}
	if err := checkElems(name, "value", value, "must be in (0, 1] (the open simplex)",
		func(v float64) bool { return v > 0 && v <= 1 }); err != nil {
		return err
	}
	for i := 0; i < value.Rows(); i++ {
		s := 0.0
		for _, v := range value.Data()[i*cols : (i+1)*cols] {
			s += v
		}
		if math.Abs(s-1) > simplexTol {
			return wholeErr(name, "value", "rows must sum to 1 (within %g), got sum %v in row %d", simplexTol, s, i)
		}
	}
	return nil
}

// simplexTol is how far from 1 the row sum of a relaxed one-hot value may
// be, to admit values computed in lower precision.
const simplexTol = 1e-6
