package dist

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
)

// klFamilyCases are pairs (p, q) of each family with a closed-form KL; p
// has n rows so that its sample estimates E_p[log p - log q].
func klFamilyCases(n int) []struct {
	name string
	pq   func(tp *ad.Tape) (Distribution, Distribution)
} {
	lp := []float64{1, 0, 0, 0.5, 0.8, 0, -0.3, 0.2, 0.6}
	lq := []float64{1.3, 0, 0, -0.2, 0.5, 0, 0.4, 0.1, 0.9}
	return []struct {
		name string
		pq   func(tp *ad.Tape) (Distribution, Distribution)
	}{
		{"LogNormal", func(tp *ad.Tape) (Distribution, Distribution) {
			return LogNormal{Loc: repeatRows(tp, n, 0.3, -1), Scale: row(tp, 1.2, 0.5)}, LogNormal{Loc: row(tp, 1, 0), Scale: tp.Scalar(0.8)}
		}},
		{"MultivariateNormalDiag", func(tp *ad.Tape) (Distribution, Distribution) {
			return &MultivariateNormalDiag{Loc: repeatRows(tp, n, 0.3, -1), Scale: row(tp, 1.2, 0.5)}, MultivariateNormalDiag{Loc: row(tp, 1, 0), Scale: tp.Scalar(0.8)}
		}},
		{"MultivariateNormal", func(tp *ad.Tape) (Distribution, Distribution) {
			return MultivariateNormal{Loc: repeatRows(tp, n, 0.3, -1, 2), ScaleTril: tp.FromData(3, 3, lp)},
				&MultivariateNormal{Loc: row(tp, 0, 0.5, 1.5), ScaleTril: tp.FromData(3, 3, lq)}
		}},
		{"Gamma", func(tp *ad.Tape) (Distribution, Distribution) {
			return Gamma{Concentration: repeatRows(tp, n, 0.5, 3), Rate: row(tp, 2, 0.7)}, Gamma{Concentration: row(tp, 1.5, 2), Rate: tp.Scalar(1)}
		}},
		{"Beta", func(tp *ad.Tape) (Distribution, Distribution) {
			return Beta{Alpha: repeatRows(tp, n, 0.5, 3), Beta: row(tp, 2, 0.7)}, Beta{Alpha: row(tp, 1.5, 2), Beta: tp.Scalar(1)}
		}},
		{"Dirichlet", func(tp *ad.Tape) (Distribution, Distribution) {
			return Dirichlet{Concentration: repeatRows(tp, n, 0.5, 3, 1.2)}, Dirichlet{Concentration: row(tp, 1.5, 2, 0.4)}
		}},
		{"Exponential", func(tp *ad.Tape) (Distribution, Distribution) {
			return Exponential{Rate: repeatRows(tp, n, 0.5, 3)}, Exponential{Rate: row(tp, 2, 0.7)}
		}},
		{"Poisson", func(tp *ad.Tape) (Distribution, Distribution) {
			return Poisson{Rate: repeatRows(tp, n, 0.5, 30)}, Poisson{Rate: row(tp, 2, 25)}
		}},
	}
}

// Each closed-form KL matches the Monte Carlo estimate E_p[log p - log q]
// within kSE standard errors, and KL(p, p) = 0.
func TestFamilyKLAgreesWithMonteCarlo(t *testing.T) {
	const n = 20000
	for _, c := range klFamilyCases(n) {
		t.Run(c.name, func(t *testing.T) {
			tp := ad.NewTape()
			p, q := c.pq(tp)
			kl, err := KL(p, q)
			require.NoError(t, err)
			require.Equal(t, []int{n, 1}, []int{kl.Rows(), kl.Cols()})
			x := p.Sample(newRNG())
			s := statsOf(ad.Sub(p.LogProb(x), q.LogProb(x)).Data())
			require.InDelta(t, s.mean, kl.At(0, 0), kSE*math.Sqrt(s.variance/n)+1e-12)
			self, err := KL(q, q)
			require.NoError(t, err)
			require.InDelta(t, 0, self.At(0, 0), 1e-12, "KL(q, q)")
		})
	}
}

// The gradients of each KL in every parameter of both arguments match
// finite differences.
func TestFamilyKLGradients(t *testing.T) {
	for _, c := range klFamilyCases(2) {
		t.Run(c.name, func(t *testing.T) {
			// Bind each parameter tensor of the case to a Var by rebuilding
			// the pair from Vars holding the same values.
			tp := ad.NewTape()
			p, q := c.pq(tp)
			vars, rebuild := paramVars(p, q)
			checkGradients(t, vars, func(tp *ad.Tape, ts []*ad.Tensor) *ad.Tensor {
				kl, err := KL(rebuild(ts))
				require.NoError(t, err)
				return weighted(kl)
			})
		})
	}
}

// paramVars returns Vars holding the parameters of p and q (in the order
// of their ParamConstraints names, sorted) and a function rebuilding the
// pair from tensors bound to them.
func paramVars(p, q Distribution) ([]*ad.Var, func([]*ad.Tensor) (Distribution, Distribution)) {
	p, q = deref(p), deref(q)
	pv, pb := fieldsOf(p)
	qv, qb := fieldsOf(q)
	return append(pv, qv...), func(ts []*ad.Tensor) (Distribution, Distribution) {
		return pb(ts[:len(pv)]), qb(ts[len(pv):])
	}
}

func fieldsOf(d Distribution) ([]*ad.Var, func([]*ad.Tensor) Distribution) {
	v := func(t *ad.Tensor) *ad.Var {
		r, c := t.Dims()
		return newVar(r, c, append([]float64(nil), t.Data()...)...)
	}
	switch d := d.(type) {
	case LogNormal:
		return []*ad.Var{v(d.Loc), v(d.Scale)}, func(t []*ad.Tensor) Distribution { return LogNormal{t[0], t[1]} }
	case MultivariateNormalDiag:
		return []*ad.Var{v(d.Loc), v(d.Scale)}, func(t []*ad.Tensor) Distribution { return MultivariateNormalDiag{t[0], t[1]} }
	case MultivariateNormal:
		return []*ad.Var{v(d.Loc), v(d.ScaleTril)}, func(t []*ad.Tensor) Distribution { return MultivariateNormal{t[0], t[1]} }
	case Gamma:
		return []*ad.Var{v(d.Concentration), v(d.Rate)}, func(t []*ad.Tensor) Distribution { return Gamma{t[0], t[1]} }
	case Beta:
		return []*ad.Var{v(d.Alpha), v(d.Beta)}, func(t []*ad.Tensor) Distribution { return Beta{t[0], t[1]} }
	case Dirichlet:
		return []*ad.Var{v(d.Concentration)}, func(t []*ad.Tensor) Distribution { return Dirichlet{t[0]} }
	case Exponential:
		return []*ad.Var{v(d.Rate)}, func(t []*ad.Tensor) Distribution { return Exponential{t[0]} }
	case Poisson:
		return []*ad.Var{v(d.Rate)}, func(t []*ad.Tensor) Distribution { return Poisson{t[0]} }
	}
	panic(fmt.Sprintf("fieldsOf: %T", d))
}

func TestFamilyKLErrors(t *testing.T) {
	tp := ad.NewTape()
	l := tp.FromData(2, 2, []float64{1, 0, 0, 1})
	_, err := KL(MultivariateNormal{Loc: row(tp, 0, 0), ScaleTril: l}, MultivariateNormal{Loc: row(tp, 0), ScaleTril: tp.Scalar(1)})
	require.ErrorContains(t, err, "event sizes 2 and 1 differ")
	_, err = KL(Gamma{Concentration: tp.Scalar(1), Rate: tp.Scalar(1)}, Beta{Alpha: tp.Scalar(1), Beta: tp.Scalar(1)})
	require.ErrorIs(t, err, ErrNoKL)
	_, err = KL(Gamma{Rate: tp.Scalar(1)}, Gamma{Concentration: tp.Scalar(1), Rate: tp.Scalar(1)})
	require.ErrorContains(t, err, "nil parameter")
	other := ad.NewTape()
	_, err = KL(Beta{Alpha: tp.Scalar(1), Beta: other.Scalar(1)}, Beta{Alpha: tp.Scalar(1), Beta: tp.Scalar(1)})
	require.ErrorContains(t, err, "different tapes")
	var nilGamma *Gamma
	_, err = KL(nilGamma, Gamma{Concentration: tp.Scalar(1), Rate: tp.Scalar(1)})
	require.ErrorIs(t, err, ErrNoKL)
}
