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
	// The replay buffers follow, with Replay only.
	if e.Replay != nil {
		if err := e.Critics.marshalBuffers(&enc); err != nil {
			return nil, fmt.Errorf("infer: BackpropQ: %w", err)
		}
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
	var buffers map[string]*q.Buffer
	if d.Err() == nil && d.Remaining() > 0 {
		if e.Replay == nil {
			return errors.New("infer: BackpropQ: replay buffers given to critics without Replay")
		}
		buffers = decodeBuffers(d)
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
	e.Critics.mu.Lock()
	e.Critics.buffers = buffers
	e.Critics.mu.Unlock()
	return nil
}

// marshalBuffers writes the replay buffers, by shape in sorted order.
func (c *Critics) marshalBuffers(enc *ckpt.Encoder) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	shapes := sortedKeys(c.buffers)
	enc.Uint32(uint32(len(shapes)))
	for _, sh := range shapes {
		data, err := c.buffers[sh].MarshalBinary()
		if err != nil {
			return err
		}
		enc.String(sh)
		enc.String(string(data))
	}
	return nil
}

// decodeBuffers reads what marshalBuffers wrote.
func decodeBuffers(d *ckpt.Decoder) map[string]*q.Buffer {
	buffers := map[string]*q.Buffer{}
	cnt := d.Count(8)
	for i := 0; i < cnt && d.Err() == nil; i++ {
		sh, data := d.String(), d.String()
		if d.Err() != nil {
			break
		}
		var b q.Buffer
		if err := b.UnmarshalBinary([]byte(data)); err != nil {
			d.Fail("replay buffer %d: %v", i, err)
			break
		}
		if b.Shape() != sh {
			d.Fail("replay buffer %d holds traces of another shape", i)
			break
		}
		buffers[sh] = &b
	}
	return buffers
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
