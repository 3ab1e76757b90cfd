// Command generate runs gqlgen (the version go.mod declares as a tool) with gqlgen.yml and one
// plugin of Orchard's: the fields of the schema's object types are resolved one after the other
// in the goroutine that resolves the object, instead of each in a goroutine of its own. It then
// patches gqlgen's executor for the read fast paths (see fastpaths.go).
//
// Why: the list resolvers load every to-one relation of a page in one statement per relation,
// level by level, before the fields are resolved (resolvers/prefetch.go), so a relation field
// finds its value in the request's loader at once, and a goroutine per field (three or four
// per item of a page) costs more than the field itself — on a 100-item page, about a fifth of
// the request. The items of a list are still resolved concurrently (gqlgen does that for
// lists), so a relation that is not primed is still loaded for all the items of its level in
// one batch; only sibling relations of one object that are not primed wait for each other.
// Root types (queries, mutations, subscriptions) keep gqlgen's behaviour.
//
//	go generate ./...   (from the repository root)
package main

import (
	"bytes"
	"errors"
	"fmt"
	"go/format"
	"io/fs"
	"os"

	"github.com/99designs/gqlgen/api"
	"github.com/99designs/gqlgen/codegen"
	"github.com/99designs/gqlgen/codegen/config"
)

// sequentialFields is the plugin. It counts the objects whose executor builds a @defer group
// (all but the subscription root, which streams), so that the patch of the executor can check
// it found one group in each (see dropDeferredGroups).
type sequentialFields struct {
	objects   int
	inPlace   int             // the objects that are neither streamed nor roots
	plain     map[string]bool // the executor functions of the plain fields: see plainFields
	relations map[string]bool // and of the to-one relations: see relations
}

func (*sequentialFields) Name() string { return "orchard-sequential-fields" }

// GenerateCode runs after gqlgen has built its model of the schema and before it writes the
// executor, which reads DisableConcurrency.
func (p *sequentialFields) GenerateCode(data *codegen.Data) error {
	for _, o := range data.Objects {
		if !o.Stream {
			p.objects++
		}
		if !o.Root {
			o.DisableConcurrency = true
			if !o.Stream {
				p.inPlace++
			}
		}
	}
	p.plain = plainFields(data)
	p.relations = relations(data)
	return nil
}

func main() {
	cfg, err := config.LoadConfigFromDefaultLocations()
	if errors.Is(err, fs.ErrNotExist) {
		err = fmt.Errorf("gqlgen.yml not found: run go generate from the repository root")
	}
	plugin := &sequentialFields{}
	if err == nil {
		err = api.Generate(cfg, api.AddPlugin(plugin))
	}
	if err == nil {
		err = patchFile(cfg.Exec.Filename, func(src []byte) ([]byte, error) {
			src, err := dropDeferredGroups(src, plugin.objects)
			if err == nil {
				src, err = readPlainFields(src, plugin.plain)
			}
			if err == nil {
				src, err = resolveRelations(src, plugin.relations)
			}
			if err == nil {
				src, err = marshalListsInOrder(src)
			}
			if err == nil {
				src, err = writeFieldSets(src, plugin.objects, plugin.inPlace)
			}
			return src, err
		})
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}

// patchFile rewrites file with what patch makes of it, formatted, and leaves it alone if
// patch fails or its output is not Go.
func patchFile(file string, patch func([]byte) ([]byte, error)) error {
	src, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	out, err := patch(src)
	if err == nil {
		out, err = format.Source(out)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return os.WriteFile(file, out, 0o644)
}

// The text dropDeferredGroups replaces in gqlgen's executor, and what it puts instead.
const (
	deferredGroupNew  = "deferred := graphql.NewDeferredGroup(ctx)"
	deferredGroupZero = "var deferred graphql.DeferredGroup // fields resolve in order: see graph/generate"
)

// dropDeferredGroups removes, from the executor gqlgen wrote, the @defer bookkeeping of every
// object: with its fields resolved in order (sequentialFields) an object never defers a field,
// yet gqlgen still builds a group for it (its path, a field set, a map), and on a 100-item
// page those groups were a tenth of the request's allocations. An empty group does the same.
//
// It is a textual patch of another program's output, so it fails the generation — rather
// than leave the executor half patched or quietly unpatched — when that output is not the one
// it was written for: when a field is still scheduled concurrently with a group (the group
// would then be needed), or when it does not find the group's construction exactly once in
// each of the objects gqlgen generated (a gqlgen upgrade that renamed or moved it).
func dropDeferredGroups(src []byte, objects int) ([]byte, error) {
	const name = "drop-deferred-groups"
	if bytes.Contains(src, []byte("&deferred")) {
		return nil, fmt.Errorf("patch %s: a field still uses its object's @defer group; not dropping the groups", name)
	}
	switch n := bytes.Count(src, []byte(deferredGroupNew)); {
	case n == 0:
		return nil, fmt.Errorf("patch %s: %q not found in gqlgen's output (did gqlgen change?)", name, deferredGroupNew)
	case n != objects:
		return nil, fmt.Errorf("patch %s: %q found %d times, want once in each of the %d objects that are not streamed (did gqlgen change?)", name, deferredGroupNew, n, objects)
	}
	return bytes.ReplaceAll(src, []byte(deferredGroupNew), []byte(deferredGroupZero)), nil
}
