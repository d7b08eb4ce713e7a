package ad

// SetGradients runs the backward pass of loss, a [1 x 1] tensor, and sets
// the Grad of each of vars to the gradient of loss with respect to it:
// the sum over the Var's leaves on the tape, zero where loss does not
// depend on it (or the Var is not bound to the tape at all). Vars bound to
// the tape but not listed get their gradient added into Grad, as with
// [Tape.Backward]. It panics if loss is not [1 x 1].
//
// The numbers are those of zeroing each listed Var's Grad, then
// [Tape.ComputeGradients] and [Tape.AccumulateGradients], but a Var bound
// once with a contiguous Grad receives its gradient in place: its first
// contribution is written into Grad, the later ones added, with no zeroing
// pass, no buffer of the tape and no pass to add it. Like
// [Tape.Backward], it must not run while another tape's backward pass
// writes into one of vars.
func (tp *Tape) SetGradients(loss *Tensor, vars []*Var) {
	tp.startBackward(loss, false)
	for _, v := range vars {
		v.set, v.leaves = true, 0
	}
	leaves := tp.nodes[:loss.index]
	for _, t := range leaves {
		if t.op == opVar {
			t.v.leaves++
		}
	}
	for _, t := range leaves {
		if t.op != opVar || !t.v.set {
			continue
		}
		if g := t.v.Grad.RawMatrix(); t.v.leaves == 1 && g.Stride == t.cols {
			t.grad, t.varGrad, t.fresh = g.Data[:t.rows*t.cols], true, true
		}
	}
	for _, v := range vars {
		if v.leaves != 1 || v.Grad.RawMatrix().Stride != v.Grad.RawMatrix().Cols {
			v.ZeroGrad()
		}
	}
	tp.runBackward(loss)
	for _, t := range leaves {
		if t.fresh {
			// Bound, but loss does not depend on it.
			clear(t.grad)
			t.fresh = false
		}
	}
	tp.AccumulateGradients()
	for _, v := range vars {
		v.set, v.leaves = false, 0
	}
	tp.direct = true
}
