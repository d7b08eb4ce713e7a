package q_test

import (
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/backpropq/backpropq/ad"
	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/q"
	"github.com/backpropq/backpropq/trace"
)

// TestNetworkHoldsNoTrace checks that a network, which a Cache keeps for
// the whole run, reaches no trace, site, tensor or tape: those of the
// trace it was built from live on a tape that is reset every step.
func TestNetworkHoldsNoTrace(t *testing.T) {
	_, tr := graphOf(t, figure2())
	var cache q.Cache
	net, err := cache.Network(tr.Graph())
	require.NoError(t, err)
	banned := map[reflect.Type]bool{
		reflect.TypeOf(&ad.Tape{}): true, reflect.TypeOf(&ad.Tensor{}): true,
		reflect.TypeOf(&ppl.Site{}): true, reflect.TypeOf(&trace.Trace{}): true, reflect.TypeOf(&trace.Graph{}): true,
	}
	seen := map[uintptr]bool{}
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		require.False(t, banned[v.Type()], "the network reaches a %v at %s", v.Type(), path)
		switch v.Kind() {
		case reflect.Pointer:
			if v.IsNil() || seen[v.Pointer()] {
				return
			}
			seen[v.Pointer()] = true
			walk(v.Elem(), path)
		case reflect.Struct:
			for i := range v.NumField() {
				walk(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
		case reflect.Slice, reflect.Array:
			for i := range v.Len() {
				walk(v.Index(i), path+"[]")
			}
		case reflect.Map:
			for _, k := range v.MapKeys() {
				walk(v.MapIndex(k), path+"[key]")
			}
		case reflect.Interface:
			if !v.IsNil() {
				walk(v.Elem(), path)
			}
		}
	}
	walk(reflect.ValueOf(net), "net")
}
