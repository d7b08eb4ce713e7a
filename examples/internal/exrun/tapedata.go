package exrun

import (
	"sync"
	"sync/atomic"

	"github.com/backpropq/backpropq/ad"
)

// TapeData records, for each tape, the tensor that the last run on it
// stored: an example's model stores its batch of images, and an NVIL
// baseline reads them as its input. Runs on different tapes may use it
// concurrently; storing the tensor of a tape seen before allocates
// nothing.
type TapeData struct{ m sync.Map }

// Store records t for the run on tape tp.
func (d *TapeData) Store(tp *ad.Tape, t *ad.Tensor) {
	v, ok := d.m.Load(tp)
	if !ok {
		v, _ = d.m.LoadOrStore(tp, new(atomic.Pointer[ad.Tensor]))
	}
	v.(*atomic.Pointer[ad.Tensor]).Store(t)
}

// Load returns the tensor recorded for the run on tape tp, and whether
// there is one.
func (d *TapeData) Load(tp *ad.Tape) (*ad.Tensor, bool) {
	v, ok := d.m.Load(tp)
	if !ok {
		return nil, false
	}
	t := v.(*atomic.Pointer[ad.Tensor]).Load()
	return t, t != nil
}

// Delete forgets tape tp, which the caller will not run on again.
func (d *TapeData) Delete(tp *ad.Tape) { d.m.Delete(tp) }
