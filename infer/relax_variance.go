package infer

import (
	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
)

// relaxTerms are the gated parts of RELAX's control variate
// c = m + Σ_k gate_k·(v_k - m), each part with its values at z and z~,
// [B x 1], and m the running mean of the cost. The estimate is linear in
// the gates,
//
//	ĝ = A - Σ_k gate_k·B_k,  A = (f - m)·s,  B_k = (v_k(z~) - m)·s - ∇v_k(z) + ∇v_k(z~)
//
// with s = ∇ log p(b), so the variance objective E‖ĝ‖² is a quadratic in
// the gates, minimized by the solution of G·gate = r with G_jk =
// E⟨B_j, B_k⟩ and r_k = E⟨A, B_k⟩. RELAX keeps running means of G and r
// (moments, updated after each successful step) and uses the gates that
// minimize them, which depend on earlier steps only.
type relaxTerms struct {
	site    *ppl.Site
	param   *ad.Tensor
	mean    *ad.Tensor
	atZ     []*ad.Tensor
	atTilde []*ad.Tensor
}

// add appends the part v, with its values vz at z and vzt at z~.
func (c *relaxTerms) add(vz, vzt *ad.Tensor) {
	c.atZ = append(c.atZ, vz)
	c.atTilde = append(c.atTilde, vzt)
}

// grad returns the gradient of the sum of x's unmasked rows with respect
// to the distribution's parameter tensor.
func (c *relaxTerms) grad(x *ad.Tensor) *mat.Dense {
	return x.Tape().Gradients(ad.Sum(rowMask(c.site, x)), c.param)[0]
}

// estimate returns ĝ with the gates that minimize the variance objective
// of the running moments (see solveGates), the moments of this step, and
// the term's signal f - c(z~).
func (c *relaxTerms) estimate(f *ad.Tensor, moments []float64) (ghat *mat.Dense, step []float64, signal *ad.Tensor) {
	k := len(c.atZ)
	logp := c.site.LogProb
	a := c.grad(ad.Mul(logp, ad.StopGradient(ad.Sub(f, c.mean))))
	parts := make([]*mat.Dense, k)
	centered := make([]*ad.Tensor, k)
	for i := range parts {
		centered[i] = ad.StopGradient(ad.Sub(c.atTilde[i], c.mean))
		parts[i] = c.grad(ad.Add(ad.Sub(ad.Mul(logp, centered[i]), c.atZ[i]), c.atTilde[i]))
	}
	gates := solveGates(moments, k)
	ghat = mat.DenseCopyOf(a)
	cv := c.mean
	for i, g := range gates {
		addScaled(ghat, -g, parts[i])
		cv = ad.Add(cv, ad.Scale(centered[i], g))
	}
	step = make([]float64, k*k+2*k+1)
	step[k*k+2*k] = 1
	for i := range parts {
		for j := range parts {
			step[i*k+j] = mat.Sum(mulElem(parts[i], parts[j]))
		}
		step[k*k+i] = mat.Sum(mulElem(a, parts[i]))
		step[k*k+k+i] = step[k*k+i] * step[k*k+i]
	}
	return ghat, step, ad.StopGradient(ad.Sub(f, cv))
}

// solveGates returns the gates that minimize the variance objective of the
// running moments m (G, k x k, then r, then q_i = E[⟨A, B_i⟩²], then the
// total weight w of the running means, which decay by momentDecay): the
// solution of (G + εI)·gate = r with a small ridge ε, over the parts whose
// r_i is significant, t_i² = n·r_i²/q_i ≥ 4 (two standard errors) with n =
// w/(1 - momentDecay) the number of steps the means hold: a gate fitted to
// noise adds variance, and the pathwise terms' products are heavy-tailed.
// The others get 0. It returns zeros before the means hold half their
// weight.
func solveGates(m []float64, k int) []float64 {
	gates := make([]float64, k)
	w := m[len(m)-1]
	if w < 0.5 {
		return gates
	}
	n := w / (1 - momentDecay)
	var active []int
	for i := 0; i < k; i++ {
		r, q := m[k*k+i], m[k*k+k+i]
		if q > 0 && n*r*r >= 4*q {
			active = append(active, i)
		}
	}
	if len(active) == 0 {
		return gates
	}
	g := mat.NewDense(len(active), len(active), nil)
	r := mat.NewVecDense(len(active), nil)
	ridge := 1e-300
	for a, i := range active {
		ridge += 1e-6 * m[i*k+i]
		r.SetVec(a, m[k*k+i])
		for b, j := range active {
			g.Set(a, b, m[i*k+j])
		}
	}
	for a := range active {
		g.Set(a, a, g.At(a, a)+ridge)
	}
	var gate mat.VecDense
	if err := gate.SolveVec(g, r); err != nil {
		return gates
	}
	for a, i := range active {
		gates[i] = gate.AtVec(a)
	}
	return gates
}

// addScaled sets dst to dst + a·x.
func addScaled(dst *mat.Dense, a float64, x *mat.Dense) {
	var t mat.Dense
	t.Scale(a, x)
	dst.Add(dst, &t)
}

// mulElem returns the element-wise product of a and b.
func mulElem(a, b *mat.Dense) *mat.Dense {
	var out mat.Dense
	out.MulElem(a, b)
	return &out
}
