package gemm

// packA copies rows [ic, ic+mc) and depths [pc, pc+kc) of op(a) into dst
// as tileM x kc micro-panels: panel p holds, for each depth l, the
// tileM values of its rows at l, rows past mc set to zero.
func (g *product) packA(dst []float64, ic, mc, pc, kc int) {
	a, lda := g.a, g.lda
	for ir := 0; ir < mc; ir += tileM {
		mr := min(tileM, mc-ir)
		p := dst[ir*kc : (ir+tileM)*kc]
		if g.transA { // op(a)[i, l] = a[l*lda+i]
			if mr == tileM {
				for l := 0; l < kc; l++ {
					d, s := (*[tileM]float64)(p[l*tileM:]), (*[tileM]float64)(a[(pc+l)*lda+ic+ir:])
					d[0], d[1], d[2], d[3], d[4], d[5] = s[0], s[1], s[2], s[3], s[4], s[5]
				}
				continue
			}
			for l := 0; l < kc; l++ {
				d := p[l*tileM : (l+1)*tileM]
				copy(d, a[(pc+l)*lda+ic+ir:][:mr])
				clear(d[mr:])
			}
			continue
		}
		base := (ic+ir)*lda + pc // op(a)[i, l] = a[i*lda+l]
		if mr == tileM {
			packRows6(p, a[base:], lda, kc)
			continue
		}
		for r := 0; r < tileM; r++ {
			if r >= mr {
				for l := 0; l < kc; l++ {
					p[l*tileM+r] = 0
				}
				continue
			}
			for l, v := range a[base+r*lda:][:kc] {
				p[l*tileM+r] = v
			}
		}
	}
}

// packRows6 interleaves the first kc values of six rows of a (stride lda)
// into p.
func packRows6(p, a []float64, lda, kc int) {
	r0, r1, r2 := a[:kc], a[lda:][:kc], a[2*lda:][:kc]
	r3, r4, r5 := a[3*lda:][:kc], a[4*lda:][:kc], a[5*lda:][:kc]
	for l := range kc {
		d := (*[tileM]float64)(p[l*tileM:])
		d[0], d[1], d[2], d[3], d[4], d[5] = r0[l], r1[l], r2[l], r3[l], r4[l], r5[l]
	}
}

// packB copies depths [pc, pc+kc) and columns [jc, jc+nc) of op(b) into
// dst as kc x tileN micro-panels: panel p holds, for each depth l, the
// tileN values of its columns at l, columns past nc set to zero. With
// partialOnly set it packs only a last, partial panel.
func (g *product) packB(dst []float64, pc, kc, jc, nc int, partialOnly bool) {
	b, ldb := g.b, g.ldb
	for jr := 0; jr < nc; jr += tileN {
		nr := min(tileN, nc-jr)
		if partialOnly && nr == tileN {
			continue
		}
		p := dst[jr*kc : (jr+tileN)*kc]
		if !g.transB { // op(b)[l, j] = b[l*ldb+j]
			if nr == tileN { // element moves: copy would call memmove per row
				for l := 0; l < kc; l++ {
					d, s := (*[tileN]float64)(p[l*tileN:]), (*[tileN]float64)(b[(pc+l)*ldb+jc+jr:])
					d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7] = s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
				}
				continue
			}
			for l := 0; l < kc; l++ {
				d := p[l*tileN : (l+1)*tileN]
				copy(d, b[(pc+l)*ldb+jc+jr:][:nr])
				clear(d[nr:])
			}
			continue
		}
		base := (jc+jr)*ldb + pc // op(b)[l, j] = b[j*ldb+l]
		if nr == tileN {
			packRows8(p, b[base:], ldb, kc)
			continue
		}
		for c := 0; c < tileN; c++ {
			if c >= nr {
				for l := 0; l < kc; l++ {
					p[l*tileN+c] = 0
				}
				continue
			}
			for l, v := range b[base+c*ldb:][:kc] {
				p[l*tileN+c] = v
			}
		}
	}
}

// packRows8 interleaves the first kc values of eight rows of b (stride
// ldb) into p.
func packRows8(p, b []float64, ldb, kc int) {
	r0, r1, r2, r3 := b[:kc], b[ldb:][:kc], b[2*ldb:][:kc], b[3*ldb:][:kc]
	r4, r5, r6, r7 := b[4*ldb:][:kc], b[5*ldb:][:kc], b[6*ldb:][:kc], b[7*ldb:][:kc]
	for l := range kc {
		d := (*[tileN]float64)(p[l*tileN:])
		d[0], d[1], d[2], d[3] = r0[l], r1[l], r2[l], r3[l]
		d[4], d[5], d[6], d[7] = r4[l], r5[l], r6[l], r7[l]
	}
}
