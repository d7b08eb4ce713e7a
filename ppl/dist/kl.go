package dist

import (
	"fmt"

	"github.com/backpropq/backpropq/ad"
)

// KL returns the Kullback-Leibler divergence KL(p ‖ q) = E_p[log p - log q]
// summed over the event's columns, as [B x 1] with B the larger batch of
// the two. It is differentiable in the parameters of both.
//
// Closed forms exist for Normal/Normal, Bernoulli/Bernoulli (either
// parameterization), Categorical/Categorical and
// OneHotCategorical/OneHotCategorical, given as values or pointers. For
// any other pair KL returns an error wrapping [ErrNoKL] that names both
// types; it also returns an error when the shapes do not broadcast or the
// parameters live on different tapes. KL does not validate the
// parameters.
func KL(p, q Distribution) (*ad.Tensor, error) {
	p, q = deref(p), deref(q)
	switch p := p.(type) {
	case Normal:
		if q, ok := q.(Normal); ok {
			if err := klCompatible(p.Loc, q.Loc, p, q); err != nil {
				return nil, err
			}
			return klNormal(p, q), nil
		}
	case Bernoulli:
		if q, ok := q.(Bernoulli); ok {
			if err := klCompatible(p.param(), q.param(), p, q); err != nil {
				return nil, err
			}
			return klBernoulli(p, q), nil
		}
	case Categorical:
		if q, ok := q.(Categorical); ok {
			if err := klCompatible(p.Logits, q.Logits, p, q); err != nil {
				return nil, err
			}
			return klCategorical(p.Logits, q.Logits), nil
		}
	case OneHotCategorical:
		if q, ok := q.(OneHotCategorical); ok {
			if err := klCompatible(p.Logits, q.Logits, p, q); err != nil {
				return nil, err
			}
			return klCategorical(p.Logits, q.Logits), nil
		}
	}
	return nil, fmt.Errorf("dist: KL(%T, %T): %w", p, q, ErrNoKL)
}

func deref(d Distribution) Distribution {
	switch d := d.(type) {
	case *Normal:
		return *d
	case *Bernoulli:
		return *d
	case *Categorical:
		return *d
	case *OneHotCategorical:
		return *d
	}
	return d
}

// klCompatible reports nil parameters, parameters on different tapes and
// parameter shapes that do not broadcast; a and b are a parameter of p
// and of q, and Categorical is compared by its logits' shape.
func klCompatible(a, b *ad.Tensor, p, q Distribution) error {
	if a == nil || b == nil {
		return fmt.Errorf("dist: KL(%T, %T): nil parameter", p, q)
	}
	if a.Tape() != b.Tape() {
		return fmt.Errorf("dist: KL(%T, %T): parameters on different tapes", p, q)
	}
	pr, pc := p.Shape()
	qr, qc := q.Shape()
	if _, ok := p.(Categorical); ok {
		pr, pc = a.Dims()
		qr, qc = b.Dims()
	}
	if _, ok := broadcastDim(pr, qr); !ok {
		return fmt.Errorf("dist: KL(%T, %T): shapes [%dx%d] and [%dx%d] do not broadcast", p, q, pr, pc, qr, qc)
	}
	if _, ok := broadcastDim(pc, qc); !ok {
		return fmt.Errorf("dist: KL(%T, %T): shapes [%dx%d] and [%dx%d] do not broadcast", p, q, pr, pc, qr, qc)
	}
	return nil
}

// klNormal is Σ_j log(σq/σp) + (σp² + (μp-μq)²)/(2σq²) - ½.
func klNormal(p, q Normal) *ad.Tensor {
	ratio := ad.Div(p.Scale, q.Scale)
	diff := ad.Div(ad.Sub(p.Loc, q.Loc), q.Scale)
	term := ad.Scale(ad.Add(ad.Square(ratio), ad.Square(diff)), 0.5)
	term = ad.Sub(term, ad.Log(ratio))
	rows, cols := shapeOf(term, p.Loc, p.Scale, q.Loc, q.Scale)
	term = ad.Sub(expand(term, rows, cols), term.Tape().Scalar(0.5))
	return ad.RowSum(term)
}

// klBernoulli is Σ_x P(x)(log P(x) - log Q(x)) over x in {0, 1}.
func klBernoulli(p, q Bernoulli) *ad.Tensor {
	var term *ad.Tensor
	if p.Logits != nil && q.Logits != nil {
		// With finite logits every term is finite: no masking needed.
		lp, lq := p.Logits, q.Logits
		one := ad.Mul(ad.Sigmoid(lp), ad.Sub(ad.LogSigmoid(lp), ad.LogSigmoid(lq)))
		zero := ad.Mul(ad.Sigmoid(ad.Neg(lp)), ad.Sub(ad.LogSigmoid(ad.Neg(lp)), ad.LogSigmoid(ad.Neg(lq))))
		term = ad.Add(one, zero)
	} else {
		p1, p0 := bernoulliBoth(p)
		q1, q0 := bernoulliBoth(q)
		term = ad.Add(ad.Sub(plogq(p1, p1), plogq(p1, q1)), ad.Sub(plogq(p0, p0), plogq(p0, q0)))
	}
	rows, cols := shapeOf(term, p.param(), q.param())
	return ad.RowSum(expand(term, rows, cols))
}

// bernoulliBoth returns P(1) and P(0), each computed directly so that
// neither loses precision by subtraction from 1 when it comes from logits.
func bernoulliBoth(d Bernoulli) (one, zero *ad.Tensor) {
	if l := d.Logits; l != nil {
		return ad.Sigmoid(l), ad.Sigmoid(ad.Neg(l))
	}
	return d.Probs, ad.Sub(d.Probs.Tape().Scalar(1), d.Probs)
}

// klCategorical is Σ_k p_k (log p_k - log q_k).
func klCategorical(lp, lq *ad.Tensor) *ad.Tensor {
	logP := ad.LogSoftmax(lp)
	term := ad.Mul(ad.Exp(logP), ad.Sub(logP, ad.LogSoftmax(lq)))
	rows, cols := shapeOf(term, lp, lq)
	return ad.RowSum(expand(term, rows, cols))
}
