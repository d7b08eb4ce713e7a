package dist

import (
	"math/rand/v2"

	"github.com/backpropq/backpropq/ad"
)

// MultivariateNormal is a batch of multivariate normal distributions over
// [B x D] values, one D-dimensional event per row: mean Loc ([B x D], or a
// [1 x D] row shared by every row) and covariance L·Lᵀ for the
// lower-triangular [D x D] ScaleTril L, shared by every row. Only the
// lower triangle of ScaleTril is read (the upper one gets no gradient); its
// diagonal must be > 0 and finite. [MultivariateNormalCovariance] builds
// one from a covariance matrix.
//
// Support: R^D.
//
// MultivariateNormal is [Reparameterized]: RSample returns Loc + L·ε for
// standard normal ε, so gradients reach Loc and ScaleTril.
type MultivariateNormal struct {
	Loc, ScaleTril *ad.Tensor
}

// MultivariateNormalCovariance returns the multivariate normal with mean
// loc ([B x D] or [1 x D]) and covariance cov ([D x D], symmetric positive
// definite; its symmetric part is used), differentiable in both through
// [ad.Cholesky]. It returns an *[Error] naming "covariance" if cov is nil,
// not [D x D] or not positive definite.
func MultivariateNormalCovariance(loc, cov *ad.Tensor) (MultivariateNormal, error) {
	if loc == nil || cov == nil {
		return MultivariateNormal{}, wholeErr("MultivariateNormal", "covariance", "and loc must not be nil")
	}
	d := loc.Cols()
	if r, c := cov.Dims(); r != d || c != d {
		return MultivariateNormal{}, wholeErr("MultivariateNormal", "covariance", "must be [%dx%d] for loc's %d columns, got [%dx%d]", d, d, d, r, c)
	}
	if err := checkElems("MultivariateNormal", "covariance", cov, ruleFinite, isFinite); err != nil {
		return MultivariateNormal{}, err
	}
	var l MultivariateNormal
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = wholeErr("MultivariateNormal", "covariance", "must be positive definite (%v)", r)
			}
		}()
		l = MultivariateNormal{Loc: loc, ScaleTril: ad.Cholesky(cov)}
		return nil
	}()
	return l, err
}

// Shape returns (B, D): the rows and columns of Loc.
func (d MultivariateNormal) Shape() (batch, event int) { return shapeOf(d.Loc) }

// tril returns the lower triangle of ScaleTril.
func (d MultivariateNormal) tril() *ad.Tensor {
	n := d.ScaleTril.Rows()
	return ad.Mul(d.ScaleTril, fill(d.ScaleTril.Tape(), n, n, func(i, j int) float64 { return b2f(j <= i) }))
}

// noise returns standard normal noise of the value's shape.
func (d MultivariateNormal) noise(rng *rand.Rand) *ad.Tensor {
	rows, cols := d.Shape()
	return fill(d.Loc.Tape(), rows, cols, func(int, int) float64 { return rng.NormFloat64() })
}

// Sample draws a value of shape [MultivariateNormal.Shape] without a
// gradient path. With the same source it returns the same numbers as
// [MultivariateNormal.RSample].
func (d MultivariateNormal) Sample(rng *rand.Rand) *ad.Tensor {
	return d.Loc.Tape().Const(d.RSample(rng).Value())
}

// RSample draws Loc + L·ε row by row, differentiable in Loc and ScaleTril.
func (d MultivariateNormal) RSample(rng *rand.Rand) *ad.Tensor {
	return ad.Add(d.Loc, ad.MatMulT(d.noise(rng), d.tril(), false, true))
}

// logDet returns log det L = Σ log L_ii as [1 x 1].
func (d MultivariateNormal) logDet() *ad.Tensor {
	n := d.ScaleTril.Rows()
	eye := fill(d.ScaleTril.Tape(), n, n, func(i, j int) float64 { return b2f(i == j) })
	return ad.Sum(ad.Log(ad.ColSum(ad.Mul(d.ScaleTril, eye))))
}

// LogProb returns log p(value) per row, as [B x 1]:
// -½‖L⁻¹(x-μ)‖² - log det L - (D/2)·log 2π.
func (d MultivariateNormal) LogProb(value *ad.Tensor) *ad.Tensor {
	diff := ad.Sub(value, d.Loc)
	z := ad.SolveLower(d.ScaleTril, ad.Transpose(diff), false)
	quad := ad.Transpose(ad.ColSum(ad.Square(z)))
	dim := float64(diff.Cols())
	return ad.Sub(ad.Scale(quad, -0.5), ad.Add(d.logDet(), value.Tape().Scalar(dim*logSqrt2Pi)))
}

// Mean returns Loc.
func (d MultivariateNormal) Mean() *ad.Tensor { return d.Loc }

// Covariance returns L·Lᵀ, [D x D].
func (d MultivariateNormal) Covariance() *ad.Tensor {
	l := d.tril()
	return ad.MatMulT(l, l, false, true)
}

// Entropy returns (D/2)·(1 + log 2π) + log det L per row, as [B x 1].
func (d MultivariateNormal) Entropy() *ad.Tensor {
	rows, cols := d.Shape()
	h := ad.Add(d.logDet(), d.Loc.Tape().Scalar(float64(cols)*(0.5+logSqrt2Pi)))
	return expand(h, rows, 1)
}

// Validate reports nil parameters, parameters on two tapes, a ScaleTril
// that is not [D x D] for Loc's D columns, a loc or lower-triangle element
// that is not finite, and a diagonal element that is not > 0.
func (d MultivariateNormal) Validate() error {
	const name = "MultivariateNormal"
	switch {
	case d.Loc == nil:
		return wholeErr(name, "loc", "is nil")
	case d.ScaleTril == nil:
		return wholeErr(name, "scale_tril", "is nil")
	case d.Loc.Tape() != d.ScaleTril.Tape():
		return wholeErr(name, "scale_tril", "is on another tape than loc")
	}
	n := d.Loc.Cols()
	if r, c := d.ScaleTril.Dims(); r != n || c != n {
		return wholeErr(name, "scale_tril", "must be [%dx%d] for loc's %d columns, got [%dx%d]", n, n, n, r, c)
	}
	if err := checkElems(name, "loc", d.Loc, ruleFinite, isFinite); err != nil {
		return err
	}
	data := d.ScaleTril.Data()
	for i := range n {
		for j := 0; j <= i; j++ {
			v := data[i*n+j]
			if i == j && !isPositive(v) {
				return &Error{Dist: name, Name: "scale_tril", Rule: "must have a diagonal > 0 and finite", Got: v, Row: i, Col: j}
			}
			if !isFinite(v) {
				return &Error{Dist: name, Name: "scale_tril", Rule: "must have a finite lower triangle", Got: v, Row: i, Col: j}
			}
		}
	}
	return nil
}

// ValidateValue reports a value of the wrong shape or not finite.
func (d MultivariateNormal) ValidateValue(value *ad.Tensor) error {
	rows, cols := d.Shape()
	if err := checkValueShape("MultivariateNormal", value, d.Loc, rows, cols, true); err != nil {
		return err
	}
	return checkElems("MultivariateNormal", "value", value, ruleFinite, isFinite)
}

// MultivariateNormalDiag is the multivariate normal with mean Loc and a
// diagonal covariance Scale², [B x D] or broadcast to it: the
// distribution of [Normal]{Loc, Scale} with each row one D-dimensional
// event. Its log-density is Normal's (summed over the row) and it is
// [Reparameterized] in the same way; it differs from Normal in declaring
// its row one event, which matters to [KL] (pairs with
// [MultivariateNormal]) and to capabilities that treat columns as
// independent variables.
type MultivariateNormalDiag struct {
	Loc, Scale *ad.Tensor
}

// Shape returns the broadcast shape of Loc and Scale.
func (d MultivariateNormalDiag) Shape() (batch, event int) { return Normal(d).Shape() }

// Sample draws as [Normal.Sample].
func (d MultivariateNormalDiag) Sample(rng *rand.Rand) *ad.Tensor { return Normal(d).Sample(rng) }

// RSample draws as [Normal.RSample].
func (d MultivariateNormalDiag) RSample(rng *rand.Rand) *ad.Tensor { return Normal(d).RSample(rng) }

// LogProb returns the log-density of each row, as [B x 1].
func (d MultivariateNormalDiag) LogProb(value *ad.Tensor) *ad.Tensor { return Normal(d).LogProb(value) }

// Mean returns Loc broadcast to the shape.
func (d MultivariateNormalDiag) Mean() *ad.Tensor { return Normal(d).Mean() }

// Entropy returns the entropy of each row, as [B x 1].
func (d MultivariateNormalDiag) Entropy() *ad.Tensor { return Normal(d).Entropy() }

// Validate reports what [Normal.Validate] does.
func (d MultivariateNormalDiag) Validate() error {
	return renameErr(Normal(d).Validate(), "MultivariateNormalDiag")
}

// ValidateValue reports what [Normal.ValidateValue] does.
func (d MultivariateNormalDiag) ValidateValue(value *ad.Tensor) error {
	return renameErr(Normal(d).ValidateValue(value), "MultivariateNormalDiag")
}
