//go:build amd64 && !purego

#include "textflag.h"

// Offsets of the constants in softplusConsts, as in softplus_amd64.s; this
// kernel broadcasts the first of each entry's copies.
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

// func softplusSigmoid512(n int, w, sp, sig *float64, c *[30][4]float64)
//
// softplusSigmoid512 is softplusSigmoidAVX for n a multiple of 8, eight
// values at a time with AVX-512: each lane performs the same operations in
// the same order, the blends by masks instead of vectors, so every result
// has the same bits.
TEXT ·softplusSigmoid512(SB), NOSPLIT, $0-40
	MOVQ n+0(FP), CX
	MOVQ w+8(FP), SI
	MOVQ sp+16(FP), DI
	MOVQ sig+24(FP), DX
	MOVQ c+32(FP), AX
	SHRQ $3, CX
	JZ   done
	VXORPD Z15, Z15, Z15
	VBROADCASTSD ONE(AX), Z16
	VBROADCASTSD XMIN(AX), Z17
	VBROADCASTSD SIGN(AX), Z18

loop:
	VMOVUPD (SI), Z0

	// x = max(-|w|, XMIN); n = round(x·log2e); r = x - n·ln2.
	VORPD   Z18, Z0, Z1
	VMAXPD  Z1, Z17, Z1
	VMULPD.BCST LOG2E(AX), Z1, Z2
	VRNDSCALEPD $0, Z2, Z2
	VMOVAPD Z1, Z3
	VFNMADD231PD.BCST LN2HI(AX), Z2, Z3
	VFNMADD231PD.BCST LN2LO(AX), Z2, Z3

	// e = p(r)·2^n.
	VBROADCASTSD EXP13(AX), Z4
	VFMADD213PD.BCST EXP13+32(AX), Z3, Z4
	VFMADD213PD.BCST EXP13+64(AX), Z3, Z4
	VFMADD213PD.BCST EXP13+96(AX), Z3, Z4
	VFMADD213PD.BCST EXP13+128(AX), Z3, Z4
	VFMADD213PD.BCST EXP13+160(AX), Z3, Z4
	VFMADD213PD.BCST EXP13+192(AX), Z3, Z4
	VFMADD213PD.BCST EXP13+224(AX), Z3, Z4
	VFMADD213PD.BCST EXP13+256(AX), Z3, Z4
	VFMADD213PD.BCST EXP13+288(AX), Z3, Z4
	VFMADD213PD.BCST EXP13+320(AX), Z3, Z4
	VFMADD213PD.BCST EXP13+352(AX), Z3, Z4
	VFMADD213PD.BCST EXP13+384(AX), Z3, Z4
	VFMADD213PD.BCST EXP13+416(AX), Z3, Z4
	VCVTPD2DQ  Z2, Y5
	VPMOVSXDQ  Y5, Z5
	VPADDQ.BCST BIAS(AX), Z5, Z5
	VPSLLQ     $52, Z5, Z5
	VMULPD     Z5, Z4, Z4

	// u = 1+e; f = u-1, or u/2-1 when u >= sqrt(2) (mask K1, and k = 1
	// in Z7); c = (e-(u-1))/u.
	VADDPD  Z16, Z4, Z6
	VCMPPD.BCST $0x1d, SQRT2(AX), Z6, K1
	VSUBPD  Z16, Z6, Z8
	VMULPD.BCST HALF(AX), Z6, Z9
	VSUBPD  Z16, Z9, Z9
	VSUBPD  Z8, Z4, Z10
	VDIVPD  Z6, Z10, Z10
	VBLENDMPD Z9, Z8, K1, Z8
	VMOVAPD.Z Z16, K1, Z7

	// s = f/(2+f), z = s², R = z·P(z).
	VADDPD.BCST TWO(AX), Z8, Z9
	VDIVPD  Z9, Z8, Z9
	VMULPD  Z9, Z9, Z11
	VBROADCASTSD LG7(AX), Z12
	VFMADD213PD.BCST LG7+32(AX), Z11, Z12
	VFMADD213PD.BCST LG7+64(AX), Z11, Z12
	VFMADD213PD.BCST LG7+96(AX), Z11, Z12
	VFMADD213PD.BCST LG7+128(AX), Z11, Z12
	VFMADD213PD.BCST LG7+160(AX), Z11, Z12
	VFMADD213PD.BCST LG7+192(AX), Z11, Z12
	VMULPD  Z11, Z12, Z12

	// log1p(e) = k·ln2hi - ((hfsq - (s·(hfsq+R) + (k·ln2lo + c))) - f).
	VMULPD  Z8, Z8, Z13
	VMULPD.BCST HALF(AX), Z13, Z13
	VADDPD  Z13, Z12, Z12
	VFMADD231PD.BCST LN2LO(AX), Z7, Z10
	VFMADD213PD Z10, Z9, Z12
	VSUBPD  Z12, Z13, Z13
	VSUBPD  Z8, Z13, Z13
	VMULPD.BCST LN2HI(AX), Z7, Z14
	VSUBPD  Z13, Z14, Z14

	// sp = max(w, 0) + log1p(e); sig = (w >= 0 ? 1 : e)/u.
	VMAXPD  Z0, Z15, Z1
	VADDPD  Z14, Z1, Z1
	VMOVUPD Z1, (DI)
	VCMPPD  $0x1d, Z15, Z0, K2
	VBLENDMPD Z16, Z4, K2, Z3
	VDIVPD  Z6, Z3, Z3
	VMOVUPD Z3, (DX)

	ADDQ $64, SI
	ADDQ $64, DI
	ADDQ $64, DX
	DECQ CX
	JNZ  loop

done:
	VZEROUPPER
	RET
