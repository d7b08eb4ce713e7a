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

// func adam512(n int, value, grad, m, v *float64, c *adamCoef)
//
// adam512 is adamAVX eight at a time (n a multiple of 8), on CPUs with
// AVX-512, with the same operations in the same order.
TEXT ·adam512(SB), NOSPLIT, $0-48
	MOVQ n+0(FP), CX
	MOVQ value+8(FP), DI
	MOVQ grad+16(FP), SI
	MOVQ m+24(FP), R8
	MOVQ v+32(FP), R9
	MOVQ c+40(FP), AX
	VBROADCASTSD 0(AX), Z0
	VBROADCASTSD 8(AX), Z1
	VBROADCASTSD 16(AX), Z2
	VBROADCASTSD 24(AX), Z3
	VBROADCASTSD 32(AX), Z4
	VBROADCASTSD 40(AX), Z5
	VBROADCASTSD 48(AX), Z6
	SHRQ $3, CX
	JZ   done512

loop512:
	VMOVUPD (SI), Z7
	VMULPD  (R8), Z0, Z8
	VMULPD  Z7, Z1, Z9
	VADDPD  Z9, Z8, Z8
	VMOVUPD Z8, (R8)
	VMULPD  Z7, Z3, Z10
	VMULPD  Z7, Z10, Z10
	VMULPD  (R9), Z2, Z11
	VADDPD  Z10, Z11, Z11
	VMOVUPD Z11, (R9)
	VSQRTPD Z11, Z11
	VMULPD  Z5, Z11, Z11
	VADDPD  Z6, Z11, Z11
	VMULPD  Z8, Z4, Z8
	VDIVPD  Z11, Z8, Z8
	VMOVUPD (DI), Z12
	VSUBPD  Z8, Z12, Z12
	VMOVUPD Z12, (DI)
	ADDQ    $64, SI
	ADDQ    $64, DI
	ADDQ    $64, R8
	ADDQ    $64, R9
	DECQ    CX
	JNZ     loop512

done512:
	VZEROUPPER
	RET
