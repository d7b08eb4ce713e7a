//go:build amd64 && !purego

#include "textflag.h"

// func adamAVX(n int, value, grad, m, v *float64, c *adamCoef)
//
// adamAVX applies the Adam update to n elements (n a multiple of 4), four
// at a time, with the same operations in the same order as adamScalar
// (no fused multiply-adds), so both give the same bits. c holds b1, 1-b1,
// b2, 1-b2, lr, scale, eps.
TEXT ·adamAVX(SB), NOSPLIT, $0-48
	MOVQ n+0(FP), CX
	MOVQ value+8(FP), DI
	MOVQ grad+16(FP), SI
	MOVQ m+24(FP), R8
	MOVQ v+32(FP), R9
	MOVQ c+40(FP), AX
	VBROADCASTSD 0(AX), Y0
	VBROADCASTSD 8(AX), Y1
	VBROADCASTSD 16(AX), Y2
	VBROADCASTSD 24(AX), Y3
	VBROADCASTSD 32(AX), Y4
	VBROADCASTSD 40(AX), Y5
	VBROADCASTSD 48(AX), Y6
	SHRQ $2, CX
	JZ   done

loop:
	VMOVUPD (SI), Y7
	VMULPD  (R8), Y0, Y8
	VMULPD  Y7, Y1, Y9
	VADDPD  Y9, Y8, Y8
	VMOVUPD Y8, (R8)
	VMULPD  Y7, Y3, Y10
	VMULPD  Y7, Y10, Y10
	VMULPD  (R9), Y2, Y11
	VADDPD  Y10, Y11, Y11
	VMOVUPD Y11, (R9)
	VSQRTPD Y11, Y11
	VMULPD  Y5, Y11, Y11
	VADDPD  Y6, Y11, Y11
	VMULPD  Y8, Y4, Y8
	VDIVPD  Y11, Y8, Y8
	VMOVUPD (DI), Y12
	VSUBPD  Y8, Y12, Y12
	VMOVUPD Y12, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	ADDQ    $32, R8
	ADDQ    $32, R9
	DECQ    CX
	JNZ     loop

done:
	VZEROUPPER
	RET
