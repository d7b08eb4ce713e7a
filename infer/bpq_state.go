package infer

import (
	"errors"
	"fmt"
	"sort"

	"github.com/backpropq/backpropq/internal/ckpt"
	"github.com/backpropq/backpropq/nn"
	"github.com/backpropq/backpropq/q"
)

// Params returns the baseline's parameters (mode QLocal); the critics
// train themselves.
func (e *BackpropQ) Params() []*nn.Param { return baselineParams(e.Baseline) }

// MarshalState returns the critics, the control variate's moments and the
// baseline's state.
func (e *BackpropQ) MarshalState() ([]byte, error) {
	crit, err := e.Critics.MarshalState()
	if err != nil {
		return nil, fmt.Errorf("infer: BackpropQ: %w", err)
	}
	base, err := baselineState(e.Baseline)
	if err != nil {
		return nil, fmt.Errorf("infer: BackpropQ: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var enc ckpt.Encoder
	enc.String(string(crit))
	enc.String(string(base))
	addrs := sortedKeys(e.moments)
	enc.Uint32(uint32(len(addrs)))
	for _, a := range addrs {
		m := e.moments[a]
		enc.String(a)
		enc.Float64s([]float64{m.r, m.q, m.rq, m.qq})
	}
	// The normalization statistics come last; a state written before
	// Normalize existed ends here.
	norms := sortedKeys(e.norm)
	enc.Uint32(uint32(len(norms)))
	for _, a := range norms {
		st := e.norm[a]
		enc.String(a)
		enc.Float64s([]float64{st.mean, st.variance})
	}
	return enc.Bytes(), nil
}

// UnmarshalState restores what MarshalState returned; on error nothing
// changes.
func (e *BackpropQ) UnmarshalState(data []byte) error {
	d := ckpt.NewDecoder("BackpropQ", data)
	crit := []byte(d.String())
	base := []byte(d.String())
	nb := len(base)
	cnt := d.Count(36)
	moments := make(map[string]cvMoments, cnt)
	for i := 0; i < cnt && d.Err() == nil; i++ {
		a := d.String()
		v := d.Float64s(4)
		if d.Err() == nil {
			moments[a] = cvMoments{v[0], v[1], v[2], v[3]}
		}
	}
	norm := map[string]nvilStats{}
	if d.Err() == nil && d.Remaining() > 0 {
		cnt := d.Count(20)
		for i := 0; i < cnt && d.Err() == nil; i++ {
			a := d.String()
			v := d.Float64s(2)
			if d.Err() == nil {
				norm[a] = nvilStats{mean: v[0], variance: v[1]}
			}
		}
	}
	if err := d.Finish(); err != nil {
		return fmt.Errorf("infer: %w", err)
	}
	m, hasBase := e.Baseline.(stateMarshaler)
	if !hasBase && nb != 0 {
		return errors.New("infer: BackpropQ: baseline state given to an estimator without a stateful baseline")
	}
	// Check the critics on a scratch set first, so nothing changes on error.
	scratch := q.NewSet(e.Critics.Config())
	if err := scratch.UnmarshalState(crit); err != nil {
		return fmt.Errorf("infer: BackpropQ: %w", err)
	}
	if hasBase {
		if err := m.UnmarshalState(base); err != nil {
			return fmt.Errorf("infer: BackpropQ: %w", err)
		}
	}
	if err := e.Critics.UnmarshalState(crit); err != nil {
		return fmt.Errorf("infer: BackpropQ: %w", err)
	}
	e.mu.Lock()
	e.moments, e.norm = moments, norm
	e.mu.Unlock()
	return nil
}

// sortedKeys returns the keys of m, sorted.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
