package q

// slowTarget is the slow-tracking target of appendix 4.3 for one critic.
// For each parameter it keeps theta_t, the weights of the target copy, and
// dtheta_t, so that the learned weights are theta_t + dtheta_t. Each new
// change Delta of the learned weights is added to dtheta_t; then theta_t
// moves by alpha*dtheta_t and dtheta_t shrinks by (1 - alpha):
//
//	dtheta_{t+1} <- dtheta_t + Delta
//	theta_{t+1}  <- theta_t + alpha*dtheta_{t+1}
//	dtheta_{t+1} <- (1 - alpha)*dtheta_{t+1}
type slowTarget struct {
	alpha  float64
	target Critic
	delta  [][]float64
}

func newSlowTarget(c Critic, alpha float64) *slowTarget {
	st := &slowTarget{alpha: alpha, target: c.Clone()}
	for _, w := range c.Weights() {
		st.delta = append(st.delta, make([]float64, len(w)))
	}
	return st
}

// restored returns an independent copy of st with the given alpha (the
// set's configuration wins over a saved one).
func (st *slowTarget) restored(alpha float64) *slowTarget {
	c := &slowTarget{alpha: alpha, target: st.target.Clone()}
	for _, d := range st.delta {
		c.delta = append(c.delta, append([]float64(nil), d...))
	}
	return c
}

// track applies one step after the learned critic c changed.
func (st *slowTarget) track(c Critic) {
	if tab, ok := c.(*Tabular); ok {
		st.target.(*Tabular).growFrom(tab)
	}
	learned := c.Weights()
	theta := st.target.Weights()
	for i, w := range learned {
		for len(st.delta[i]) < len(w) {
			st.delta[i] = append(st.delta[i], 0)
		}
		d := st.delta[i]
		th := theta[i]
		for j := range w {
			change := w[j] - (th[j] + d[j]) // the new Delta
			d[j] += change
			th[j] += st.alpha * d[j]
			d[j] *= 1 - st.alpha
		}
	}
}

// growFrom adds the cells of src that t lacks, with value zero (the value a
// cell has before its first update), keeping src's cell order.
func (t *Tabular) growFrom(src *Tabular) {
	if len(t.values) >= len(src.values) {
		return
	}
	keys := make([]uint64, len(src.values))
	for k, i := range src.cells {
		keys[i] = k
	}
	for i := len(t.values); i < len(src.values); i++ {
		t.cells[keys[i]] = i
		t.values = append(t.values, 0)
		t.counts = append(t.counts, 0)
	}
}

// Slow returns the slow-tracking target copy of the critic of key, or nil
// when the set has none ([Config].SlowTarget is zero) or no such critic.
func (s *Set) Slow(key string) Critic {
	if e, ok := s.critics[key]; ok && e.slow != nil {
		return e.slow.target
	}
	return nil
}
