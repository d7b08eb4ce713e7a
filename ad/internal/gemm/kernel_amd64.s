//go:build amd64 && !purego

#include "textflag.h"

#define STEP(ao, bo) \
	VMOVUPD bo(DI), Y12 \
	VMOVUPD bo+32(DI), Y13 \
	VBROADCASTSD ao(SI), Y14 \
	VBROADCASTSD ao+8(SI), Y15 \
	VFMADD231PD Y12, Y14, Y0 \
	VFMADD231PD Y13, Y14, Y1 \
	VFMADD231PD Y12, Y15, Y2 \
	VFMADD231PD Y13, Y15, Y3 \
	VBROADCASTSD ao+16(SI), Y14 \
	VBROADCASTSD ao+24(SI), Y15 \
	VFMADD231PD Y12, Y14, Y4 \
	VFMADD231PD Y13, Y14, Y5 \
	VFMADD231PD Y12, Y15, Y6 \
	VFMADD231PD Y13, Y15, Y7 \
	VBROADCASTSD ao+32(SI), Y14 \
	VBROADCASTSD ao+40(SI), Y15 \
	VFMADD231PD Y12, Y14, Y8 \
	VFMADD231PD Y13, Y14, Y9 \
	VFMADD231PD Y12, Y15, Y10 \
	VFMADD231PD Y13, Y15, Y11

#define SETROW(lo, hi) \
	VMULPD Y12, lo, lo \
	VMULPD Y12, hi, hi \
	VMOVUPD lo, (DX) \
	VMOVUPD hi, 32(DX)

#define ROW(lo, hi) \
	VMULPD Y12, lo, lo \
	VMULPD Y12, hi, hi \
	VADDPD (DX), lo, lo \
	VADDPD 32(DX), hi, hi \
	VMOVUPD lo, (DX) \
	VMOVUPD hi, 32(DX)


// func kern6x8(k int, a, b, c *float64, ldc int, alpha float64, add int, ldb int)
//
// kern6x8 adds alpha·A·B to the 6x8 tile of c (row stride ldc elements),
// or stores it there when add is 0, where A is a packed 6xk panel (6
// values per step of k) and B a kx8 panel whose rows are ldb elements
// apart (8 when packed). Each accumulator starts at zero and
// adds one product per step of k, in order, with a fused multiply-add;
// the tile is then updated as c + alpha·acc (a multiply and an add, not
// fused) or set to alpha·acc, so every element of c sees the same
// operations wherever its tile lies.
TEXT ·kern6x8(SB), NOSPLIT, $0-64
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b+16(FP), DI
	MOVQ c+24(FP), DX
	MOVQ ldc+32(FP), R8
	SHLQ $3, R8
	MOVQ ldb+56(FP), R11
	SHLQ $3, R11

	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD Y2, Y2, Y2
	VXORPD Y3, Y3, Y3
	VXORPD Y4, Y4, Y4
	VXORPD Y5, Y5, Y5
	VXORPD Y6, Y6, Y6
	VXORPD Y7, Y7, Y7
	VXORPD Y8, Y8, Y8
	VXORPD Y9, Y9, Y9
	VXORPD Y10, Y10, Y10
	VXORPD Y11, Y11, Y11

	MOVQ CX, R9
	SHRQ $2, R9
	ANDQ $3, CX
	TESTQ R9, R9
	JZ   tail

loop4:
	PREFETCHT0 512(SI)
	STEP(0, 0)
	ADDQ R11, DI
	STEP(48, 0)
	ADDQ R11, DI
	STEP(96, 0)
	ADDQ R11, DI
	STEP(144, 0)
	ADDQ R11, DI
	ADDQ $192, SI
	DECQ R9
	JNZ  loop4

tail:
	TESTQ CX, CX
	JZ    store

loop1:
	STEP(0, 0)
	ADDQ $48, SI
	ADDQ R11, DI
	DECQ CX
	JNZ  loop1

store:
	VBROADCASTSD alpha+40(FP), Y12
	MOVQ add+48(FP), R10
	TESTQ R10, R10
	JZ   set
	ROW(Y0, Y1)
	ADDQ R8, DX
	ROW(Y2, Y3)
	ADDQ R8, DX
	ROW(Y4, Y5)
	ADDQ R8, DX
	ROW(Y6, Y7)
	ADDQ R8, DX
	ROW(Y8, Y9)
	ADDQ R8, DX
	ROW(Y10, Y11)
	VZEROUPPER
	RET

set:
	SETROW(Y0, Y1)
	ADDQ R8, DX
	SETROW(Y2, Y3)
	ADDQ R8, DX
	SETROW(Y4, Y5)
	ADDQ R8, DX
	SETROW(Y6, Y7)
	ADDQ R8, DX
	SETROW(Y8, Y9)
	ADDQ R8, DX
	SETROW(Y10, Y11)
	VZEROUPPER
	RET
