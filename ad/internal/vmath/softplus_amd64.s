//go:build amd64 && !purego

#include "textflag.h"

// Offsets of the constants in softplusConsts, 32 bytes (four copies) each.
#define SIGN 0
#define XMIN 32
#define LOG2E 64
#define LN2HI 96
#define LN2LO 128
#define EXP13 160
#define ONE 576
#define HALF 608
#define TWO 640
#define SQRT2 672
#define LG7 704
#define LG1 896
#define BIAS 928

// func softplusSigmoidAVX(n int, w, sp, sig *float64, c *[30][4]float64)
//
// For n (a multiple of 4) values w, softplusSigmoidAVX sets
// sp = max(w, 0) + log1p(e) and sig = sigmoid(w), where e = exp(-|w|).
// exp is a degree-13 Taylor polynomial on the reduced argument scaled by
// 2^n; log1p(e) reduces 1+e to [sqrt(2)/2, sqrt(2)), corrects for the
// rounding of 1+e, and uses a degree-7 polynomial in s^2, s = f/(2+f).
// -|w| is clamped at -708.39 so that 2^n stays normal: callers recompute
// elements with |w| > 708.
TEXT ·softplusSigmoidAVX(SB), NOSPLIT, $0-40
	MOVQ n+0(FP), CX
	MOVQ w+8(FP), SI
	MOVQ sp+16(FP), DI
	MOVQ sig+24(FP), DX
	MOVQ c+32(FP), AX
	SHRQ $2, CX
	JZ   done
	VXORPD Y15, Y15, Y15

loop:
	VMOVUPD (SI), Y0

	// x = max(-|w|, XMIN); n = round(x·log2e); r = x - n·ln2.
	VORPD   SIGN(AX), Y0, Y1
	VMOVUPD XMIN(AX), Y2
	VMAXPD  Y1, Y2, Y1
	VMULPD  LOG2E(AX), Y1, Y2
	VROUNDPD $0, Y2, Y2
	VMOVAPD Y1, Y3
	VFNMADD231PD LN2HI(AX), Y2, Y3
	VFNMADD231PD LN2LO(AX), Y2, Y3

	// e = p(r)·2^n.
	VMOVUPD EXP13(AX), Y4
	VFMADD213PD EXP13+32(AX), Y3, Y4
	VFMADD213PD EXP13+64(AX), Y3, Y4
	VFMADD213PD EXP13+96(AX), Y3, Y4
	VFMADD213PD EXP13+128(AX), Y3, Y4
	VFMADD213PD EXP13+160(AX), Y3, Y4
	VFMADD213PD EXP13+192(AX), Y3, Y4
	VFMADD213PD EXP13+224(AX), Y3, Y4
	VFMADD213PD EXP13+256(AX), Y3, Y4
	VFMADD213PD EXP13+288(AX), Y3, Y4
	VFMADD213PD EXP13+320(AX), Y3, Y4
	VFMADD213PD EXP13+352(AX), Y3, Y4
	VFMADD213PD EXP13+384(AX), Y3, Y4
	VFMADD213PD EXP13+416(AX), Y3, Y4
	VCVTPD2DQY Y2, X5
	VPMOVSXDQ  X5, Y5
	VPADDQ     BIAS(AX), Y5, Y5
	VPSLLQ     $52, Y5, Y5
	VMULPD     Y5, Y4, Y4

	// u = 1+e; f = u-1, or u/2-1 when u >= sqrt(2); c = (e-(u-1))/u.
	VADDPD  ONE(AX), Y4, Y6
	VCMPPD  $0x1d, SQRT2(AX), Y6, Y7
	VSUBPD  ONE(AX), Y6, Y8
	VMULPD  HALF(AX), Y6, Y9
	VSUBPD  ONE(AX), Y9, Y9
	VSUBPD  Y8, Y4, Y10
	VDIVPD  Y6, Y10, Y10
	VBLENDVPD Y7, Y9, Y8, Y8
	VANDPD  ONE(AX), Y7, Y7

	// s = f/(2+f), z = s², R = z·P(z).
	VADDPD  TWO(AX), Y8, Y9
	VDIVPD  Y9, Y8, Y9
	VMULPD  Y9, Y9, Y11
	VMOVUPD LG7(AX), Y12
	VFMADD213PD LG7+32(AX), Y11, Y12
	VFMADD213PD LG7+64(AX), Y11, Y12
	VFMADD213PD LG7+96(AX), Y11, Y12
	VFMADD213PD LG7+128(AX), Y11, Y12
	VFMADD213PD LG7+160(AX), Y11, Y12
	VFMADD213PD LG7+192(AX), Y11, Y12
	VMULPD  Y11, Y12, Y12

	// log1p(e) = k·ln2hi - ((hfsq - (s·(hfsq+R) + (k·ln2lo + c))) - f).
	VMULPD  Y8, Y8, Y13
	VMULPD  HALF(AX), Y13, Y13
	VADDPD  Y13, Y12, Y12
	VFMADD231PD LN2LO(AX), Y7, Y10
	VFMADD213PD Y10, Y9, Y12
	VSUBPD  Y12, Y13, Y13
	VSUBPD  Y8, Y13, Y13
	VMULPD  LN2HI(AX), Y7, Y14
	VSUBPD  Y13, Y14, Y14

	// sp = max(w, 0) + log1p(e); sig = (w >= 0 ? 1 : e)/u.
	VMAXPD  Y0, Y15, Y1
	VADDPD  Y14, Y1, Y1
	VMOVUPD Y1, (DI)
	VCMPPD  $0x1d, Y15, Y0, Y2
	VBLENDVPD Y2, ONE(AX), Y4, Y3
	VDIVPD  Y6, Y3, Y3
	VMOVUPD Y3, (DX)

	ADDQ $32, SI
	ADDQ $32, DI
	ADDQ $32, DX
	DECQ CX
	JNZ  loop

done:
	VZEROUPPER
	RET
