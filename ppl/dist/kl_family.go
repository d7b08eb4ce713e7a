package dist

import (
	"reflect"

	"github.com/backpropq/backpropq/ad"
)

func registerFamilyKLs() {
	registerKL(func(d Distribution) klParams { return tensors(d.(LogNormal).Loc, d.(LogNormal).Scale) }, false, func(p, q LogNormal) *ad.Tensor {
		return klNormal(Normal(p), Normal(q))
	})
	registerKL(func(d Distribution) klParams {
		return tensors(d.(MultivariateNormalDiag).Loc, d.(MultivariateNormalDiag).Scale)
	}, true, func(p, q MultivariateNormalDiag) *ad.Tensor {
		return klNormal(Normal(p), Normal(q))
	})
	registerKL(func(d Distribution) klParams {
		return tensors(d.(MultivariateNormal).Loc, d.(MultivariateNormal).ScaleTril)
	}, true, klMultivariateNormal)
	registerKL(func(d Distribution) klParams { return tensors(d.(Gamma).Rate, d.(Gamma).Concentration) }, false, klGamma)
	registerKL(func(d Distribution) klParams { return tensors(d.(Beta).Alpha, d.(Beta).Beta) }, false, klBeta)
	registerKL(func(d Distribution) klParams { return tensors(d.(Dirichlet).Concentration) }, true, klDirichlet)
	registerKL(func(d Distribution) klParams { return tensors(d.(Exponential).Rate) }, false, klExponential)
	registerKL(func(d Distribution) klParams { return tensors(d.(Poisson).Rate) }, false, klPoisson)
	// Independent wrappers: the KL of the bases.
	wrappers := []Distribution{IndependentEvents{}, IndependentReparameterized{}}
	for _, p := range wrappers {
		for _, q := range wrappers {
			klTable[[2]reflect.Type{reflect.TypeOf(p), reflect.TypeOf(q)}] = func(p, q Distribution) (*ad.Tensor, error) {
				return KL(p.(interface{ Base() Distribution }).Base(), q.(interface{ Base() Distribution }).Base())
			}
		}
	}
}

// rowSumAt sums term per row after broadcasting it to the shape of ts.
func rowSumAt(term *ad.Tensor, ts ...*ad.Tensor) *ad.Tensor {
	rows, cols := shapeOf(append(ts, term)...)
	return ad.RowSum(expand(term, rows, cols))
}

// klGamma is Σ_j (αp-αq)ψ(αp) - log Γ(αp) + log Γ(αq)
// + αq(log βp - log βq) + αp(βq-βp)/βp.
func klGamma(p, q Gamma) *ad.Tensor {
	ap, bp, aq, bq := p.Concentration, p.Rate, q.Concentration, q.Rate
	t := ad.Sub(ad.Mul(ad.Sub(ap, aq), ad.Digamma(ap)), ad.Lgamma(ap))
	t = ad.Add(t, ad.Lgamma(aq))
	t = ad.Add(t, ad.Mul(aq, ad.Sub(ad.Log(bp), ad.Log(bq))))
	t = ad.Add(t, ad.Mul(ap, ad.Div(ad.Sub(bq, bp), bp)))
	return rowSumAt(t, ap, bp, aq, bq)
}

// klBeta is Σ_j log B(αq,βq) - log B(αp,βp) + (αp-αq)ψ(αp) + (βp-βq)ψ(βp)
// + (αq-αp+βq-βp)ψ(αp+βp).
func klBeta(p, q Beta) *ad.Tensor {
	ap, bp, aq, bq := p.Alpha, p.Beta, q.Alpha, q.Beta
	t := ad.Sub(logBeta(aq, bq), logBeta(ap, bp))
	t = ad.Add(t, ad.Mul(ad.Sub(ap, aq), ad.Digamma(ap)))
	t = ad.Add(t, ad.Mul(ad.Sub(bp, bq), ad.Digamma(bp)))
	sp, sq := ad.Add(ap, bp), ad.Add(aq, bq)
	t = ad.Add(t, ad.Mul(ad.Sub(sq, sp), ad.Digamma(sp)))
	return rowSumAt(t, ap, bp, aq, bq)
}

// klDirichlet is log Γ(αp₀) - Σ log Γ(αp_k) - log Γ(αq₀) + Σ log Γ(αq_k)
// + Σ_k (αp_k - αq_k)(ψ(αp_k) - ψ(αp₀)) per row.
func klDirichlet(p, q Dirichlet) *ad.Tensor {
	ap, aq := p.Concentration, q.Concentration
	ap0, aq0 := ad.RowSum(ap), ad.RowSum(aq)
	norm := ad.Sub(ad.Sub(ad.Lgamma(ap0), ad.RowSum(ad.Lgamma(ap))), ad.Sub(ad.Lgamma(aq0), ad.RowSum(ad.Lgamma(aq))))
	cross := rowSumAt(ad.Mul(ad.Sub(ap, aq), ad.Sub(ad.Digamma(ap), ad.Digamma(ap0))), ap, aq)
	return ad.Add(norm, cross)
}

// klExponential is Σ_j log(λp/λq) + λq/λp - 1.
func klExponential(p, q Exponential) *ad.Tensor {
	ratio := ad.Div(q.Rate, p.Rate)
	return rowSumAt(ad.Sub(ad.Sub(ratio, ad.Log(ratio)), p.Rate.Tape().Scalar(1)), p.Rate, q.Rate)
}

// klPoisson is Σ_j λp(log λp - log λq) - λp + λq.
func klPoisson(p, q Poisson) *ad.Tensor {
	lp, lq := p.Rate, q.Rate
	t := ad.Add(ad.Sub(ad.Mul(lp, ad.Sub(ad.Log(lp), ad.Log(lq))), lp), lq)
	return rowSumAt(t, lp, lq)
}

// klMultivariateNormal is ½(‖Lq⁻¹Lp‖²_F + ‖Lq⁻¹(μq-μp)‖² - D)
// + log det Lq - log det Lp per row.
func klMultivariateNormal(p, q MultivariateNormal) *ad.Tensor {
	tp := p.Loc.Tape()
	dim := float64(p.Loc.Cols())
	m := ad.SolveLower(q.ScaleTril, p.tril(), false)
	trace := ad.Sum(ad.Square(m))
	diff := ad.Sub(q.Loc, p.Loc)
	z := ad.SolveLower(q.ScaleTril, ad.Transpose(diff), false)
	mahal := ad.Transpose(ad.ColSum(ad.Square(z)))
	half := ad.Scale(ad.Add(ad.Add(mahal, trace), tp.Scalar(-dim)), 0.5)
	return ad.Add(half, ad.Sub(q.logDet(), p.logDet()))
}
