package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// goFile is one Go source file of the module and its lines.
type goFile struct {
	path  string // slash-separated, relative to the module root
	lines []string
}

// goFiles reads every .go file of the module (tests included), skipping hidden directories.
func goFiles(t *testing.T) []goFile {
	t.Helper()
	var out []goFile
	err := filepath.WalkDir(".", func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() {
			if p != "." && strings.HasPrefix(e.Name(), ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out = append(out, goFile{path: filepath.ToSlash(p), lines: strings.Split(string(b), "\n")})
		return nil
	})
	if err != nil {
		t.Fatalf("walk the module: %v", err)
	}
	if len(out) < 50 {
		t.Fatalf("found only %d .go files: is the test running from the module root?", len(out))
	}
	return out
}

// A holder key ("D:<serial>", "U:<clientUserId>": the unique index on (pool_id, holder_key)
// that keeps one active assignment per pool and holder) is spelled in one place,
// model.HolderKeyFor, so that no code can build a key that misses the index or a map lookup.
func TestHolderKeysSpelledOnlyByHolderKeyFor(t *testing.T) {
	t.Parallel()
	spelled := regexp.MustCompile(`"[DU]:"`)
	for _, f := range goFiles(t) {
		if f.path == "model/assignment.go" || strings.HasSuffix(f.path, "_test.go") {
			continue
		}
		for i, l := range f.lines {
			if spelled.MatchString(l) {
				t.Errorf("%s:%d spells a holder key by hand (use model.HolderKeyFor): %s", f.path, i+1, strings.TrimSpace(l))
			}
		}
	}
}
