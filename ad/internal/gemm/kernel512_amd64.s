//go:build amd64 && !purego

#include "textflag.h"

// STEP16 multiplies one step of k: row l of the two B panels (8 values
// each, in Z12 and Z13) by the 6 values of A at l.
#define STEP16(ao) \
	VMOVUPD (DI), Z12 \
	VMOVUPD (BX), Z13 \
	VBROADCASTSD ao(SI), Z14 \
	VBROADCASTSD ao+8(SI), Z15 \
	VFMADD231PD Z12, Z14, Z0 \
	VFMADD231PD Z13, Z14, Z1 \
	VFMADD231PD Z12, Z15, Z2 \
	VFMADD231PD Z13, Z15, Z3 \
	VBROADCASTSD ao+16(SI), Z14 \
	VBROADCASTSD ao+24(SI), Z15 \
	VFMADD231PD Z12, Z14, Z4 \
	VFMADD231PD Z13, Z14, Z5 \
	VFMADD231PD Z12, Z15, Z6 \
	VFMADD231PD Z13, Z15, Z7 \
	VBROADCASTSD ao+32(SI), Z14 \
	VBROADCASTSD ao+40(SI), Z15 \
	VFMADD231PD Z12, Z14, Z8 \
	VFMADD231PD Z13, Z14, Z9 \
	VFMADD231PD Z12, Z15, Z10 \
	VFMADD231PD Z13, Z15, Z11 \
	ADDQ R11, DI \
	ADDQ R11, BX

#define SETROW16(lo, hi) \
	VMULPD Z12, lo, lo \
	VMULPD Z12, hi, hi \
	VMOVUPD lo, (DX) \
	VMOVUPD hi, (AX)

#define ROW16(lo, hi) \
	VMULPD Z12, lo, lo \
	VMULPD Z12, hi, hi \
	VADDPD (DX), lo, lo \
	VADDPD (AX), hi, hi \
	VMOVUPD lo, (DX) \
	VMOVUPD hi, (AX)

// func kern6x16(k int, a, b0, b1, c0, c1 *float64, ldc int, alpha float64, add int, ldb int)
//
// kern6x16 is kern6x8 on two tiles at once, with 8-wide registers: it adds
// alpha·A·B0 to the 6x8 tile at c0 and alpha·A·B1 to the one at c1 (row
// stride ldc elements), or stores them there when add is 0, where A is a
// packed 6xk panel and B0 and B1 are kx8 panels whose rows are ldb
// elements apart. Every element of c sees exactly the operations of
// kern6x8, in the same order, so the two kernels agree bit for bit.
TEXT ·kern6x16(SB), NOSPLIT, $0-80
	MOVQ k+0(FP), CX
	MOVQ a+8(FP), SI
	MOVQ b0+16(FP), DI
	MOVQ b1+24(FP), BX
	MOVQ c0+32(FP), DX
	MOVQ c1+40(FP), AX
	MOVQ ldc+48(FP), R8
	SHLQ $3, R8
	MOVQ ldb+72(FP), R11
	SHLQ $3, R11

	VPXORQ Z0, Z0, Z0
	VPXORQ Z1, Z1, Z1
	VPXORQ Z2, Z2, Z2
	VPXORQ Z3, Z3, Z3
	VPXORQ Z4, Z4, Z4
	VPXORQ Z5, Z5, Z5
	VPXORQ Z6, Z6, Z6
	VPXORQ Z7, Z7, Z7
	VPXORQ Z8, Z8, Z8
	VPXORQ Z9, Z9, Z9
	VPXORQ Z10, Z10, Z10
	VPXORQ Z11, Z11, Z11

	MOVQ CX, R9
	SHRQ $2, R9
	ANDQ $3, CX
	TESTQ R9, R9
	JZ   tail

loop4:
	PREFETCHT0 512(SI)
	STEP16(0)
	STEP16(48)
	STEP16(96)
	STEP16(144)
	ADDQ $192, SI
	DECQ R9
	JNZ  loop4

tail:
	TESTQ CX, CX
	JZ    store

loop1:
	STEP16(0)
	ADDQ $48, SI
	DECQ CX
	JNZ  loop1

store:
	VBROADCASTSD alpha+56(FP), Z12
	MOVQ add+64(FP), R10
	TESTQ R10, R10
	JZ   set
	ROW16(Z0, Z1)
	ADDQ R8, DX
	ADDQ R8, AX
	ROW16(Z2, Z3)
	ADDQ R8, DX
	ADDQ R8, AX
	ROW16(Z4, Z5)
	ADDQ R8, DX
	ADDQ R8, AX
	ROW16(Z6, Z7)
	ADDQ R8, DX
	ADDQ R8, AX
	ROW16(Z8, Z9)
	ADDQ R8, DX
	ADDQ R8, AX
	ROW16(Z10, Z11)
	VZEROUPPER
	RET

set:
	SETROW16(Z0, Z1)
	ADDQ R8, DX
	ADDQ R8, AX
	SETROW16(Z2, Z3)
	ADDQ R8, DX
	ADDQ R8, AX
	SETROW16(Z4, Z5)
	ADDQ R8, DX
	ADDQ R8, AX
	SETROW16(Z6, Z7)
	ADDQ R8, DX
	ADDQ R8, AX
	SETROW16(Z8, Z9)
	ADDQ R8, DX
	ADDQ R8, AX
	SETROW16(Z10, Z11)
	VZEROUPPER
	RET
