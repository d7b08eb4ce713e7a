package mnist

import (
	"bytes"
	"compress/gzip"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoadSplits(t *testing.T) {
	d, err := Load()
	require.NoError(t, err)
	assert.Equal(t, 50000, d.Train.Len())
	assert.Equal(t, 10000, d.Valid.Len())
	assert.Equal(t, 10000, d.Test.Len())
	// Mean intensity of MNIST is about 0.13 (33/255): a loose check that
	// the bytes are images, not noise or zeros.
	sum := 0.0
	for _, p := range d.Test.Images {
		sum += float64(p)
	}
	mean := sum / float64(len(d.Test.Images)) / 255
	assert.InDelta(t, 0.13, mean, 0.01)
	counts := make([]int, 10)
	for _, l := range d.Train.Labels {
		counts[l]++
	}
	for digit, c := range counts {
		assert.Greater(t, c, 4000, "digit %d", digit)
	}
}

func TestBinarization(t *testing.T) {
	d, err := Load()
	require.NoError(t, err)
	s := d.Test.Slice(0, 200)
	idx := make([]int, 200)
	for i := range idx {
		idx[i] = i
	}
	gray := make([]float64, len(idx)*Pixels)
	s.Batch(gray, idx, Gray, nil)
	rng := rand.New(rand.NewPCG(1, 2))
	a := make([]float64, len(gray))
	b := make([]float64, len(gray))
	s.Batch(a, idx, Dynamic, rng)
	s.Batch(b, idx, Dynamic, rng)
	// Dynamic draws differ between uses; their mean matches the intensity
	// within CLT tolerance.
	diff, meanGray, meanBin, varSum := 0, 0.0, 0.0, 0.0
	for i := range a {
		require.True(t, a[i] == 0 || a[i] == 1)
		if gray[i] == 0 || gray[i] == 1 {
			require.Equal(t, gray[i], a[i], "pixel %d: intensity 0 is never on, 255 always", i)
		}
		if a[i] != b[i] {
			diff++
		}
		meanGray += gray[i]
		meanBin += a[i]
		varSum += gray[i] * (1 - gray[i])
	}
	assert.Greater(t, diff, 100)
	assert.InDelta(t, meanGray, meanBin, 5*math.Sqrt(varSum))
	// Fixed binarization is the same at every use.
	s.Batch(a, idx, Fixed, nil)
	s.Batch(b, idx, Fixed, nil)
	assert.Equal(t, a, b)
}

func writeGz(t *testing.T, name string, data []byte) {
	var buf bytes.Buffer
	z := gzip.NewWriter(&buf)
	_, err := z.Write(data)
	require.NoError(t, err)
	require.NoError(t, z.Close())
	require.NoError(t, os.WriteFile(name, buf.Bytes(), 0o644))
}

func TestDamagedFiles(t *testing.T) {
	cases := []struct {
		name string
		data []byte
		gz   bool
		want string
	}{
		{"not gzip", []byte("hello"), false, "damaged"},
		{"bad magic", []byte{0, 0, 9, 9, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28}, true, "magic"},
		{"huge count", []byte{0, 0, 8, 3, 0x7f, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28}, true, "header says"},
		{"truncated", []byte{0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3}, true, "truncated"},
		{"short header", []byte{0, 0}, true, "short header"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			name := filepath.Join(dir, "train-images-idx3-ubyte.gz")
			if c.gz {
				writeGz(t, name, c.data)
			} else {
				require.NoError(t, os.WriteFile(name, c.data, 0o644))
			}
			_, err := LoadDir(dir)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.Contains(t, err.Error(), name)
		})
	}
	_, err := LoadDir(t.TempDir())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "go mod download")
}

// TestDynamicThresholds checks that comparing a draw's 53 bits with
// dynamicBelow gives the floating-point test rng.Float64()*255 < p on
// each side of every threshold and on random draws.
func TestDynamicThresholds(t *testing.T) {
	float := func(k uint64, p int) bool { return float64(k)/(1<<53)*255 < float64(p) }
	rng := rand.New(rand.NewPCG(3, 4))
	for p := range 256 {
		below := dynamicBelow[p]
		ks := []uint64{0, 1, 1<<53 - 1}
		if below > 0 {
			ks = append(ks, below-1)
		}
		if below < 1<<53 {
			ks = append(ks, below)
		}
		for range 1000 {
			ks = append(ks, rng.Uint64()<<11>>11)
		}
		for _, k := range ks {
			if got, want := k < below, float(k, p); got != want {
				t.Fatalf("p=%d, k=%d: threshold test %v, float test %v", p, k, got, want)
			}
		}
	}
}

// BenchmarkDynamicBatch times the dynamic binarization of a batch of 50
// training images, the data preparation of one training step.
func BenchmarkDynamicBatch(b *testing.B) {
	d, err := Load()
	require.NoError(b, err)
	idx := make([]int, 50)
	for i := range idx {
		idx[i] = i * 997 % d.Train.Len()
	}
	dst := make([]float64, len(idx)*Pixels)
	rng := rand.New(rand.NewPCG(1, 2))
	b.ReportAllocs()
	for b.Loop() {
		d.Train.Batch(dst, idx, Dynamic, rng)
	}
}
