//go:build openblas

package ad

// #cgo LDFLAGS: -lopenblas
import "C"

import (
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/netlib/blas/netlib"
)

// With the openblas tag, every product in this package and in gonum's mat
// runs in OpenBLAS (apt-get install libopenblas-dev).
func init() {
	blas64.Use(netlib.Implementation{})
	useKernel = false
}
