package main

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The documents the code cites by section, and where they are.
var citedDocs = map[string]string{
	"doc/design.md":    "doc/design.md",
	"doc/apple-api.md": "doc/apple-api.md",
}

var (
	// sectionRef is a section sign and a section number, or a range of them ("5.4–5.6").
	sectionRef = regexp.MustCompile("\u00a7\\s*(\\d+(?:\\.\\d+)*)(?:\\s*[-\u2013]\\s*(\\d+(?:\\.\\d+)*))?")
	// docMention is what may name the document of a section: one of citedDocs, an RFC (whose
	// sections are not ours to check), or anything else that looks like a document — which
	// the test refuses.
	docMention = regexp.MustCompile(`doc/design\.md|doc/apple-api\.md|RFC \d+|[\w./-]*\.md\b|\bDESIGN\b`)
	// heading is a numbered Markdown heading ("## 2. Shape…", "### 2.1 The write path").
	heading = regexp.MustCompile(`^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s`)
)

// Every section reference in the code resolves: it names doc/design.md or doc/apple-api.md
// before it on its line (a list such as "doc/apple-api.md <section> 5.4, <section> 5.5" names
// it once), and the section is a numbered heading of that document. A reference to a document
// outside the repository, to no document, or to a section that does not exist fails, naming
// the file and line.
func TestSectionReferencesResolve(t *testing.T) {
	t.Parallel()
	sections := map[string]map[string]bool{}
	for name, path := range citedDocs {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read %s: %v", path, err)
		}
		sections[name] = map[string]bool{}
		for _, l := range strings.Split(string(b), "\n") {
			if m := heading.FindStringSubmatch(l); m != nil {
				sections[name][m[1]] = true
			}
		}
		if len(sections[name]) < 5 {
			t.Fatalf("%s has only %d numbered headings", path, len(sections[name]))
		}
	}
	refs := 0
	for _, f := range goFiles(t) {
		for i, line := range f.lines {
			mentions := docMention.FindAllStringIndex(line, -1)
			for _, ref := range sectionRef.FindAllStringSubmatchIndex(line, -1) {
				refs++
				at := f.path + ":" + strconv.Itoa(i+1)
				doc := ""
				for _, m := range mentions {
					if m[1] <= ref[0] {
						doc = line[m[0]:m[1]]
					}
				}
				text := line[ref[0]:ref[1]]
				switch {
				case doc == "":
					t.Errorf("%s: %q names no document (write doc/design.md or doc/apple-api.md before it)", at, text)
					continue
				case strings.HasPrefix(doc, "RFC "):
					continue
				case sections[doc] == nil:
					t.Errorf("%s: %q points to %s, not to doc/design.md or doc/apple-api.md", at, text, doc)
					continue
				}
				for _, g := range [][2]int{{ref[2], ref[3]}, {ref[4], ref[5]}} {
					if g[0] < 0 {
						continue
					}
					if n := line[g[0]:g[1]]; !sections[doc][n] {
						t.Errorf("%s: %q: %s has no section %s", at, text, doc, n)
					}
				}
			}
		}
	}
	if refs < 50 {
		t.Errorf("found only %d section references in the code: is the scan broken?", refs)
	}
}
