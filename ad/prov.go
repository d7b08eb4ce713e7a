package ad

import (
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Provenance is an immutable set of non-negative stochastic-site ids, held
// as a growable bitset. The zero value is the empty set. Operations never
// modify their receiver, so a Provenance may be shared freely between
// tensors and goroutines.
type Provenance struct {
	words []uint64
}

// singletons holds the words of the sets of one id below 64, shared by
// every Provenance of such a set (sets are never modified).
var singletons = func() (s [64][1]uint64) {
	for i := range s {
		s[i][0] = 1 << uint(i)
	}
	return s
}()

// oneWords holds the sets of ids below 64 made so far, up to
// maxOneWords of them, shared like the singletons: a model's sets repeat
// from run to run, so that its runs make none anew.
var oneWords struct {
	sync.RWMutex
	m map[uint64]*[1]uint64
}

const maxOneWords = 1 << 14

// oneWord returns the words of the non-empty set of ids below 64 whose
// bits are w.
func oneWord(w uint64) []uint64 {
	if w&(w-1) == 0 {
		return singletons[bits.TrailingZeros64(w)][:]
	}
	oneWords.RLock()
	s := oneWords.m[w]
	oneWords.RUnlock()
	if s != nil {
		return s[:]
	}
	s = &[1]uint64{w}
	oneWords.Lock()
	if oneWords.m == nil {
		oneWords.m = make(map[uint64]*[1]uint64)
	}
	if old := oneWords.m[w]; old != nil {
		s = old
	} else if len(oneWords.m) < maxOneWords {
		oneWords.m[w] = s
	}
	oneWords.Unlock()
	return s[:]
}

// ProvenanceOf returns the set holding ids. It panics if an id is negative.
func ProvenanceOf(ids ...int) Provenance {
	if len(ids) == 1 && ids[0] >= 0 && ids[0] < 64 {
		return Provenance{words: singletons[ids[0]][:]}
	}
	var w []uint64
	for _, id := range ids {
		if id < 0 {
			panic("ad: negative provenance id " + strconv.Itoa(id))
		}
		k := id / 64
		for len(w) <= k {
			w = append(w, 0)
		}
		w[k] |= 1 << (uint(id) % 64)
	}
	return Provenance{words: trim(w)}
}

func trim(w []uint64) []uint64 {
	for len(w) > 0 && w[len(w)-1] == 0 {
		w = w[:len(w)-1]
	}
	if len(w) == 0 {
		return nil
	}
	return w
}

// Has reports whether id is in p.
func (p Provenance) Has(id int) bool {
	k := id / 64
	return id >= 0 && k < len(p.words) && p.words[k]&(1<<(uint(id)%64)) != 0
}

// Empty reports whether p has no ids.
func (p Provenance) Empty() bool { return len(p.words) == 0 }

// Len returns the number of ids in p.
func (p Provenance) Len() int {
	n := 0
	for _, w := range p.words {
		n += bits.OnesCount64(w)
	}
	return n
}

// SubsetOf reports whether every id of p is in q.
func (p Provenance) SubsetOf(q Provenance) bool {
	if len(p.words) > len(q.words) {
		return false
	}
	for i, w := range p.words {
		if w&^q.words[i] != 0 {
			return false
		}
	}
	return true
}

// Equal reports whether p and q hold the same ids.
func (p Provenance) Equal(q Provenance) bool {
	// Sets are kept trimmed, so equal sets have equal words.
	return slices.Equal(p.words, q.words)
}

// Union returns p ∪ q. When one set contains the other, the larger is
// returned without allocating.
func (p Provenance) Union(q Provenance) Provenance {
	if q.SubsetOf(p) {
		return p
	}
	if p.SubsetOf(q) {
		return q
	}
	long, short := p.words, q.words
	if len(short) > len(long) {
		long, short = short, long
	}
	if len(long) == 1 {
		return Provenance{words: oneWord(long[0] | short[0])}
	}
	w := make([]uint64, len(long))
	copy(w, long)
	for i, s := range short {
		w[i] |= s
	}
	return Provenance{words: w}
}

// Minus returns the ids of p that are not in q. When they are all of p's
// or none, it allocates nothing.
func (p Provenance) Minus(q Provenance) Provenance {
	switch {
	case p.SubsetOf(q):
		return Provenance{}
	case p.disjoint(q):
		return p
	case len(p.words) == 1:
		return Provenance{words: oneWord(p.words[0] &^ q.words[0])}
	}
	w := make([]uint64, len(p.words))
	for i, pw := range p.words {
		if i < len(q.words) {
			pw &^= q.words[i]
		}
		w[i] = pw
	}
	return Provenance{words: trim(w)}
}

// disjoint reports whether p and q have no id in common.
func (p Provenance) disjoint(q Provenance) bool {
	for i := range min(len(p.words), len(q.words)) {
		if p.words[i]&q.words[i] != 0 {
			return false
		}
	}
	return true
}

// IDs returns the ids of p in increasing order.
func (p Provenance) IDs() []int { return p.AppendIDs(make([]int, 0, p.Len())) }

// AppendIDs appends the ids of p in increasing order to ids and returns
// the extended slice.
func (p Provenance) AppendIDs(ids []int) []int {
	for k, w := range p.words {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			ids = append(ids, k*64+b)
			w &^= 1 << uint(b)
		}
	}
	return ids
}

// String formats p as {1,4,7}.
func (p Provenance) String() string {
	var sb strings.Builder
	sb.WriteByte('{')
	for i, id := range p.IDs() {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.Itoa(id))
	}
	sb.WriteByte('}')
	return sb.String()
}
