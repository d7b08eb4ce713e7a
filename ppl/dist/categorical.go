package dist

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

// Categorical is a batch of independent categorical distributions over
// the classes 0..K-1 with unnormalized log-probabilities Logits, [B x K]
// or a [1 x K] row shared by every row of a value. A value is a [B x 1]
// tensor of class indices held as floats.
//
// Categorical is [Relaxable] through the Gumbel-max construction: the
// relaxed sample is z = log softmax(Logits) + G with G standard Gumbel
// noise, and b = H(z) = argmax z.
type Categorical struct {
	Logits *ad.Tensor
}

// Shape returns (B, 1): a value holds one class index per row.
func (d Categorical) Shape() (batch, event int) {
	if d.Logits == nil {
		return 0, 0
	}
	return d.Logits.Rows(), 1
}

// Sample draws one class index per row of Logits, as [B x 1].
func (d Categorical) Sample(rng *rand.Rand) *ad.Tensor {
	lv := viewOf(d.Logits)
	return fill(d.Logits.Tape(), lv.rows, 1, func(i, _ int) float64 {
		return float64(sampleClass(lv, i, rng))
	})
}

// sampleClass draws a class for row i of the logits by inverting the
// cumulative distribution with one uniform number.
func sampleClass(lv view, i int, rng *rand.Rand) int {
	row := lv.data[i*lv.cols : (i+1)*lv.cols]
	m := math.Inf(-1)
	for _, v := range row {
		m = max(m, v)
	}
	total := 0.0
	for _, v := range row {
		total += math.Exp(v - m)
	}
	u := rng.Float64() * total
	acc, last := 0.0, 0
	for k, v := range row {
		w := math.Exp(v - m)
		if w > 0 {
			last = k
		}
		acc += w
		if u < acc {
			return k
		}
	}
	return last // rounding left u at the top of the range
}

// LogProb returns log softmax(Logits)[value] per row, as [B x 1]. A [1 x K]
// Logits row is shared by every row of value. LogProb panics if an index
// is not an integer in [0, K); see [Categorical.ValidateValue].
func (d Categorical) LogProb(value *ad.Tensor) *ad.Tensor {
	ls := ad.LogSoftmax(d.Logits)
	return ad.Gather(expand(ls, value.Rows(), ls.Cols()), value)
}

// Probs returns softmax(Logits), [B x K].
func (d Categorical) Probs() *ad.Tensor { return ad.Softmax(d.Logits) }

// Entropy returns -Σ_k p_k log p_k per row, as [B x 1].
func (d Categorical) Entropy() *ad.Tensor { return categoricalEntropy(d.Logits) }

func categoricalEntropy(logits *ad.Tensor) *ad.Tensor {
	return ad.Neg(ad.RowSum(ad.Mul(ad.Softmax(logits), ad.LogSoftmax(logits))))
}

// RelaxedSample returns the Gumbel-perturbed log-probabilities
// z = log softmax(Logits) + G, [B x K] and differentiable in Logits, and
// b = argmax z as a [B x 1] class index, which is distributed as
// [Categorical.Sample]. b carries z's provenance and no gradient.
func (d Categorical) RelaxedSample(rng *rand.Rand) (z, b *ad.Tensor) {
	z = gumbelRelaxed(d.Logits, rng)
	return z, d.Hard(z)
}

// ConditionalRelaxedSample draws z~ from the distribution of the relaxed
// sample z conditioned on argmax z = b, reparameterized in Logits (the
// posterior Gumbel sample of REBAR and RELAX). b is a [B x 1] tensor of
// class indices. With v uniform on (0, 1)^K and p = softmax(Logits),
//
//	z~_b = -log(-log v_b)
//	z~_k = -log(-log(v_k)/p_k - log v_b)   for k ≠ b,
//
// a Gumbel maximum and Gumbels truncated below it, so argmax z~ = b
// exactly (ties that rounding could create are broken in b's favour).
// It panics if b is not [B x 1] with B the rows of Logits (or any B when
// Logits is one row) or an index is not an integer in [0, K).
func (d Categorical) ConditionalRelaxedSample(b *ad.Tensor, rng *rand.Rand) *ad.Tensor {
	k := d.Logits.Cols()
	if b.Cols() != 1 || (d.Logits.Rows() != 1 && b.Rows() != d.Logits.Rows()) {
		panic(&ad.ShapeError{Op: "Categorical.ConditionalRelaxedSample", A: [2]int{b.Rows(), b.Cols()}, B: [2]int{d.Logits.Rows(), 1}})
	}
	idx := make([]int, b.Rows())
	for i, v := range b.Data() {
		idx[i] = classIndex("Categorical.ConditionalRelaxedSample", v, k)
	}
	return conditionalGumbel(d.Logits, ad.OneHot(b, k), idx, rng)
}

// Hard returns argmax z per row as a [B x 1] class index, with z's
// provenance and no gradient. Ties go to the lowest index.
func (d Categorical) Hard(z *ad.Tensor) *ad.Tensor {
	zv := viewOf(z)
	return constWithProv(z.Tape(), zv.rows, 1, z.Provenance(), func(i, _ int) float64 {
		return float64(argmaxRow(zv.data[i*zv.cols : (i+1)*zv.cols]))
	})
}

// Validate reports nil or non-finite logits.
func (d Categorical) Validate() error { return validateLogits("Categorical", d.Logits) }

// ValidateValue reports a value that is not [B x 1] or holds something
// other than an integer class index in [0, K).
func (d Categorical) ValidateValue(value *ad.Tensor) error {
	rows, _ := d.Shape()
	if err := checkValueShape("Categorical", value, d.Logits, rows, 1, true); err != nil {
		return err
	}
	k := d.Logits.Cols()
	return checkElems("Categorical", "value", value, fmt.Sprintf("must be an integer class index in [0, %d)", k),
		func(v float64) bool { return v >= 0 && v < float64(k) && v == math.Trunc(v) })
}

func validateLogits(dist string, logits *ad.Tensor) error {
	if logits == nil {
		return wholeErr(dist, "logits", "is nil")
	}
	return checkElems(dist, "logits", logits, ruleFinite, isFinite)
}

// classIndex converts v to a class index in [0, k), panicking otherwise.
func classIndex(op string, v float64, k int) int {
	if v < 0 || v >= float64(k) || v != math.Trunc(v) {
		panic(fmt.Sprintf("dist: %s: class index %v is not an integer in [0, %d)", op, v, k))
	}
	return int(v)
}

// OneHotCategorical is the distribution of [Categorical] with each value
// encoded as a one-hot [B x K] row.
type OneHotCategorical struct {
	Logits *ad.Tensor
}

// Shape returns the shape of Logits, [B x K].
func (d OneHotCategorical) Shape() (batch, event int) { return shapeOf(d.Logits) }

// Sample draws one one-hot row per row of Logits, [B x K].
func (d OneHotCategorical) Sample(rng *rand.Rand) *ad.Tensor {
	lv := viewOf(d.Logits)
	class := -1
	return fill(d.Logits.Tape(), lv.rows, lv.cols, func(i, j int) float64 {
		if j == 0 {
			class = sampleClass(lv, i, rng)
		}
		return b2f(j == class)
	})
}

// LogProb returns Σ_k value_k · log softmax(Logits)_k per row, as [B x 1].
func (d OneHotCategorical) LogProb(value *ad.Tensor) *ad.Tensor {
	return ad.RowSum(ad.Mul(value, ad.LogSoftmax(d.Logits)))
}

// Mean returns softmax(Logits), [B x K].
func (d OneHotCategorical) Mean() *ad.Tensor { return ad.Softmax(d.Logits) }

// Entropy returns -Σ_k p_k log p_k per row, as [B x 1].
func (d OneHotCategorical) Entropy() *ad.Tensor { return categoricalEntropy(d.Logits) }

// RelaxedSample is [Categorical.RelaxedSample] with b one-hot, [B x K].
func (d OneHotCategorical) RelaxedSample(rng *rand.Rand) (z, b *ad.Tensor) {
	z = gumbelRelaxed(d.Logits, rng)
	return z, d.Hard(z)
}

// ConditionalRelaxedSample is [Categorical.ConditionalRelaxedSample] with b
// one-hot, [B x K]. It panics if b's shape does not match Logits or a row
// of b is not one-hot.
func (d OneHotCategorical) ConditionalRelaxedSample(b *ad.Tensor, rng *rand.Rand) *ad.Tensor {
	k := d.Logits.Cols()
	if b.Cols() != k || (d.Logits.Rows() != 1 && b.Rows() != d.Logits.Rows()) {
		panic(&ad.ShapeError{Op: "OneHotCategorical.ConditionalRelaxedSample", A: [2]int{b.Rows(), b.Cols()}, B: [2]int{d.Logits.Rows(), k}})
	}
	idx := make([]int, b.Rows())
	for i := range idx {
		row := b.Data()[i*k : (i+1)*k]
		idx[i] = argmaxRow(row)
		if err := checkOneHotRow("OneHotCategorical", row, i); err != nil {
			panic(fmt.Sprintf("dist: OneHotCategorical.ConditionalRelaxedSample: %v", err))
		}
	}
	return conditionalGumbel(d.Logits, b, idx, rng)
}

// Hard returns the one-hot encoding of argmax z per row, [B x K], with z's
// provenance and no gradient. Ties go to the lowest index.
func (d OneHotCategorical) Hard(z *ad.Tensor) *ad.Tensor {
	zv := viewOf(z)
	class := -1
	return constWithProv(z.Tape(), zv.rows, zv.cols, z.Provenance(), func(i, j int) float64 {
		if j == 0 {
			class = argmaxRow(zv.data[i*zv.cols : (i+1)*zv.cols])
		}
		return b2f(j == class)
	})
}

// Validate reports nil or non-finite logits.
func (d OneHotCategorical) Validate() error { return validateLogits("OneHotCategorical", d.Logits) }

// ValidateValue reports a value of the wrong shape or a row that is not
// one-hot.
func (d OneHotCategorical) ValidateValue(value *ad.Tensor) error {
	rows, cols := d.Shape()
	if err := checkValueShape("OneHotCategorical", value, d.Logits, rows, cols, true); err != nil {
		return err
	}
	for i := 0; i < value.Rows(); i++ {
		if err := checkOneHotRow("OneHotCategorical", value.Data()[i*cols:(i+1)*cols], i); err != nil {
			return err
		}
	}
	return nil
}

func checkOneHotRow(dist string, row []float64, i int) error {
	one := -1
	for j, v := range row {
		switch {
		case v != 0 && v != 1:
			return &Error{Dist: dist, Name: "value", Rule: "must be one-hot (entries 0 or 1)", Got: v, Row: i, Col: j}
		case v == 1 && one >= 0:
			return &Error{Dist: dist, Name: "value", Rule: fmt.Sprintf("must be one-hot (the row already has a 1 at column %d)", one), Got: v, Row: i, Col: j}
		case v == 1:
			one = j
		}
	}
	if one < 0 {
		return wholeErr(dist, "value", "must be one-hot, got no 1 in row %d", i)
	}
	return nil
}

// gumbelRelaxed returns log softmax(logits) + G with G standard Gumbel
// noise of logits' shape.
func gumbelRelaxed(logits *ad.Tensor, rng *rand.Rand) *ad.Tensor {
	rows, cols := logits.Dims()
	g := fill(logits.Tape(), rows, cols, func(int, int) float64 { return gumbel(rng) })
	return ad.Add(ad.LogSoftmax(logits), g)
}

// conditionalGumbel draws the Gumbel sample conditioned on its argmax
// being idx[i] in row i; mask is the one-hot encoding of idx.
//
// With the top value t = -log(-log v_b), the others are Gumbels of
// location log p_k truncated below t:
//
//	z~_k = -log(e^{-t} + e^{-log p_k}·(-log v_k))
//	     = t - softplus(log(-log v_k) - log p_k + t),
//
// the second form being free of overflow.
func conditionalGumbel(logits, mask *ad.Tensor, idx []int, rng *rand.Rand) *ad.Tensor {
	tp := logits.Tape()
	rows, k := len(idx), logits.Cols()
	buf := getScratch(rows * k)
	v := *buf
	for n := range v {
		v[n] = uniformOpen(rng)
	}
	logNegLogV := fill(tp, rows, k, func(i, j int) float64 { return math.Log(-math.Log(v[i*k+j])) })
	top := fill(tp, rows, 1, func(i, _ int) float64 { return -math.Log(-math.Log(v[i*k+idx[i]])) })
	scratchPool.Put(buf)

	others := ad.Sub(top, ad.Softplus(ad.Add(ad.Sub(logNegLogV, ad.LogSoftmax(logits)), top)))
	zt := ad.Where(mask, top, others)

	// softplus of an argument below about -37 is below the spacing of
	// floats near t, so z~_k can round to t; lower such entries by one
	// ulp so that argmax z~ is exactly idx. Their gradient is ~1e-16 of
	// the unrounded one, so it is dropped.
	data := zt.Data()
	needFix := false
	for i := 0; i < rows && !needFix; i++ {
		for j := 0; j < k; j++ {
			if j != idx[i] && data[i*k+j] >= data[i*k+idx[i]] {
				needFix = true
				break
			}
		}
	}
	if !needFix {
		return zt
	}
	fix := func(i, j int) bool { return j != idx[i] && data[i*k+j] >= data[i*k+idx[i]] }
	fixMask := fill(tp, rows, k, func(i, j int) float64 { return b2f(fix(i, j)) })
	fixed := fill(tp, rows, k, func(i, j int) float64 { return math.Nextafter(data[i*k+idx[i]], math.Inf(-1)) })
	return ad.Where(fixMask, fixed, zt)
}
