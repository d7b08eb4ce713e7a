package ad_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
)

// A value that is not a class index, used as one, panics with a typed
// *ad.IndexError that says which op and which value.
func TestIndexErrorIsTyped(t *testing.T) {
	tp := ad.NewTape()
	table := tp.FromData(2, 3, []float64{1, 2, 3, 4, 5, 6})
	for _, idx := range [][]float64{{0.5, 1}, {0, 3}, {-1, 0}} {
		func() {
			defer func() {
				e, ok := recover().(*ad.IndexError)
				require.True(t, ok, "index %v", idx)
				require.Equal(t, "Gather", e.Op)
				require.Equal(t, 3, e.N)
				require.Contains(t, e.Error(), "is not an integer in [0, 3)")
			}()
			ad.Gather(table, tp.FromData(2, 1, idx))
		}()
	}
}
