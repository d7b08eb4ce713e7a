package exrun

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os/exec"
	"runtime/debug"
	"strings"
)

// CodeVersion returns the version-control revision the program was built
// from, shortened to 12 hex digits, with "+dirty" when the working tree had
// changes, or "unknown" when it cannot be told. It reads the build's
// stamp (debug.ReadBuildInfo), which go build writes; go run and go test
// do not write it, so it then asks git for the revision of the current
// directory's repository.
func CodeVersion() string {
	rev, dirty := "", false
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if rev == "" {
		out, err := exec.Command("git", "rev-parse", "HEAD").Output()
		if err != nil {
			return "unknown"
		}
		rev = strings.TrimSpace(string(out))
		status, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output()
		dirty = err != nil || len(strings.TrimSpace(string(status))) > 0
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "+dirty"
	}
	return rev
}

// RunID names a run in metrics files and checkpoints: the code version
// ([CodeVersion]) and a digest of the run's settings, so two runs of one
// build with the same settings share an id and a run's id says which code
// made it. settings should hold everything that tells runs apart (model,
// estimator, seed, ...).
func RunID(settings ...any) string {
	sum := sha256.Sum256([]byte(fmt.Sprint(settings...)))
	return CodeVersion() + "/" + hex.EncodeToString(sum[:4])
}
