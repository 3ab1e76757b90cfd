package resolvers

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"orchard/graph"
	"orchard/model"
)

// Query limits. A connection multiplies the cost of what is selected under it by its page
// size, so a query's complexity is roughly the number of objects it may return; the depth
// limit stops deeply nested queries that complexity alone would price too low.

// complexityRoot prices every connection field as (child + 1) × first (default page size when
// first is absent) and nodes(ids) as child × len(ids). It fills every field of the generated
// ComplexityRoot whose first argument is `first *int`, so connections added to the schema
// later are priced without anyone remembering to.
func complexityRoot() graph.ComplexityRoot {
	var root graph.ComplexityRoot
	intPtr := reflect.TypeOf((*int)(nil))
	strSlice := reflect.TypeOf([]string(nil))
	rv := reflect.ValueOf(&root).Elem()
	for i := 0; i < rv.NumField(); i++ {
		obj := rv.Field(i)
		for j := 0; j < obj.NumField(); j++ {
			f := obj.Field(j)
			ft := f.Type()
			if ft.Kind() != reflect.Func || ft.NumIn() < 2 {
				continue
			}
			switch ft.In(1) {
			case intPtr:
				f.Set(reflect.MakeFunc(ft, func(args []reflect.Value) []reflect.Value {
					child := int(args[0].Int())
					n := defaultPageSize
					if p := args[1].Interface().(*int); p != nil && *p > 0 {
						n = *p
					}
					return []reflect.Value{reflect.ValueOf((child + 1) * n)}
				}))
			case strSlice:
				f.Set(reflect.MakeFunc(ft, func(args []reflect.Value) []reflect.Value {
					child := int(args[0].Int())
					n := len(args[1].Interface().([]string))
					return []reflect.Value{reflect.ValueOf((child + 1) * max(n, 1))}
				}))
			}
		}
	}
	return root
}

// depthLimit refuses operations nested deeper than Max fields (introspection fields, which
// GraphiQL nests deeply, do not count).
type depthLimit struct{ Max int }

var (
	_ graphql.HandlerExtension        = depthLimit{}
	_ graphql.OperationContextMutator = depthLimit{}
)

func (depthLimit) ExtensionName() string                   { return "DepthLimit" }
func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }
func (d depthLimit) MutateOperationContext(ctx context.Context, rc *graphql.OperationContext) *gqlerror.Error {
	if rc.Operation == nil {
		return nil
	}
	if depth := selectionDepth(rc.Operation.SelectionSet, 0, map[string]bool{}); depth > d.Max {
		return &gqlerror.Error{
			Message:    fmt.Sprintf("operation is nested %d levels deep, more than the limit of %d", depth, d.Max),
			Extensions: map[string]any{"code": string(model.CodeDepthLimitExceeded)},
		}
	}
	return nil
}

func selectionDepth(set ast.SelectionSet, depth int, seen map[string]bool) int {
	deepest := depth
	for _, sel := range set {
		var d int
		switch s := sel.(type) {
		case *ast.Field:
			if strings.HasPrefix(s.Name, "__") {
				continue
			}
			d = selectionDepth(s.SelectionSet, depth+1, seen)
		case *ast.InlineFragment:
			d = selectionDepth(s.SelectionSet, depth, seen)
		case *ast.FragmentSpread:
			if s.Definition == nil || seen[s.Name] {
				continue
			}
			seen[s.Name] = true
			d = selectionDepth(s.Definition.SelectionSet, depth, seen)
			delete(seen, s.Name)
		}
		deepest = max(deepest, d)
	}
	return deepest
}
