package main

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/99designs/gqlgen/codegen"
)

// The read fast paths. A page of 100 assignments with their pool, account, app, device and
// users is about 1,500 fields and 800 objects, and gqlgen's executor costs more per field than
// the page's SQL costs per row: for each field a field context, a context, the middleware
// chain, a boxed value and a closure; for each object a map of the aliases it wrote; for each
// item of a list a goroutine of its own, whose stack grows twice on the way down. The nested
// page cost 2.2× its SQL issued from Go (resolvers/bench_test.go, BenchmarkNestedPage); these
// four patches of gqlgen's output bring it to about 1.4×, with the executor otherwise as
// gqlgen wrote it:
//
//   - readPlainFields: a plain field — a value read straight off its object (a struct field,
//     or a method without a context, arguments or an error), with no resolver and no
//     directive — is marshalled at once, without graphql.ResolveField: a scalar or enum with
//     its object's context, an object or a list (edges, node, pageInfo) with a field context
//     of its own, so that the paths below it are right. What that skips cannot apply to such a
//     field: it has no error to place at its path and no resolver to time, and a panic (only a
//     method could) is recovered by the enclosing field, one level up. The field middleware
//     (resolvers.meterField, the response-size meter) does not see plain fields: their values
//     are already in memory, in their object, and the response's JSON is still held to the
//     bound as a whole.
//   - resolveRelations: a to-one relation — an object a resolver returns, without arguments
//     or directives — is resolved as graphql.ResolveField resolves it (its field context, the
//     panic recovered to a null and an error at its path, the resolver's error at its path and
//     location) but without the field middleware and the closures that carry it: on the nested
//     page these are six fields an item, and a twentieth of the request. The field middleware
//     sees the root fields, the fields with arguments (the nested connections), the lists and
//     the computed scalars; resolvers.TestFieldMiddlewareSees holds it to that.
//   - marshalListsInOrder: the items of a list are marshalled one after the other in the
//     goroutine of the list (graph/fastpaths.go, marshalInOrder), not each in a goroutine of
//     its own. The concurrency bought nothing: the list resolvers prime every relation of a
//     page before its items are marshalled (resolvers/prefetch.go), so no item waits for a
//     loader. A relation the prefetch did not prime would wait a loader's batch window per
//     item and load in a statement per item; resolvers/nplus1_test.go selects every relation of
//     the schema and fails on a statement per item.
//   - writeFieldSets: an object's fields are written by graph.fieldSet, which checks for a
//     repeated alias among the few before it instead of keeping a map of them per object; and
//     an object that is not a root holds its values while they resolve in a graph.objectFields
//     (a slice, and the count of the non-null ones that came out null) rather than in gqlgen's
//     FieldSet, whose bookkeeping is for fields resolved concurrently or deferred — which, here,
//     they never are.
//
// Each patch fails the generation, naming itself, when gqlgen's output is not the text it was
// written for (a gqlgen upgrade that changed it), rather than leave the executor half patched.

// plainFields returns the functions, named as gqlgen names them (_Object_field), of the plain
// fields of the schema's objects (see readPlainFields), and whether each is a leaf.
func plainFields(data *codegen.Data) map[string]bool {
	return pickFields(data, func(f *codegen.Field) (bool, bool) {
		return f.TypeReference.Definition.IsLeafType(), isPlain(f)
	})
}

// relations returns the functions (_Object_field) of the to-one relations of the schema's
// objects: see resolveRelations.
func relations(data *codegen.Data) map[string]bool {
	return pickFields(data, func(f *codegen.Field) (bool, bool) { return true, isRelation(f) })
}

// pickFields returns, by executor function (_Object_field), the value pick gives each field of
// the objects that are neither roots nor streamed, for the fields it picks (ok).
func pickFields(data *codegen.Data, pick func(*codegen.Field) (v, ok bool)) map[string]bool {
	out := map[string]bool{}
	for _, o := range data.Objects {
		if o.Root || o.Stream {
			continue
		}
		for _, f := range o.Fields {
			if f.TypeReference == nil || f.TypeReference.Definition == nil {
				continue
			}
			if v, ok := pick(f); ok {
				out["_"+o.Name+"_"+f.Name] = v
			}
		}
	}
	return out
}

// isPlain says whether gqlgen reads a field straight off its object.
func isPlain(f *codegen.Field) bool {
	if f.IsResolver || f.IsBatch() || f.IsMap() || len(f.Args) > 0 || f.HasDirectives() || f.Stream {
		return false
	}
	if f.IsMethod() {
		return !f.MethodHasContext && f.NoErr && !f.VOkFunc && !f.HasHaser
	}
	return f.IsVariable()
}

// isRelation says whether a field is a to-one relation: one object a resolver returns, without
// arguments or directives.
func isRelation(f *codegen.Field) bool {
	return f.IsResolver && !f.IsBatch() && len(f.Args) == 0 && !f.HasDirectives() && !f.Stream &&
		!f.TypeReference.Definition.IsLeafType() && !f.TypeReference.IsSlice()
}

// fieldFn is gqlgen's executor function for a field with neither arguments nor directives;
// its groups are the function's name, its signature, what the field resolves (a value read
// off the object, "obj.X, nil" or "obj.X(), nil", or a resolver's call) and the marshaller of
// that value.
var fieldFn = regexp.MustCompile(`(?m)^func \(ec \*executionContext\) (_\w+)(\(ctx context\.Context, field graphql\.CollectedField, obj [^\n]*\) \(ret graphql\.Marshaler\)) \{
	return graphql\.ResolveField\(
		ctx,
		ec\.OperationContext,
		field,
		func\(ctx context\.Context, field graphql\.CollectedField\) \(\*graphql\.FieldContext, error\) \{
			return ec\.fieldContext\w+\(ctx, field\)
		\},
		func\(ctx context\.Context\) \(any, error\) \{
			return (obj\.\w+(?:\(\))?, nil|ec\.Resolvers\.\w+\(\)\.\w+\(ctx, obj\))
		\},
		nil,
		func\(ctx context\.Context, selections ast\.SelectionSet, v [^\n]*\) graphql\.Marshaler \{
			return (ec\.[^(\s]+)\(ctx, selections, v\)
		\},
		true,
		(?:true|false),
	\)
}
`)

// field is what rewriteFields tells a patch of one executor function: its name and signature,
// what the field resolves (a value read off obj, or a resolver's call) and its marshaller.
type field struct {
	name, signature, resolves, marshal string
	resolver                           bool // resolves is a resolver's call
}

// rewriteFields replaces the executor function of each of the fields (named as gqlgen names
// them) by what rewrite makes of it, and fails, naming the patch and the fields, when one of
// them is not in the form fieldFn matches or is not of the kind the patch is for (resolver).
func rewriteFields(patch, what string, src []byte, fields map[string]bool, resolver bool, rewrite func(f field, flag bool) []byte) ([]byte, error) {
	if len(fields) == 0 {
		return nil, fmt.Errorf("patch %s: the schema has no %s (did the plugin run?)", patch, what)
	}
	done := map[string]bool{}
	out := fieldFn.ReplaceAllFunc(src, func(fn []byte) []byte {
		m := fieldFn.FindSubmatch(fn)
		f := field{name: string(m[1]), signature: string(m[2]), resolves: strings.TrimSuffix(string(m[3]), ", nil"), marshal: string(m[4]),
			resolver: bytes.HasPrefix(m[3], []byte("ec.Resolvers."))}
		flag, ok := fields[f.name]
		if !ok || f.resolver != resolver {
			return fn
		}
		done[f.name] = true
		return rewrite(f, flag)
	})
	var missing []string
	for f := range fields {
		if !done[f] {
			missing = append(missing, f)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		return nil, fmt.Errorf("patch %s: %d %s not in the form written for (did gqlgen change?): %s", patch, len(missing), what, strings.Join(missing, ", "))
	}
	return out, nil
}

// resolveRelations replaces the executor function of each of the to-one relations (named as
// relations names them) by one that resolves it without the field middleware.
func resolveRelations(src []byte, fields map[string]bool) ([]byte, error) {
	return rewriteFields("resolve-relations", "to-one relations", src, fields, true, func(f field, _ bool) []byte {
		return fmt.Appendf(nil, `func (ec *executionContext) %[1]s%[2]s {
	fc, err := ec.fieldContext%[1]s(ctx, field) // a to-one relation: see graph/generate
	if err != nil {
		return graphql.Null
	}
	ctx = graphql.WithFieldContext(ctx, fc)
	defer func() {
		if r := recover(); r != nil {
			ec.Error(ctx, ec.Recover(ctx, r))
			ret = graphql.Null
		}
	}()
	res, err := %[3]s
	if err != nil {
		ec.Error(ctx, graphql.AddFieldLocationToError(ctx, err))
		return graphql.Null
	}
	fc.Result = res
	return %[4]s(ctx, field.Selections, res)
}
`, f.name, f.signature, f.resolves, f.marshal)
	})
}

// readPlainFields replaces the executor function of each of the plain fields (named as
// plainFields names them, true for a leaf) by one that marshals the field's value at once: a
// leaf with the context of its object, an object (or a list of them) with a field context of
// its own, as gqlgen gives it, so that the paths of what is below it are right.
func readPlainFields(src []byte, fields map[string]bool) ([]byte, error) {
	return rewriteFields("read-plain-fields", "plain fields", src, fields, false, func(f field, leaf bool) []byte {
		if leaf {
			return fmt.Appendf(nil, "func (ec *executionContext) %s%s {\n\treturn %s(ctx, field.Selections, %s) // a plain field: see graph/generate\n}\n", f.name, f.signature, f.marshal, f.resolves)
		}
		return fmt.Appendf(nil, `func (ec *executionContext) %[1]s%[2]s {
	fc, err := ec.fieldContext%[1]s(ctx, field) // a plain field: see graph/generate
	if err != nil {
		return graphql.Null
	}
	res := %[3]s
	fc.Result = res
	return %[4]s(graphql.WithFieldContext(ctx, fc), field.Selections, res)
}
`, f.name, f.signature, f.resolves, f.marshal)
	})
}

// The text marshalListsInOrder replaces in gqlgen's list marshallers, and what it puts instead.
const (
	sliceConcurrently = "graphql.MarshalSliceConcurrently(ctx, len(v), 0, false, "
	sliceInOrder      = "marshalInOrder(ctx, len(v), "
)

// marshalListsInOrder makes every list marshaller of the executor marshal its items in order.
func marshalListsInOrder(src []byte) ([]byte, error) {
	const name = "marshal-lists-in-order"
	n := bytes.Count(src, []byte(sliceConcurrently))
	if n == 0 {
		return nil, fmt.Errorf("patch %s: %q not found in gqlgen's output (did gqlgen change?)", name, sliceConcurrently)
	}
	if all := bytes.Count(src, []byte("MarshalSliceConcurrently(")); all != n {
		return nil, fmt.Errorf("patch %s: %d of %d calls of MarshalSliceConcurrently not in the form %q (did gqlgen change?)", name, all-n, all, sliceConcurrently)
	}
	return bytes.ReplaceAll(src, []byte(sliceConcurrently), []byte(sliceInOrder)), nil
}

// The text writeFieldSets replaces at the end of every object's executor function (after the
// @defer group that dropDeferredGroups emptied), and what it puts instead.
const (
	fieldSetReturn     = "\t\tec.ProcessDeferredGroup(deferred)\n\t}\n\n\treturn out\n}\n"
	fieldSetReturnOurs = "\t\tec.ProcessDeferredGroup(deferred)\n\t}\n\n\treturn fieldSet{fields: fields, values: out.Values} // see graph/generate\n}\n"
)

// objectStart is the start of the executor function of an object that is not a root (it has
// an obj); its group is what comes before the construction of its FieldSet.
var objectStart = regexp.MustCompile(`(?m)(^func \(ec \*executionContext\) _\w+\(ctx context\.Context, sel ast\.SelectionSet, obj [^\n]*\) graphql\.Marshaler \{
	fields := graphql\.CollectFields\(ec\.OperationContext, sel, \w+Implementors\)

	)out := graphql\.NewFieldSet\(fields\)\n`)

// writeFieldSets makes each of the objects' executor functions return its fields as a
// graph.fieldSet, and each of those that are not roots (inPlace of them) hold its values in a
// graph.objectFields.
func writeFieldSets(src []byte, objects, inPlace int) ([]byte, error) {
	const name = "write-field-sets"
	switch n := bytes.Count(src, []byte(fieldSetReturn)); {
	case n == 0:
		return nil, fmt.Errorf("patch %s: an object's %q not found in gqlgen's output (did gqlgen change?)", name, "return out")
	case n != objects:
		return nil, fmt.Errorf("patch %s: an object's %q found %d times, want once in each of the %d objects that are not streamed (did gqlgen change?)", name, "return out", n, objects)
	}
	if n := len(objectStart.FindAllIndex(src, -1)); n != inPlace {
		return nil, fmt.Errorf("patch %s: the FieldSet of an object found %d times, want once in each of the %d objects that are not roots (did gqlgen change?)", name, n, inPlace)
	}
	src = objectStart.ReplaceAll(src, []byte("${1}out := newObjectFields(fields) // see graph/generate\n"))
	return bytes.ReplaceAll(src, []byte(fieldSetReturn), []byte(fieldSetReturnOurs)), nil
}
