//go:build !amd64 || purego

package vmath

const vectorized = false

func softplusSigmoidVec(w, sp, sig []float64) { panic("vmath: no vector kernel on this platform") }
