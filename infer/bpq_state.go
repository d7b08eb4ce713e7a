package infer

import (
	"errors"
	"fmt"
	"sort"

	"github.com/backpropq/backpropq/internal/ckpt"
	"github.com/backpropq/backpropq/q"
)

// The three Backprop-Q estimators save one layout: the critics, the
// baseline's state (QLocal's), the control variate's moments
// (QControlVariate's), the normalization statistics, and with Replay the
// replay buffers.

// MarshalState returns the critics, the baseline's state and the
// normalization statistics.
func (e *QLocal) MarshalState() ([]byte, error) {
	e.sites.mu.Lock()
	defer e.sites.mu.Unlock()
	return marshalQ(e.Critics, e.Baseline, nil, e.sites.norm)
}

// MarshalState returns the critics, the control variate's moments and the
// normalization statistics.
func (e *QControlVariate) MarshalState() ([]byte, error) {
	e.sites.mu.Lock()
	defer e.sites.mu.Unlock()
	return marshalQ(e.Critics, nil, e.moments, e.sites.norm)
}

// MarshalState returns the critics and the normalization statistics.
func (e *QAdvantage) MarshalState() ([]byte, error) {
	e.sites.mu.Lock()
	defer e.sites.mu.Unlock()
	return marshalQ(e.Critics, nil, nil, e.sites.norm)
}

// UnmarshalState restores what MarshalState returned; on error nothing
// changes.
func (e *QLocal) UnmarshalState(data []byte) error {
	return e.sites.restore(e.Critics, e.Baseline, nil, data)
}

// UnmarshalState restores what MarshalState returned; on error nothing
// changes.
func (e *QControlVariate) UnmarshalState(data []byte) error {
	return e.sites.restore(e.Critics, nil, &e.moments, data)
}

// UnmarshalState restores what MarshalState returned; on error nothing
// changes.
func (e *QAdvantage) UnmarshalState(data []byte) error {
	return e.sites.restore(e.Critics, nil, nil, data)
}

// restore restores a state that marshalQ encoded into the critics c, the
// baseline base and, for a control variate, *moments (guarded by st.mu);
// on error nothing changes.
func (st *siteStats) restore(c *Critics, base Baseline, moments *map[string]cvMoments, data []byte) error {
	m, norm, err := unmarshalQ(c, base, moments != nil, data)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	st.norm = norm
	if moments != nil {
		*moments = m
	}
	return nil
}

// marshalQ encodes the state of a Backprop-Q estimator.
func marshalQ(c *Critics, base Baseline, moments map[string]cvMoments, norm map[string]nvilStats) ([]byte, error) {
	if c == nil || c.Set == nil {
		return nil, errors.New("infer: BackpropQ: no critics")
	}
	crit, err := c.Set.MarshalState()
	if err != nil {
		return nil, fmt.Errorf("infer: BackpropQ: %w", err)
	}
	baseState, err := baselineState(base)
	if err != nil {
		return nil, fmt.Errorf("infer: BackpropQ: %w", err)
	}
	var enc ckpt.Encoder
	enc.String(string(crit))
	enc.String(string(baseState))
	addrs := sortedKeys(moments)
	enc.Uint32(uint32(len(addrs)))
	for _, a := range addrs {
		m := moments[a]
		enc.String(a)
		enc.Float64s([]float64{m.r, m.q, m.rq, m.qq})
	}
	// The normalization statistics come next; a state written before
	// Normalize existed ends here.
	norms := sortedKeys(norm)
	enc.Uint32(uint32(len(norms)))
	for _, a := range norms {
		st := norm[a]
		enc.String(a)
		enc.Float64s([]float64{st.mean, st.variance})
	}
	// The replay buffers follow, with Replay only.
	if c.Replay != nil {
		if err := c.marshalBuffers(&enc); err != nil {
			return nil, fmt.Errorf("infer: BackpropQ: %w", err)
		}
	}
	return enc.Bytes(), nil
}

// unmarshalQ decodes and checks the state of a Backprop-Q estimator whose
// critics are c and baseline base (nil for none), restores the critics,
// the baseline's state and the replay buffers, and returns the moments
// (which only a control variate, withMoments, may have) and the
// normalization statistics for the caller to install. On error nothing
// changes.
func unmarshalQ(c *Critics, base Baseline, withMoments bool, data []byte) (map[string]cvMoments, map[string]nvilStats, error) {
	d := ckpt.NewDecoder("BackpropQ", data)
	crit := []byte(d.String())
	baseState := []byte(d.String())
	moments := decodeMoments(d)
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
		if c.Replay == nil {
			return nil, nil, errors.New("infer: BackpropQ: replay buffers given to critics without Replay")
		}
		buffers = decodeBuffers(d)
	}
	if err := d.Finish(); err != nil {
		return nil, nil, fmt.Errorf("infer: %w", err)
	}
	if len(moments) > 0 && !withMoments {
		return nil, nil, errors.New("infer: BackpropQ: control-variate state given to an estimator that is not a QControlVariate")
	}
	m, hasBase := base.(stateMarshaler)
	if !hasBase && len(baseState) != 0 {
		return nil, nil, errors.New("infer: BackpropQ: baseline state given to an estimator without a stateful baseline")
	}
	// Check the critics on a scratch set first, so nothing changes on error.
	scratch := q.NewSet(c.Set.Config())
	if err := scratch.UnmarshalState(crit); err != nil {
		return nil, nil, fmt.Errorf("infer: BackpropQ: %w", err)
	}
	if hasBase {
		if err := m.UnmarshalState(baseState); err != nil {
			return nil, nil, fmt.Errorf("infer: BackpropQ: %w", err)
		}
	}
	if err := c.Set.UnmarshalState(crit); err != nil {
		return nil, nil, fmt.Errorf("infer: BackpropQ: %w", err)
	}
	c.mu.Lock()
	c.buffers = buffers
	c.mu.Unlock()
	return moments, norm, nil
}

// decodeMoments reads the control variate's moments.
func decodeMoments(d *ckpt.Decoder) map[string]cvMoments {
	cnt := d.Count(36)
	moments := make(map[string]cvMoments, cnt)
	for i := 0; i < cnt && d.Err() == nil; i++ {
		a := d.String()
		v := d.Float64s(4)
		if d.Err() == nil {
			moments[a] = cvMoments{v[0], v[1], v[2], v[3]}
		}
	}
	return moments
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
