package ppl

import (
	"fmt"

	"github.com/backpropq/backpropq/ad"
)

// Broadcast returns t, a value from outside ctx's innermost plates, with
// its rows repeated over the members of the plates it is not inside: each
// row of the result is the row of t of the same particle and outer plate
// members. t must have the rows of one of the outer levels of ctx's
// plates (the run's batch outside every plate), or one row (a parameter).
// t itself is returned when it already has ctx's rows. The result keeps
// t's gradient path and provenance, so a global latent broadcast into a
// data plate still names its site.
//
// Broadcast panics with a [SiteError] naming the last site and ctx's
// plates when t has none of those row counts, and when t may as well be
// one row per member of ctx's plates (a per-group parameter whose rows
// happen to be the run's batch): it has that many rows, carries no
// provenance and its rows differ. [Data] brings such a value in.
func Broadcast(ctx *Ctx, t *ad.Tensor) *ad.Tensor {
	ctx.check("Broadcast")
	want := ctx.Rows()
	if t.Rows() == want {
		return t
	}
	p := ctx.run.cfg.Batch
	for k := len(ctx.plates) - 1; k >= 0; k-- {
		if t.Rows() == p*ctx.plates[:k].Rows() {
			checkNotPerMember(ctx, t)
			return repeatRows(t, ctx.plates[k:].Rows())
		}
	}
	if t.Rows() == 1 && want > 0 {
		return repeatRows(t, want)
	}
	panic(&SiteError{Addr: ctx.run.current, After: true, Err: fmt.Errorf(
		"Broadcast: the value has %d rows, none of the levels outside plates %v (batch %d)", t.Rows(), ctx.plates, p)})
}

// checkNotPerMember panics when t, which Broadcast is about to take for a
// value of an outer level, may as well be one row per member of ctx's
// plates (the rows Data takes): it has that many rows, no provenance (a
// sampled value is per particle) and rows that differ, so reading it as
// per particle would give every member of particle p the row p.
func checkNotPerMember(ctx *Ctx, t *ad.Tensor) {
	full := 1
	for _, f := range ctx.plates {
		full *= f.Size
	}
	if t.Rows() != full || !t.Provenance().Empty() || rowsEqual(t) {
		return
	}
	panic(&SiteError{Addr: ctx.run.current, After: true, Err: fmt.Errorf(
		"Broadcast: the value has %d rows, both the rows of a level outside plates %v and one row per member of them; "+
			"bring one row per member in with ppl.Data, or a value per particle with ppl.Move(value, outer, ctx.Plates())",
		t.Rows(), ctx.plates)})
}

// rowsEqual reports whether every row of t equals the first.
func rowsEqual(t *ad.Tensor) bool {
	data, cols := t.Data(), t.Cols()
	for i := cols; i < len(data); i++ {
		if data[i] != data[i%cols] {
			return false
		}
	}
	return true
}

// SumOut returns t, a value at ctx's plate level, summed over the members
// of ctx's innermost plate: a value of the level just outside it, with
// t's gradient path and provenance. It panics with a [SiteError] naming
// the last site and ctx's plates when ctx is not inside a plate or t has
// not ctx's rows.
func SumOut(ctx *Ctx, t *ad.Tensor) *ad.Tensor {
	f := ctx.innermost("SumOut")
	if want := ctx.Rows(); t.Rows() != want {
		panic(&SiteError{Addr: ctx.run.current, After: true, Err: fmt.Errorf(
			"SumOut: the value has %d rows, a value inside plates %v has %d", t.Rows(), ctx.plates, want)})
	}
	return sumRows(t, f.Len())
}

// Data returns the rows of a data set that ctx's plates hold, at ctx's
// plate level: data has one row per combination of members of ctx's
// plates (Size rows for one plate, G*M rows for plates of G and M
// members, the inner index varying fastest), and the result has the row
// of each present member (the subsample's), for every particle, on the
// run's tape. It keeps data's gradient path and provenance; data without
// a gradient path may live on any tape, so a data set is prepared once
// (ad.NewTape().FromData, say) and serves every run. Data panics with a [SiteError]
// naming the last site when ctx is not inside a plate, the batch is not
// known, or data has another number of rows.
func Data(ctx *Ctx, data *ad.Tensor) *ad.Tensor {
	ctx.innermost("Data")
	full := 1
	for _, f := range ctx.plates {
		full *= f.Size
	}
	p := ctx.run.cfg.Batch
	switch {
	case p == 0:
		panic(&SiteError{Addr: ctx.run.current, After: true, Err: fmt.Errorf("Data: the batch size is not known yet; set ppl.Config.Batch")})
	case data.Rows() != full:
		panic(&SiteError{Addr: ctx.run.current, After: true, Err: fmt.Errorf(
			"Data: the data have %d rows, plates %v have %d members", data.Rows(), ctx.plates, full)})
	}
	rows := ctx.plates.Members()
	var block *ad.Tensor
	if data.RequiresGrad() {
		sel := make([]float64, len(rows)*full)
		for i, r := range rows {
			sel[i*full+r] = 1
		}
		block = ad.MatMul(data.Tape().FromData(len(rows), full, sel), data)
	} else {
		cols := data.Cols()
		out := make([]float64, 0, len(rows)*cols)
		src := data.Data()
		for _, r := range rows {
			out = append(out, src[r*cols:(r+1)*cols]...)
		}
		tp := ctx.run.cfg.Tape
		block = tp.WithProvenance(tp.FromData(len(rows), cols, out), data.Provenance())
	}
	if p == 1 {
		return block
	}
	// Particle-major: the block of one particle, p times.
	r, c := block.Dims()
	return ad.Reshape(repeatRows(ad.Reshape(block, 1, r*c), p), p*r, c)
}

// Members returns, for each row of one particle at the level of the
// plates st, the index of its member in the full numbering of the plates'
// sizes (mixed-radix, the innermost varying fastest): the row of a data
// set that [Data] brings to that row.
func (st Stack) Members() []int {
	rows := []int{0}
	for _, f := range st {
		idx := f.Indices
		next := make([]int, 0, len(rows)*f.Len())
		for _, r := range rows {
			for i := 0; i < f.Len(); i++ {
				m := i
				if idx != nil {
					m = idx[i]
				}
				next = append(next, r*f.Size+m)
			}
		}
		rows = next
	}
	return rows
}

// Move returns t, a value inside the plates from (its rows laid out as
// [Stack] says), as a value inside the plates to: the plates of from that
// to does not share (after their longest common prefix, by name) are
// summed out, then t is broadcast over the plates of to that from does not
// share. Sites, costs and learning signals move between plate levels this
// way: a cost of one member reaches the member's own row, a cost outside
// the plate reaches every row of its particle. Move keeps t's gradient
// path and provenance. It panics with a *[ad.ShapeError] when t's rows are
// not a multiple of from's rows per particle.
func Move(t *ad.Tensor, from, to Stack) *ad.Tensor {
	if t.Rows()%from.Rows() != 0 {
		panic(&ad.ShapeError{Op: "ppl.Move", A: [2]int{t.Rows(), t.Cols()}, B: [2]int{from.Rows(), t.Cols()}})
	}
	c := from.Common(to)
	if k := from[c:].Rows(); k > 1 {
		t = sumRows(t, k)
	}
	if k := to[c:].Rows(); k > 1 {
		t = repeatRows(t, k)
	}
	return t
}

// repeatRows returns t with each row repeated k times in a row.
func repeatRows(t *ad.Tensor, k int) *ad.Tensor {
	if k == 1 {
		return t
	}
	copies := make([]*ad.Tensor, k)
	for i := range copies {
		copies[i] = t
	}
	// [rows x k*cols] in row-major order is row 0 k times, then row 1 k
	// times, ...
	return ad.Reshape(ad.Concat(copies...), t.Rows()*k, t.Cols())
}

// sumRows returns t with each run of k consecutive rows summed into one.
func sumRows(t *ad.Tensor, k int) *ad.Tensor {
	if k == 1 {
		return t
	}
	rows, cols := t.Dims()
	wide := ad.Reshape(t, rows/k, k*cols)
	if cols == 1 {
		return ad.RowSum(wide)
	}
	// [rows/k x k*cols] times k stacked [cols x cols] identities.
	stack := make([]float64, k*cols*cols)
	for i := 0; i < k; i++ {
		for j := 0; j < cols; j++ {
			stack[(i*cols+j)*cols+j] = 1
		}
	}
	return ad.MatMul(wide, t.Tape().FromData(k*cols, cols, stack))
}
