package infer

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
	"github.com/backpropq/backpropq/q"
)

// cvMoments are running moments of the return R and the critic's value Q
// of one site: means of R, Q, R·Q and Q².
type cvMoments struct {
	r, q, rq, qq float64
}

// coefficients returns a = Cov(R, Q)/Var(Q) and b = E[R] - a·E[Q].
func (m cvMoments) coefficients() (a, b float64) {
	v := m.qq - m.q*m.q
	if v > 1e-12 {
		a = (m.rq - m.r*m.q) / v
	}
	return a, m.r - a*m.q
}

// Coefficients returns the a and b of the control variate of the site at
// addr (mode QControlVariate) that the next step will use; a is zero
// before the first step and with NoCritics, and b is zero with
// LeaveOneOut, whose baseline takes its place.
func (e *QControlVariate) Coefficients(addr string) (a, b float64) {
	e.sites.mu.Lock()
	defer e.sites.mu.Unlock()
	m, ok := e.moments[addr]
	if !ok {
		return 0, 0
	}
	a, b = m.coefficients()
	if e.NoCritics {
		a, b = 0, m.r
	}
	if e.LeaveOneOut != 0 {
		b = 0
	}
	return a, b
}

// maxEnumBits bounds the columns of a Bernoulli site whose values mode
// QControlVariate enumerates.
const maxEnumBits = 12

// controlVariate is mode QControlVariate: the centered signal R - D -
// a·Q - b, the correction term of the enumerated or local-expectation
// form (per row, extra) or of the relaxed pairs ([1 x 1], post, already
// masked), and the commit of the running moments.
func (e *QControlVariate) controlVariate(sc *SiteContext, ev *qEval) (modeTerm, error) {
	s := sc.Site
	rows := s.LogProb.Rows()
	if err := e.checkLocalExpectation(s); err != nil {
		return modeTerm{}, err
	}
	decay := e.Decay
	if decay == 0 {
		decay = 0.95
	}
	if !(decay > 0 && decay < 1) {
		return modeTerm{}, fmt.Errorf("BackpropQ: decay must be in [0, 1), got %v", e.Decay)
	}
	relaxed, direct := e.relaxedForm(s), directCosts(ev.net, s.Addr)
	var rc *relaxedQ
	if relaxed || len(direct) > 0 {
		var err error
		if rc, err = e.relaxedPair(sc, ev, relaxed && !e.NoCritics, direct); err != nil {
			return modeTerm{}, err
		}
	}
	r, local := sc.Signal.Data(), make([]float64, rows)
	switch {
	case relaxed && rc.czt != nil:
		copy(local, rc.czt.Data())
	case !relaxed:
		for _, ref := range ev.net.Local(s.Addr) {
			if ref.IsCost() {
				continue
			}
			for i, v := range ev.vals.Q[ref.Node] {
				local[i] += v
			}
		}
	}
	if rc != nil && rc.dzt != nil {
		// The direct costs enter the control variate exactly, with
		// coefficient 1: the critics fit what remains of the return.
		r = append([]float64(nil), r...)
		for i, v := range rc.dzt.Data() {
			r[i] -= v
		}
	}
	if e.LeaveOneOut != 0 {
		var err error
		if r, local, err = e.leaveOneOut(sc, r, local); err != nil {
			return modeTerm{}, err
		}
	}
	a, b := e.Coefficients(s.Addr)
	// A critic first seen in this step is not in the set yet; it gets
	// a = 0 (plain REINFORCE with baseline b) until it is.
	if !e.known(ev, s.Addr) {
		a = 0
	}
	centered := make([]float64, rows)
	for i := range centered {
		centered[i] = r[i] - a*local[i] - b
	}
	mt := modeTerm{signal: s.LogProb.Tape().FromData(rows, 1, centered)}
	if rc != nil {
		mt.post = rc.correction(s, a)
	}
	if a != 0 && !relaxed {
		expected := e.expectedQ
		if e.LocalExpectation {
			expected = e.localExpectation
		}
		extra, err := expected(sc, ev)
		if err != nil {
			return modeTerm{}, err
		}
		if extra != nil {
			mt.extra = ad.Scale(extra, a)
		}
	}
	mt.commit = e.commitMoments(s.Addr, momentsOf(r, local), decay)
	return mt, nil
}

// leaveOneOut returns the return r and the critic values local of the
// site's rows, each less the mean of the other samples of its data point
// (see [RLOO]): the signal R - a·Q centered by its leave-one-out baseline
// is their combination, since the baseline is linear.
func (e *QControlVariate) leaveOneOut(sc *SiteContext, r, local []float64) (dr, dq []float64, err error) {
	loo := RLOO{K: e.LeaveOneOut}
	tp := sc.Site.LogProb.Tape()
	centered := make([][]float64, 2)
	for i, v := range [][]float64{r, local} {
		c, err := loo.leaveOneOut(sc, tp.FromData(len(v), 1, v))
		if err != nil {
			return nil, nil, fmt.Errorf("BackpropQ: control variate: site %q: leave-one-out baseline: %w", sc.Site.Addr, err)
		}
		centered[i] = c.Data()
	}
	return centered[0], centered[1], nil
}

// momentsOf returns the means of R, Q, R·Q and Q² over the rows.
func momentsOf(r, local []float64) cvMoments {
	var cur cvMoments
	for i := range r {
		cur.r += r[i]
		cur.q += local[i]
		cur.rq += r[i] * local[i]
		cur.qq += local[i] * local[i]
	}
	n := float64(len(r))
	return cvMoments{cur.r / n, cur.q / n, cur.rq / n, cur.qq / n}
}

// commitMoments returns the commit that folds the step's moments cur of
// the site at addr into its running moments.
func (e *QControlVariate) commitMoments(addr string, cur cvMoments, decay float64) func() {
	return func() {
		e.sites.mu.Lock()
		defer e.sites.mu.Unlock()
		if e.moments == nil {
			e.moments = map[string]cvMoments{}
		}
		if old, ok := e.moments[addr]; ok {
			cur = cvMoments{
				decay*old.r + (1-decay)*cur.r,
				decay*old.q + (1-decay)*cur.q,
				decay*old.rq + (1-decay)*cur.rq,
				decay*old.qq + (1-decay)*cur.qq,
			}
		}
		e.moments[addr] = cur
	}
}

// relaxedForm reports whether mode QControlVariate uses the relaxed form
// for site s: always with Relaxed, never with LocalExpectation, otherwise
// for a Bernoulli site too wide to enumerate.
func (e *QControlVariate) relaxedForm(s *ppl.Site) bool {
	if e.Relaxed || e.LocalExpectation {
		return e.Relaxed
	}
	f, ok := s.Dist.(dist.Finite)
	return ok && f.Encoding() == dist.Binary && s.Value.Cols() > maxEnumBits
}

// relaxedQ holds the site's critics and direct costs evaluated at the two
// relaxed samples of the relaxed forms.
type relaxedQ struct {
	rx relaxation
	// cz and czt are Σ Q_X(soft(z)) and Σ Q_X(soft(z~)) over the site's
	// Q-nodes, per row of the site, nil when the form is not relaxed or
	// the site has no Q-node.
	cz, czt *ad.Tensor
	// dz and dzt are the site's direct costs at soft(z) and soft(z~), nil
	// when it has none.
	dz, dzt *ad.Tensor
}

// relaxedPair draws z (with the unconditional reparameterization's
// gradient path) and z~ ~ p(z | b) for the site's value b, and evaluates
// at their relaxations the site's critics when critics is set (on the
// site's tape) and its direct costs (by re-running the objective).
func (e *QControlVariate) relaxedPair(sc *SiteContext, ev *qEval, critics bool, direct []string) (*relaxedQ, error) {
	s := sc.Site
	rx, err := newRelaxation(s.Dist)
	if err != nil {
		return nil, fmt.Errorf("BackpropQ: control variate: site %q: relaxed form: %w", s.Addr, err)
	}
	temp := e.Temperature
	if temp == 0 {
		temp = 0.5
	}
	if !(temp > 0) || math.IsInf(temp, 0) {
		return nil, fmt.Errorf("BackpropQ: control variate: site %q: temperature must be > 0 and finite, got %v", s.Addr, e.Temperature)
	}
	tp := s.LogProb.Tape()
	z := rx.reparam(rx.d.ConditionalRelaxedSample(s.Value, sc.Rand))
	zt := rx.d.ConditionalRelaxedSample(s.Value, sc.Rand)
	tt := tp.Scalar(temp)
	soft, softT := rx.soft(z, tt), rx.soft(zt, tt)
	rc := &relaxedQ{rx: rx}
	if critics {
		if rc.cz, err = e.relaxedCritics(sc, ev, soft); err != nil {
			return nil, err
		}
		if rc.czt, err = e.relaxedCritics(sc, ev, softT); err != nil {
			return nil, err
		}
	}
	if len(direct) > 0 {
		if err := rx.substitutable("direct costs"); err != nil {
			return nil, fmt.Errorf("BackpropQ: control variate: site %q: %w", s.Addr, err)
		}
		if rc.dz, err = ev.directAt(sc, direct, soft); err != nil {
			return nil, err
		}
		if rc.dzt, err = ev.directAt(sc, direct, softT); err != nil {
			return nil, err
		}
	}
	return rc, nil
}

// relaxedCritics returns the sum of the site's Q-nodes' critics with the
// site's value replaced by value, the rest of the scope fixed, on the
// site's tape; nil when the site has no Q-node.
func (e *QControlVariate) relaxedCritics(sc *SiteContext, ev *qEval, value *ad.Tensor) (*ad.Tensor, error) {
	s := sc.Site
	vals := map[string]*ad.Tensor{s.Addr: value}
	e.Critics.mu.Lock()
	defer e.Critics.mu.Unlock()
	var total *ad.Tensor
	for _, ref := range ev.net.Local(s.Addr) {
		if ref.IsCost() {
			continue
		}
		qv, err := ev.vals.Forward(ev.net, sc.Trace, ref.Node, vals)
		if err != nil {
			return nil, fmt.Errorf("BackpropQ: control variate: site %q: relaxed form: %w", s.Addr, err)
		}
		total = addOrNil(total, qv)
	}
	return total, nil
}

// correction returns the relaxed pairs' pathwise term Σ (a·(Q_X(z) -
// Q_X(z~)) + D(z) - D(z~)) over the rows the site's mask keeps, as a [1 x
// 1] loss whose gradient reaches the site's distribution parameter (and
// what it is computed from) and nothing else: not the critics' weights,
// nor the model's parameters in the direct costs, nor the other scope
// values. It is nil when there is nothing to correct.
func (rc *relaxedQ) correction(s *ppl.Site, a float64) *ad.Tensor {
	var diff *ad.Tensor
	if rc.cz != nil && a != 0 {
		diff = ad.Scale(ad.Sub(rc.cz, rc.czt), a)
	}
	if rc.dz != nil {
		diff = addOrNil(diff, ad.Sub(rc.dz, rc.dzt))
	}
	if diff == nil {
		return nil
	}
	total := ad.Sum(rowMask(s, diff))
	g := total.Tape().Gradients(total, rc.rx.param)[0]
	return linearTerm(rc.rx.param, g)
}

// expectedQ returns Σ_x' p(x') stopgrad(Q(x')), per row of the site, summing over
// the values x' of the site at each row with the other scope values fixed;
// nil when the critics do not read the site's value (Q(x') = Q(x)).
func (c *Critics) expectedQ(sc *SiteContext, ev *qEval) (*ad.Tensor, error) {
	s := sc.Site
	tp := s.LogProb.Tape()
	rows := s.LogProb.Rows()
	nodes, kind, width := c.siteColumns(s.Addr, ev)
	if kind == 0 {
		// The critics do not read the site's value: Q(x') = Q(x) for every
		// x', and the correction a·Q·∇Σp(x') is zero.
		return nil, nil
	}
	if kind == q.Binary && width > maxEnumBits {
		return nil, fmt.Errorf("BackpropQ: control variate: site %q has %d columns, at most %d are enumerated", s.Addr, width, maxEnumBits)
	}
	alts, values := alternatives(kind, width, s.Value.Cols())
	c.mu.Lock()
	qs := predictAlternatives(nodes, alts, rows)
	c.mu.Unlock()
	var total *ad.Tensor
	for k := range alts {
		v := values[k]
		val := tp.FromData(1, len(v), v)
		if rows > 1 {
			val = ad.Add(tp.Zeros(rows, len(v)), val)
		}
		p := ad.Exp(s.Dist.LogProb(val))
		term := ad.Mul(p, tp.FromData(rows, 1, qs[k]))
		total = addOrNil(total, term)
	}
	return total, nil
}

// nodeCols is one critic of a site's total local cost, with its input
// rows and where the site's value sits in them.
type nodeCols struct {
	critic q.Critic
	// x is the critics' evaluation's own matrix: read only. A critic
	// that is not a q.VariantPredictor or q.FlipPredictor is evaluated
	// at other values of the site on a copy.
	x     *mat.Dense
	from  int
	found bool
}

// siteColumns finds the site's columns in the input of each critic of its
// total local cost, and the kind and width of the site's field (kind 0
// when no critic reads the site's value as a discrete field).
func (c *Critics) siteColumns(addr string, ev *qEval) (nodes []nodeCols, kind q.FieldKind, width int) {
	for _, ref := range ev.net.Local(addr) {
		if ref.IsCost() {
			continue // an inlined cost is no critic
		}
		nd := ev.net.Nodes[ref.Node]
		critic := c.Set.Critic(c.Set.Key(nd))
		nodes = append(nodes, nodeCols{critic: critic, x: ev.vals.Inputs(ref.Node)})
		j := len(nodes) - 1
		name := c.Set.FieldName(nd, addr) // a template's critic names it relatively
		col := 0
		for _, f := range critic.Layout().Fields {
			if f.Addr == name && (f.Kind == q.Binary || f.Kind == q.OneHot) {
				nodes[j].from, nodes[j].found = col, true
				kind, width = f.Kind, f.Width
				break
			}
			col += f.Width
		}
	}
	return nodes, kind, width
}

// alternatives returns every value of a site whose critic field has the
// given kind and width: as the field's columns in a critic input (alts)
// and as the site's value (values; a class index when the site's value
// has one column, valueCols, and its field is one-hot).
func alternatives(kind q.FieldKind, width, valueCols int) (alts, values [][]float64) {
	switch kind {
	case q.Binary:
		for k := 0; k < 1<<width; k++ {
			bits := make([]float64, width)
			for c := range bits {
				bits[c] = float64(k >> c & 1)
			}
			alts = append(alts, bits)
			values = append(values, bits)
		}
	case q.OneHot:
		for k := 0; k < width; k++ {
			oh := make([]float64, width)
			oh[k] = 1
			alts = append(alts, oh)
			if valueCols == 1 {
				values = append(values, []float64{float64(k)})
			} else {
				values = append(values, oh)
			}
		}
	}
	return alts, values
}

// predictAlternatives returns qs[k][i], the sum over nodes of the critics
// at row i with the site's columns set to alternative k. A NetCritic's
// Predict uses its own tape: the caller holds the critics' lock.
func predictAlternatives(nodes []nodeCols, alts [][]float64, rows int) [][]float64 {
	qs := make([][]float64, len(alts))
	preds := make([][]float64, len(alts))
	for k := range alts {
		qs[k] = make([]float64, rows)
		preds[k] = make([]float64, rows)
	}
	for _, nd := range nodes {
		switch vp, ok := nd.critic.(q.VariantPredictor); {
		case !nd.found:
			nd.critic.Predict(nd.x, preds[0])
			for k := 1; k < len(alts); k++ {
				copy(preds[k], preds[0])
			}
		case ok:
			vp.PredictVariants(nd.x, nd.from, alts, preds)
		default:
			nd.x = mat.DenseCopyOf(nd.x)
			for k, alt := range alts {
				for i := 0; i < rows; i++ {
					copy(nd.x.RawRowView(i)[nd.from:], alt)
				}
				nd.critic.Predict(nd.x, preds[k])
			}
		}
		for k := range alts {
			for i, v := range preds[k] {
				qs[k][i] += v
			}
		}
	}
	return qs
}
