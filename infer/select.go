package infer

import (
	"fmt"
	"math/rand/v2"
	"path"
	"sort"
	"strings"

	"github.com/backpropq/backpropq/ppl"
	"github.com/backpropq/backpropq/ppl/dist"
)

// Estimators chooses the estimator of each stochastic site by its address.
//
// Sites maps address patterns (the syntax of path.Match, so "*" does not
// cross a "/": "z*" matches "z1" but not "enc/z1", while "enc/*" matches
// "enc/z1") to estimators. A site takes the estimator of its exact address if
// there is one, else that of the most specific matching pattern: the one with
// the most literal (non-wildcard) characters, ties going to the
// lexicographically smaller pattern. A site no pattern matches takes Default,
// and when Default is nil, [Pathwise] if its distribution can RSample
// (dist.Reparameterized) and [ScoreFunction] without baseline otherwise.
//
// The zero value is valid: pathwise gradients where possible, REINFORCE
// elsewhere.
type Estimators struct {
	Default Estimator
	Sites   map[string]Estimator
}

// Validate reports a malformed pattern or a nil estimator in Sites.
func (e Estimators) Validate() error {
	// The error of the smallest bad pattern, as a sorted scan would
	// find, without sorting.
	bad, found := "", false
	for p, est := range e.Sites {
		if found && p >= bad {
			continue
		}
		if _, err := path.Match(p, ""); err != nil || est == nil {
			bad, found = p, true
		}
	}
	if !found {
		return nil
	}
	if _, err := path.Match(bad, ""); err != nil {
		return fmt.Errorf("infer: Estimators: pattern %q: %w", bad, err)
	}
	return fmt.Errorf("infer: Estimators: pattern %q: nil estimator", bad)
}

// For returns the estimator of the sample site at addr whose distribution
// is d. It assumes the patterns are valid (see [Estimators.Validate]); a
// malformed pattern matches nothing.
func (e Estimators) For(addr string, d dist.Distribution) Estimator {
	if est, ok := e.Sites[addr]; ok && est != nil {
		return est
	}
	best, bestLit := "", -1
	for p, est := range e.Sites {
		if est == nil {
			continue
		}
		if ok, err := path.Match(p, addr); err != nil || !ok {
			continue
		}
		lit := literalLen(p)
		if lit > bestLit || (lit == bestLit && p < best) {
			best, bestLit = p, lit
		}
	}
	if bestLit >= 0 {
		return e.Sites[best]
	}
	if e.Default != nil {
		return e.Default
	}
	if _, ok := d.(dist.Reparameterized); ok {
		return Pathwise{}
	}
	return ScoreFunction{}
}

// literalLen counts the characters of a path.Match pattern that match
// only themselves.
func literalLen(p string) int {
	n := 0
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*', '?':
		case '\\':
			i++
			n++
		case '[':
			// A class matches one character; count it as half as
			// specific as a literal by skipping it entirely.
			j := strings.IndexByte(p[i:], ']')
			if j < 0 {
				return n
			}
			i += j
		default:
			n++
		}
	}
	return n
}

// sortedPatterns returns the keys of Sites in sorted order.
func (e Estimators) sortedPatterns() []string { return e.appendPatterns(nil) }

// appendPatterns appends the keys of Sites to ps in sorted order.
func (e Estimators) appendPatterns(ps []string) []string {
	start := len(ps)
	for p := range e.Sites {
		ps = append(ps, p)
	}
	sort.Strings(ps[start:])
	return ps
}

// stateful returns the distinct Stateful estimators of the selection, each
// with the key its state is saved under: "default" or "site/<pattern>".
func (e Estimators) stateful() (keys []string, ests []Stateful) {
	var l statefulList
	e.list(&l)
	return l.keys, l.ests
}

// statefulList holds [Estimators.stateful]'s keys and estimators, in
// memory that a training loop reuses from step to step.
type statefulList struct {
	keys     []string
	ests     []Stateful
	patterns []string
	// siteKeys holds the key of each pattern, made once.
	siteKeys map[string]string
}

// list sets l to the selection's Stateful estimators and their keys.
func (e Estimators) list(l *statefulList) {
	clear(l.keys)
	clear(l.ests)
	keys, ests := l.keys[:0], l.ests[:0]
	seen := map[Stateful]bool{}
	add := func(key string, est Estimator) {
		st, ok := est.(Stateful)
		if !ok {
			return
		}
		// An estimator used under several keys is saved once; one that
		// cannot be compared is saved under each of its keys.
		if comparableEstimator(st) {
			if seen[st] {
				return
			}
			seen[st] = true
		}
		keys = append(keys, key)
		ests = append(ests, st)
	}
	if e.Default != nil {
		add("default", e.Default)
	}
	clear(l.patterns)
	l.patterns = e.appendPatterns(l.patterns[:0])
	for _, p := range l.patterns {
		key, ok := l.siteKeys[p]
		if !ok {
			if l.siteKeys == nil {
				l.siteKeys = map[string]string{}
			}
			key = "site/" + p
			l.siteKeys[p] = key
		}
		add(key, e.Sites[p])
	}
	l.keys, l.ests = keys, ests
}

// comparableEstimator reports whether est can be a map key; estimators with
// state are pointers or hold pointers, which are.
func comparableEstimator(est Stateful) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	m := map[Stateful]bool{}
	m[est] = true
	return true
}

// wantsRSample reports whether est's site should be drawn with RSample.
func wantsRSample(est Estimator) bool {
	r, ok := est.(Reparameterizing)
	return ok && r.Reparameterizes()
}

// selection is the handler of a training run: it sets NoRSample on the
// sites whose estimator does not want a pathwise draw and lets a Drawer
// estimator supply its site's value, which then enters the run as a
// substituted value (see trace.Override).
type selection struct {
	est Estimators
	rng *rand.Rand
}

func (h *selection) Handle(s *ppl.Site, next func(*ppl.Site)) {
	if s.Kind == ppl.KindSample && s.Value == nil {
		est := h.est.For(s.Addr, s.Dist)
		if !wantsRSample(est) {
			s.NoRSample = true
		}
		if d, ok := est.(Drawer); ok {
			if v := d.Draw(s, h.rng); v != nil {
				s.Value = v
				s.Substituted = true
			}
		}
	}
	next(s)
}
