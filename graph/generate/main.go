// Command generate runs gqlgen (the version go.mod declares as a tool) with gqlgen.yml and one
// plugin of Orchard's: the fields of the schema's object types are resolved one after the other
// in the goroutine that resolves the object, instead of each in a goroutine of its own.
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
	"io/fs"
	"os"

	"github.com/99designs/gqlgen/api"
	"github.com/99designs/gqlgen/codegen"
	"github.com/99designs/gqlgen/codegen/config"
)

// sequentialFields is the plugin.
type sequentialFields struct{}

func (sequentialFields) Name() string { return "orchard-sequential-fields" }

// GenerateCode runs after gqlgen has built its model of the schema and before it writes the
// executor, which reads DisableConcurrency.
func (sequentialFields) GenerateCode(data *codegen.Data) error {
	for _, o := range data.Objects {
		if !o.Root {
			o.DisableConcurrency = true
		}
	}
	return nil
}

func main() {
	cfg, err := config.LoadConfigFromDefaultLocations()
	if errors.Is(err, fs.ErrNotExist) {
		err = fmt.Errorf("gqlgen.yml not found: run go generate from the repository root")
	}
	if err == nil {
		err = api.Generate(cfg, api.AddPlugin(sequentialFields{}))
	}
	if err == nil {
		err = dropDeferredGroups(cfg.Exec.Filename)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}

// dropDeferredGroups removes, from the executor gqlgen wrote, the @defer bookkeeping of every
// object: with its fields resolved in order (sequentialFields) an object never defers a field,
// yet gqlgen still builds a group for it (its path, a field set, a map), and on a 100-item
// page those groups were a tenth of the request's allocations. An empty group does the same.
// It refuses to do so if any field is still scheduled concurrently with a group.
func dropDeferredGroups(file string) error {
	src, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if bytes.Contains(src, []byte("&deferred")) {
		return fmt.Errorf("%s: a field still uses its object's @defer group; not dropping the groups", file)
	}
	out := bytes.ReplaceAll(src, []byte("deferred := graphql.NewDeferredGroup(ctx)"),
		[]byte("var deferred graphql.DeferredGroup // fields resolve in order: see graph/generate"))
	return os.WriteFile(file, out, 0o644)
}
