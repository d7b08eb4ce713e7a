package trace

import (
	"fmt"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
)

// Mask returns a handler that restricts every sample, observe and cost
// site to the rows where mask, an [n x 1] tensor of the run's tape, is
// non-zero: [ppl.Site.ScaledLogProb] and [ppl.Site.ScaledCost] are zero in
// the other rows. Values, raw log-probs and costs are unchanged. Nested
// masks combine by their product.
//
// mask has the rows of one plate level of each site (see [ppl.Stack]): the
// site's own rows, or those of a level outside some of its plates, whose
// rows it then covers as [ppl.Move] broadcasts them. A mask of the run's
// batch (the rows outside every plate, one per particle, or one per data
// point in a model without plates) therefore masks whole particles: a
// zero row drops every site of that particle, inside plates or not. To
// mask the members of one plate and leave the sites outside it alone (say,
// missing data points next to global latents), use [MaskPlate].
//
// A mask of another tape than the run's, without a gradient path, is
// copied onto the run's tape as a constant, so that one mask serves every
// run (an objective's ModelHandlers, say). The run fails with a
// [ppl.SiteError] at the first such site that has none of those levels'
// rows, naming the site and its plates, and when mask has a gradient path
// on another tape than the run's.
func Mask(mask *ad.Tensor) ppl.Handler {
	return ppl.HandlerFunc(func(s *ppl.Site, next func(*ppl.Site)) {
		if !scored(s) {
			next(s)
			return
		}
		rows, st := siteRows(s), s.Plates
		p := rows / max(st.Rows(), 1)
		for k := len(st); k >= 0 && mask.Cols() == 1 && p*st.Rows() == rows; k-- {
			if p*st[:k].Rows() == mask.Rows() {
				applyMask(s, mask, func(m *ad.Tensor) *ad.Tensor { return ppl.Move(m, st[:k], st) }, next)
				return
			}
		}
		panic(&ppl.SiteError{Addr: s.Addr, Err: fmt.Errorf(
			"trace: Mask: mask is [%dx%d], the site has %d rows inside plates %v; "+
				"a mask has the rows of the site's plate level or of an outer one (the run's batch outside every plate); "+
				"to mask the members of one plate only, use trace.MaskPlate", mask.Rows(), mask.Cols(), rows, st)})
	})
}

// MaskPlate returns a handler that masks members of the plate at address
// plate (its full address, scopes included), missing data points say:
// mask has one row per member of the plate, in the plate's numbering (for
// a plate nested in others, one per combination of members of the plates
// around it and its own, the innermost varying fastest: the rows [ppl.Data]
// takes), and a zero row leaves that member out of every sample, observe
// and cost site inside the plate, for every particle, as [Mask] does. A
// subsampled plate takes its members' rows of mask, so one mask serves
// every minibatch. Sites outside the plate, global latents among them,
// are left alone. mask may be on any tape, without a gradient path there;
// it is read as a constant.
//
// The run fails with a [ppl.SiteError] naming the site and its plates when
// mask has not one column and a row per member. The handler is
// [Addressed] by the plate's address, so an objective reports a plate
// that its model never enters.
func MaskPlate(plate string, mask *ad.Tensor) ppl.Handler {
	return maskPlate{plate: plate, HandlerFunc: func(s *ppl.Site, next func(*ppl.Site)) {
		i := plateIndex(s.Plates, plate)
		if !scored(s) || i < 0 {
			next(s)
			return
		}
		outer := s.Plates[:i+1]
		full := 1
		for _, f := range outer {
			full *= f.Size
		}
		if r, c := mask.Dims(); c != 1 || r != full {
			panic(&ppl.SiteError{Addr: s.Addr, Err: fmt.Errorf(
				"trace: MaskPlate: mask is [%dx%d], plate %q of this site (inside plates %v) needs one row per member, [%dx1]",
				r, c, plate, s.Plates, full)})
		}
		applyMask(s, mask, func(m *ad.Tensor) *ad.Tensor {
			// The present members' rows, for every particle.
			src, members := m.Data(), outer.Members()
			p := s.Value.Rows() / s.Plates.Rows()
			rows := make([]float64, 0, p*len(members))
			for range p {
				for _, r := range members {
					rows = append(rows, src[r])
				}
			}
			return ppl.Move(m.Tape().FromData(len(rows), 1, rows), outer, s.Plates)
		}, next)
	}}
}

// maskPlate is the handler of MaskPlate, addressed by its plate.
type maskPlate struct {
	ppl.HandlerFunc
	plate string
}

// Addrs returns the plate's address.
func (h maskPlate) Addrs() []string { return []string{h.plate} }

// plateIndex returns the position of the plate named name in st, or -1.
func plateIndex(st ppl.Stack, name string) int {
	for i, f := range st {
		if f.Name == name {
			return i
		}
	}
	return -1
}

// siteRows returns the rows of a scored site: its distribution's batch for
// a sample site, its value's rows otherwise.
func siteRows(s *ppl.Site) int {
	if s.Kind == ppl.KindSample && s.Dist != nil {
		rows, _ := s.Dist.Shape()
		return rows
	}
	if s.Value != nil {
		return s.Value.Rows()
	}
	return 0
}

// applyMask passes s on, then multiplies s's mask by move(m), move giving
// m the site's rows. A mask of another tape than the run's is copied onto
// it as a constant, unless it has a gradient path there.
func applyMask(s *ppl.Site, m *ad.Tensor, move func(*ad.Tensor) *ad.Tensor, next func(*ppl.Site)) {
	next(s)
	if s.Value == nil {
		return
	}
	if tp := s.Value.Tape(); m.Tape() != tp {
		if m.RequiresGrad() {
			panic(&ppl.SiteError{Addr: s.Addr, Err: fmt.Errorf("trace: Mask: mask is a tensor with a gradient path on another tape than the run's")})
		}
		m = tp.Const(m.Value())
	}
	if m = move(m); s.Mask == nil {
		s.Mask = m
	} else {
		s.Mask = ad.Mul(s.Mask, m)
	}
}
