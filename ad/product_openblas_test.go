//go:build openblas

package ad

import "gonum.org/v1/netlib/blas/netlib"

func init() {
	productImpls = append(productImpls, struct {
		name string
		run  dgemm
	}{"openblas", blasProduct(netlib.Implementation{})})
}
