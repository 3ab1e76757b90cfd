// Command generate runs gqlgen (the version go.mod declares as a tool) with gqlgen.yml and one
// plugin of Orchard's: the fields of the schema's object types are resolved one after the other
// in the goroutine that resolves the object, instead of each in a goroutine of its own.
//
// Why: the list resolvers load every to-one relation of a page in one statement per relation,
// level by level, before the fields are resolved (resolvers/prefetch.go), so a relation field
// finds its value in the request's loader at once, and a goroutine per field (three or four
// per item of a page) costs more than the field itself — on a 100-item page, about a seventh of
// the request. The items of a list are still resolved concurrently (gqlgen does that for
// lists), so a relation that is not primed is still loaded for all the items of its level in
// one batch; only sibling relations of one object that are not primed wait for each other.
// Root types (queries, mutations, subscriptions) keep gqlgen's behaviour.
//
//	go generate ./...   (from the repository root)
package main

import (
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
	if err != nil {
		fmt.Fprintln(os.Stderr, "generate:", err)
		os.Exit(1)
	}
}
