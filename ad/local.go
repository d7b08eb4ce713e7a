package ad

import "sync/atomic"

// A LocalKey names a slot of memory that every tape keeps for one owner
// (see [Tape.Local]). Make keys once, in package variables.
type LocalKey struct{ i int }

// localKeys counts the keys made.
var localKeys atomic.Int32

// NewLocalKey returns a key no other call returns.
func NewLocalKey() LocalKey { return LocalKey{int(localKeys.Add(1)) - 1} }

// Local returns the value of the tape's slot key, made by mk on the first
// call. Slots survive [Tape.Reset]. Packages above ad keep in them the
// records of a run (its sites, its trace) which, like the run's tensors,
// are not used after the tape is reset, and reuse their memory once
// [Tape.Generation] has changed.
func (tp *Tape) Local(key LocalKey, mk func() any) any {
	if key.i >= len(tp.locals) {
		tp.locals = append(tp.locals, make([]any, key.i+1-len(tp.locals))...)
	}
	v := tp.locals[key.i]
	if v == nil {
		v = mk()
		tp.locals[key.i] = v
	}
	return v
}

// Generation returns the number of times the tape has been reset.
func (tp *Tape) Generation() uint64 { return tp.gen }

// Scratch returns n zeros of memory that lives, like the tape's tensors,
// until the tape is reset, which reuses it: room for the work of a run
// that is no tensor (a critic's input rows, say).
func (tp *Tape) Scratch(n int) []float64 {
	buf := tp.allocZero(n)
	tp.scratch = append(tp.scratch, buf)
	return buf
}
