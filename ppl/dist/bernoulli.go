package dist

import (
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

// Bernoulli is a batch of independent Bernoulli distributions over 0/1
// values, parameterized by exactly one of Logits (log-odds) or Probs
// (probabilities of 1), [B x D] or broadcast to it. Values are [B x D]
// tensors of 0s and 1s.
//
// Bernoulli is [Relaxable]: its relaxed sample is the logistic variable
// z = logit + log u - log(1-u) with b = H(z) = 1[z > 0], as REBAR and
// RELAX use it.
type Bernoulli struct {
	Logits *ad.Tensor
	Probs  *ad.Tensor
}

// BernoulliLogits returns the Bernoulli distribution with log-odds logits.
func BernoulliLogits(logits *ad.Tensor) Bernoulli { return Bernoulli{Logits: logits} }

// BernoulliProbs returns the Bernoulli distribution with probabilities p
// of a 1.
func BernoulliProbs(p *ad.Tensor) Bernoulli { return Bernoulli{Probs: p} }

func (d Bernoulli) param() *ad.Tensor {
	if d.Logits != nil {
		return d.Logits
	}
	return d.Probs
}

// Shape returns the shape of the parameter.
func (d Bernoulli) Shape() (batch, event int) { return shapeOf(d.param()) }

// Sample draws a 0/1 value of shape [Bernoulli.Shape]: element k is 1
// when the k-th uniform draw of rng, in row-major order, is below its
// probability. With Logits the probabilities come from
// [ad.SigmoidValues], within a few ulps of sigmoid.
func (d Bernoulli) Sample(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	buf := getScratch(rows * cols)
	defer scratchPool.Put(buf)
	out, p := *buf, d.param().Data()
	if d.Logits != nil {
		ad.SigmoidValues(out, p)
		p = out // each draw reads its probability before overwriting it
	}
	for k := range out {
		out[k] = b2f(rng.Float64() < p[k])
	}
	return d.param().Tape().FromData(rows, cols, out)
}

// LogProb returns Σ_j log p(value_j) per row, as [B x 1]. With Logits it
// is computed stably as value·logit - softplus(logit); with Probs as
// log(p) or log(1-p) as the value selects. LogProb treats any non-zero
// value as 1.
func (d Bernoulli) LogProb(value *ad.Tensor) *ad.Tensor {
	if d.Logits != nil {
		return ad.Neg(ad.BinaryCrossEntropyLogits(d.Logits, value))
	}
	return sumRows(d.LogProbElements(value))
}

// LogProbElements returns the log-pmf of each element of value, [B x D]:
// the terms LogProb sums.
func (d Bernoulli) LogProbElements(value *ad.Tensor) *ad.Tensor {
	rows, cols := shapeOf(value, d.param())
	if d.Logits != nil {
		return expand(ad.Sub(ad.Mul(value, d.Logits), ad.Softplus(d.Logits)), rows, cols)
	}
	p := expand(d.Probs, rows, cols)
	q := ad.Sub(p.Tape().Scalar(1), p)
	return ad.Log(ad.Where(value, p, q))
}

// Mean returns the probabilities of a 1: Probs itself, or sigmoid(Logits).
func (d Bernoulli) Mean() *ad.Tensor {
	if d.Logits != nil {
		return ad.Sigmoid(d.Logits)
	}
	return d.Probs
}

// LogOdds returns the log-odds: Logits, or log p - log(1-p) computed
// from Probs (infinite where p is 0 or 1).
func (d Bernoulli) LogOdds() *ad.Tensor {
	if d.Logits != nil {
		return d.Logits
	}
	return ad.Sub(ad.Log(d.Probs), ad.Log1p(ad.Neg(d.Probs)))
}

// Entropy returns -Σ_j (p log p + (1-p) log(1-p)) per row, as [B x 1],
// with 0·log 0 = 0.
func (d Bernoulli) Entropy() *ad.Tensor {
	if l := d.Logits; l != nil {
		// H = softplus(l) - σ(l)·l.
		return ad.RowSum(ad.Sub(ad.Softplus(l), ad.Mul(ad.Sigmoid(l), l)))
	}
	p := d.Probs
	q := ad.Sub(p.Tape().Scalar(1), p)
	return ad.Neg(ad.RowSum(ad.Add(plogq(p, p), plogq(q, q))))
}

// plogq returns p·log q elementwise with 0·log q = 0 for any q, also in
// the gradient: where p is 0, both p and q are replaced by 1 before the
// log, so no 0·∞ appears in either pass.
func plogq(p, q *ad.Tensor) *ad.Tensor {
	tp := p.Tape()
	rows, cols := shapeOf(p, q)
	pv := viewOf(p)
	mask := fill(tp, rows, cols, func(i, j int) float64 { return b2f(pv.at(i, j) != 0) })
	one := tp.Scalar(1)
	return ad.Mul(ad.Where(mask, p, one), ad.Log(ad.Where(mask, q, one)))
}

// RelaxedSample draws logistic noise L and returns z = logit + L,
// differentiable in the parameter, and b = H(z) = 1[z > 0], which is
// distributed as [Bernoulli.Sample]. b carries z's provenance and no
// gradient.
func (d Bernoulli) RelaxedSample(rng *rand.Rand) (z, b *ad.Tensor) {
	rows, cols := d.Shape()
	noise := fill(d.param().Tape(), rows, cols, func(int, int) float64 { return logistic(rng) })
	z = ad.Add(d.LogOdds(), noise)
	return z, d.Hard(z)
}

// ConditionalRelaxedSample draws z~ from the logistic relaxation
// conditioned on H(z~) = b, reparameterized so that gradients reach the
// parameter (REBAR's second relaxed sample). b is a 0/1 tensor of shape
// [Bernoulli.Shape] or one the parameter broadcasts to. With v uniform on
// (0, 1) and l the logit it is
//
//	b = 1: z~ = softplus(l + log v) - log(1-v)  > 0
//	b = 0: z~ = log v - softplus(log(1-v) - l)  < 0
//
// which equals l + log u' - log(1-u') for u' = (1-p) + v·p when b = 1 and
// u' = v·(1-p) when b = 0, written so that the sign of z~ is exact in
// floating point. Any non-zero b counts as 1. It panics (with an
// *ad.ShapeError) if b's shape does not broadcast with the parameter.
func (d Bernoulli) ConditionalRelaxedSample(b *ad.Tensor, rng *rand.Rand) *ad.Tensor {
	rows, cols := shapeOf(b, d.param())
	tp := b.Tape()
	buf := getScratch(rows * cols)
	v := *buf
	for k := range v {
		v[k] = uniformOpen(rng)
	}
	logV := fill(tp, rows, cols, func(i, j int) float64 { return math.Log(v[i*cols+j]) })
	log1mV := fill(tp, rows, cols, func(i, j int) float64 { return math.Log1p(-v[i*cols+j]) })
	scratchPool.Put(buf)
	l := d.LogOdds()
	one := ad.Sub(ad.Softplus(ad.Add(l, logV)), log1mV)
	zero := ad.Sub(logV, ad.Softplus(ad.Sub(log1mV, l)))
	return ad.Where(b, one, zero)
}

// Hard returns H(z) = 1[z > 0] elementwise, with z's provenance and no
// gradient.
func (d Bernoulli) Hard(z *ad.Tensor) *ad.Tensor {
	rows, cols := z.Dims()
	zv := z.Data()
	return constWithProv(z.Tape(), rows, cols, z.Provenance(), func(i, j int) float64 {
		return b2f(zv[i*cols+j] > 0)
	})
}

// Validate reports that neither or both of Logits and Probs are set,
// logits that are not finite, and probabilities outside [0, 1] or NaN.
func (d Bernoulli) Validate() error {
	switch {
	case d.Logits == nil && d.Probs == nil:
		return wholeErr("Bernoulli", "logits", "and probs are both nil; set exactly one")
	case d.Logits != nil && d.Probs != nil:
		return wholeErr("Bernoulli", "logits", "and probs are both set; set exactly one")
	case d.Logits != nil:
		if allFinite(d.Logits.Data()) {
			return nil
		}
		return checkElems("Bernoulli", "logits", d.Logits, ruleFinite, isFinite)
	}
	return checkElems("Bernoulli", "probs", d.Probs, "must be in [0, 1]", func(v float64) bool {
		return v >= 0 && v <= 1
	})
}

// ValidateValue reports a value of the wrong shape or not 0 or 1.
func (d Bernoulli) ValidateValue(value *ad.Tensor) error {
	rows, cols := d.Shape()
	if err := checkValueShape("Bernoulli", value, d.param(), rows, cols, false); err != nil {
		return err
	}
	if allBinary(value.Data()) {
		return nil
	}
	return checkElems("Bernoulli", "value", value, "must be 0 or 1", func(v float64) bool {
		return v == 0 || v == 1
	})
}

// allFinite reports whether no element of xs is infinite or NaN: v - v
// is 0 for a finite v and NaN otherwise, and a NaN stays in a sum.
// Validate scans with it before locating an offending element.
func allFinite(xs []float64) bool {
	var s0, s1, s2, s3 float64
	n4 := len(xs) &^ 3
	for i := 0; i < n4; i += 4 {
		v := xs[i : i+4 : i+4]
		s0 += v[0] - v[0]
		s1 += v[1] - v[1]
		s2 += v[2] - v[2]
		s3 += v[3] - v[3]
	}
	for _, v := range xs[n4:] {
		s0 += v - v
	}
	return s0+s1+s2+s3 == 0
}

// allBinary reports whether every element of xs is 0 or 1: |v·(v-1)| is
// 0 for those and otherwise positive (at least the smallest denormal, as
// v-1 is exact near 1), infinite or NaN, so the sum stays 0 only when
// every element is binary.
func allBinary(xs []float64) bool {
	var s0, s1, s2, s3 float64
	n4 := len(xs) &^ 3
	for i := 0; i < n4; i += 4 {
		v := xs[i : i+4 : i+4]
		s0 += math.Abs(v[0] * (v[0] - 1))
		s1 += math.Abs(v[1] * (v[1] - 1))
		s2 += math.Abs(v[2] * (v[2] - 1))
		s3 += math.Abs(v[3] * (v[3] - 1))
	}
	for _, v := range xs[n4:] {
		s0 += math.Abs(v * (v - 1))
	}
	return s0+s1+s2+s3 == 0
}
