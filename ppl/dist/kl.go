package dist

import (
	"fmt"
	"reflect"

	"github.com/backpropq/backpropq/ad"
)

// KL returns the Kullback-Leibler divergence KL(p ‖ q) = E_p[log p - log q]
// summed over the event's columns, as [B x 1] with B the larger batch of
// the two. It is differentiable in the parameters of both.
//
// Closed forms exist for pairs of the same family: Normal, LogNormal,
// MultivariateNormal, MultivariateNormalDiag, Gamma, Beta, Dirichlet,
// Exponential, Poisson, Bernoulli (either parameterization), Categorical
// and OneHotCategorical, each given as a value or a pointer. For any
// other pair KL returns an error wrapping [ErrNoKL] that names both
// types; it also returns an error when the shapes do not broadcast (for
// the multivariate families, when the event sizes differ) or the
// parameters live on different tapes. KL does not validate the
// parameters.
func KL(p, q Distribution) (*ad.Tensor, error) {
	p, q = deref(p), deref(q)
	if f, ok := klTable[[2]reflect.Type{reflect.TypeOf(p), reflect.TypeOf(q)}]; ok {
		return f(p, q)
	}
	return nil, fmt.Errorf("dist: KL(%T, %T): %w", p, q, ErrNoKL)
}

// klFunc computes KL(p ‖ q) for one pair of types, checking compatibility.
type klFunc func(p, q Distribution) (*ad.Tensor, error)

// klTable holds the closed forms by the concrete types of p and q.
var klTable = map[[2]reflect.Type]klFunc{}

// registerKL adds the closed form f for P and Q; params returns the
// parameters of each (the first one's shape is compared for Categorical),
// to check that none is nil and all share a tape; event says the columns
// are one event, whose sizes must then be equal.
func registerKL[P, Q Distribution](params func(Distribution) klParams, event bool, f func(P, Q) *ad.Tensor) {
	var p P
	var q Q
	klTable[[2]reflect.Type{reflect.TypeOf(p), reflect.TypeOf(q)}] = func(p, q Distribution) (*ad.Tensor, error) {
		pp, qp := params(p), params(q)
		if err := klCompatible(pp.t[:pp.n], qp.t[:qp.n], p, q); err != nil {
			return nil, err
		}
		if _, pc := p.Shape(); event {
			if _, qc := q.Shape(); pc != qc {
				return nil, fmt.Errorf("dist: KL(%T, %T): event sizes %d and %d differ", p, q, pc, qc)
			}
		}
		return f(p.(P), q.(Q)), nil
	}
}

func init() {
	registerKL(func(d Distribution) klParams { return tensors(d.(Normal).Loc, d.(Normal).Scale) }, false, klNormal)
	registerKL(func(d Distribution) klParams { return tensors(d.(Bernoulli).param()) }, false, klBernoulli)
	registerKL(func(d Distribution) klParams { return tensors(d.(Categorical).Logits) }, false, func(p, q Categorical) *ad.Tensor {
		return klCategorical(p.Logits, q.Logits)
	})
	registerKL(func(d Distribution) klParams { return tensors(d.(OneHotCategorical).Logits) }, true, func(p, q OneHotCategorical) *ad.Tensor {
		return klCategorical(p.Logits, q.Logits)
	})
	registerFamilyKLs()
}

// klParams are the parameters of a distribution that KL checks.
type klParams struct {
	t [2]*ad.Tensor
	n int
}

// tensors returns the parameters ts, at most two.
func tensors(ts ...*ad.Tensor) klParams {
	if len(ts) > 2 {
		panic("dist: a KL closed form checks at most two parameters")
	}
	var p klParams
	p.n = copy(p.t[:], ts)
	return p
}

// deref returns the value a pointer to a distribution points to (nil for
// a nil pointer), and any other distribution unchanged.
func deref(d Distribution) Distribution {
	v := reflect.ValueOf(d)
	if v.Kind() != reflect.Pointer {
		return d
	}
	if v.IsNil() {
		return nil
	}
	if e, ok := v.Elem().Interface().(Distribution); ok {
		return e
	}
	return d
}

// klCompatible reports nil parameters, parameters on different tapes and
// parameter shapes that do not broadcast; ps and qs are the parameters of
// p and of q, and Categorical is compared by its logits' shape.
func klCompatible(ps, qs []*ad.Tensor, p, q Distribution) error {
	for _, all := range [2][]*ad.Tensor{ps, qs} {
		for _, t := range all {
			if t == nil {
				return fmt.Errorf("dist: KL(%T, %T): nil parameter", p, q)
			}
		}
	}
	for _, all := range [2][]*ad.Tensor{ps, qs} {
		for _, t := range all {
			if t.Tape() != ps[0].Tape() {
				return fmt.Errorf("dist: KL(%T, %T): parameters on different tapes", p, q)
			}
		}
	}
	a, b := ps[0], qs[0]
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
