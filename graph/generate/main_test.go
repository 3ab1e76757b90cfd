package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// object is the part of gqlgen's executor for one object that dropDeferredGroups patches.
const object = `func (ec *executionContext) _X(ctx context.Context, sel ast.SelectionSet, obj *X) graphql.Marshaler {
	out := graphql.NewFieldSet(fields)
	` + deferredGroupNew + `
	out.Dispatch(ctx)
	if n := len(deferred.Defers); n > 0 {
		ec.ProcessDeferredGroup(deferred)
	}
	return out
}
`

// The patch replaces every object's @defer group by an empty one, and fails — naming itself —
// rather than write an executor it was not written for.
func TestDropDeferredGroups(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		src     string
		objects int
		want    string
		wantErr string // a fragment of the error; "" for none
	}{
		{name: "every object patched", src: object + object, objects: 2,
			want: strings.Repeat(strings.Replace(object, deferredGroupNew, deferredGroupZero, 1), 2)},
		{name: "text not found", src: strings.Replace(object, deferredGroupNew, "deferred := graphql.NewDeferredGroupFor(ctx, fields)", 1), objects: 1,
			wantErr: `patch drop-deferred-groups: "deferred := graphql.NewDeferredGroup(ctx)" not found`},
		{name: "empty output", src: "", objects: 1, wantErr: "patch drop-deferred-groups: "},
		{name: "an object without its group", src: object + strings.Replace(object, deferredGroupNew, "", 1), objects: 2,
			wantErr: "patch drop-deferred-groups: \"deferred := graphql.NewDeferredGroup(ctx)\" found 1 times, want once in each of the 2 objects"},
		{name: "a field still deferred", src: object + "\tec.deferField(&deferred, field)\n", objects: 1,
			wantErr: "patch drop-deferred-groups: a field still uses its object's @defer group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := dropDeferredGroups([]byte(tt.src), tt.objects)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("patched executor mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// A patch that fails leaves the file as gqlgen wrote it and says which file it was.
func TestPatchFileLeavesFileOnFailure(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "generated.go")
	src := "package graph\n"
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	err := patchFile(file, func(b []byte) ([]byte, error) { return dropDeferredGroups(b, 1) })
	if err == nil || !strings.Contains(err.Error(), file+": patch drop-deferred-groups") {
		t.Fatalf("err = %v, want one naming the file and the patch", err)
	}
	got, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(src, string(got)); diff != "" {
		t.Errorf("file after a failed patch mismatch (-want +got):\n%s", diff)
	}
}

// plainFieldFn is gqlgen's executor function for a plain field, as readPlainFields expects it.
func plainFieldFn(name, value, marshal string) string {
	return `func (ec *executionContext) ` + name + `(ctx context.Context, field graphql.CollectedField, obj *model.User) (ret graphql.Marshaler) {
	return graphql.ResolveField(
		ctx,
		ec.OperationContext,
		field,
		func(ctx context.Context, field graphql.CollectedField) (*graphql.FieldContext, error) {
			return ec.fieldContext` + name + `(ctx, field)
		},
		func(ctx context.Context) (any, error) {
			return ` + value + `, nil
		},
		nil,
		func(ctx context.Context, selections ast.SelectionSet, v *string) graphql.Marshaler {
			return ` + marshal + `(ctx, selections, v)
		},
		true,
		false,
	)
}
`
}

// The plain-field patch replaces the executor function of exactly the fields the plugin
// found plain, and fails — naming itself and the fields — when one of them is not in the
// form it was written for.
func TestReadPlainFields(t *testing.T) {
	t.Parallel()
	email := plainFieldFn("_User_email", "obj.Email", "ec.marshalOString2ᚖstring")
	id := plainFieldFn("_User_id", "obj.NodeID()", "ec.marshalNID2string")
	group := plainFieldFn("_User_group", "obj.Group", "ec.marshalOGroup2ᚖorchardᚋmodelᚐGroup")
	resolved := strings.Replace(plainFieldFn("_User_name", "obj.Name", "ec.marshalOString2ᚖstring"), "return obj.Name, nil", "return ec.Resolvers.User().Name(ctx, obj)", 1)
	tests := []struct {
		name    string
		src     string
		fields  map[string]bool
		want    string
		wantErr string
	}{
		{name: "struct field and method", src: email + id, fields: map[string]bool{"_User_email": true, "_User_id": true},
			want: `func (ec *executionContext) _User_email(ctx context.Context, field graphql.CollectedField, obj *model.User) (ret graphql.Marshaler) {
	return ec.marshalOString2ᚖstring(ctx, field.Selections, obj.Email) // a plain field: see graph/generate
}
func (ec *executionContext) _User_id(ctx context.Context, field graphql.CollectedField, obj *model.User) (ret graphql.Marshaler) {
	return ec.marshalNID2string(ctx, field.Selections, obj.NodeID()) // a plain field: see graph/generate
}
`},
		{name: "a field not listed is left alone", src: email + id, fields: map[string]bool{"_User_id": true},
			want: email + `func (ec *executionContext) _User_id(ctx context.Context, field graphql.CollectedField, obj *model.User) (ret graphql.Marshaler) {
	return ec.marshalNID2string(ctx, field.Selections, obj.NodeID()) // a plain field: see graph/generate
}
`},
		{name: "an object", src: group, fields: map[string]bool{"_User_group": false},
			want: `func (ec *executionContext) _User_group(ctx context.Context, field graphql.CollectedField, obj *model.User) (ret graphql.Marshaler) {
	fc, err := ec.fieldContext_User_group(ctx, field) // a plain field: see graph/generate
	if err != nil {
		return graphql.Null
	}
	res := obj.Group
	fc.Result = res
	return ec.marshalOGroup2ᚖorchardᚋmodelᚐGroup(graphql.WithFieldContext(ctx, fc), field.Selections, res)
}
`},
		{name: "a listed field with a resolver", src: email + resolved, fields: map[string]bool{"_User_email": true, "_User_name": true},
			wantErr: "patch read-plain-fields: 1 plain fields not in the form written for (did gqlgen change?): _User_name"},
		{name: "no plain fields", src: email, fields: nil, wantErr: "patch read-plain-fields: the schema has no plain fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readPlainFields([]byte(tt.src), tt.fields)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, string(got)); diff != "" {
				t.Errorf("patched executor mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// The list patch makes every list marshal its items in order, and fails when a list is
// marshalled concurrently in a form it does not know.
func TestMarshalListsInOrder(t *testing.T) {
	t.Parallel()
	list := "\tret := " + sliceConcurrently + "func(ctx context.Context, i int) graphql.Marshaler {\n"
	other := "\tret := graphql.MarshalSliceConcurrently(ctx, len(v), 8, false, func(ctx context.Context, i int) graphql.Marshaler {\n"
	got, err := marshalListsInOrder([]byte(list + list))
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Repeat("\tret := "+sliceInOrder+"func(ctx context.Context, i int) graphql.Marshaler {\n", 2)
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("patched executor mismatch (-want +got):\n%s", diff)
	}
	for _, c := range []struct{ src, wantErr string }{
		{"", "patch marshal-lists-in-order: " + strconv.Quote(sliceConcurrently) + " not found"},
		{list + other, "patch marshal-lists-in-order: 1 of 2 calls of MarshalSliceConcurrently not in the form"},
	} {
		if _, err := marshalListsInOrder([]byte(c.src)); err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("err = %v, want one containing %q", err, c.wantErr)
		}
	}
}

// The field-set patch replaces every object's return, once per object, and the FieldSet of
// every object that is not a root.
func TestWriteFieldSets(t *testing.T) {
	t.Parallel()
	start := func(sig string) string {
		return "func (ec *executionContext) " + sig + " graphql.Marshaler {\n\tfields := graphql.CollectFields(ec.OperationContext, sel, xImplementors)\n\n\tout := graphql.NewFieldSet(fields)\n"
	}
	object := start("_X(ctx context.Context, sel ast.SelectionSet, obj *model.X)") + fieldSetReturn
	root := start("_Query(ctx context.Context, sel ast.SelectionSet)") + fieldSetReturn
	got, err := writeFieldSets([]byte(object+root), 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Replace(strings.Replace(object, "graphql.NewFieldSet(fields)", "newObjectFields(fields) // see graph/generate", 1), fieldSetReturn, fieldSetReturnOurs, 1) +
		strings.Replace(root, fieldSetReturn, fieldSetReturnOurs, 1)
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("patched executor mismatch (-want +got):\n%s", diff)
	}
	for _, c := range []struct {
		src              string
		objects, inPlace int
		wantErr          string
	}{
		{"", 1, 0, `patch write-field-sets: an object's "return out" not found`},
		{fieldSetReturn, 2, 0, `patch write-field-sets: an object's "return out" found 1 times, want once in each of the 2 objects`},
		{root + root, 2, 1, `patch write-field-sets: the FieldSet of an object found 0 times, want once in each of the 1 objects that are not roots`},
	} {
		if _, err := writeFieldSets([]byte(c.src), c.objects, c.inPlace); err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("err = %v, want one containing %q", err, c.wantErr)
		}
	}
}

// The relation patch replaces the executor function of exactly the relations the plugin
// found, and fails — naming itself and the fields — when one is not in the form it expects.
func TestResolveRelations(t *testing.T) {
	t.Parallel()
	relation := func(name, call string) string {
		return strings.Replace(plainFieldFn(name, "obj.X", "ec.marshalNGroup2ᚖorchardᚋmodelᚐGroup"), "return obj.X, nil", "return "+call, 1)
	}
	group := relation("_User_group", "ec.Resolvers.User().Group(ctx, obj)")
	plain := plainFieldFn("_User_email", "obj.Email", "ec.marshalOString2ᚖstring")
	got, err := resolveRelations([]byte(group+plain), map[string]bool{"_User_group": true})
	if err != nil {
		t.Fatal(err)
	}
	want := `func (ec *executionContext) _User_group(ctx context.Context, field graphql.CollectedField, obj *model.User) (ret graphql.Marshaler) {
	fc, err := ec.fieldContext_User_group(ctx, field) // a to-one relation: see graph/generate
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
	res, err := ec.Resolvers.User().Group(ctx, obj)
	if err != nil {
		ec.Error(ctx, graphql.AddFieldLocationToError(ctx, err))
		return graphql.Null
	}
	fc.Result = res
	return ec.marshalNGroup2ᚖorchardᚋmodelᚐGroup(ctx, field.Selections, res)
}
` + plain
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("patched executor mismatch (-want +got):\n%s", diff)
	}
	for _, c := range []struct {
		fields  map[string]bool
		wantErr string
	}{
		{nil, "patch resolve-relations: the schema has no to-one relations"},
		{map[string]bool{"_User_group": true, "_User_email": true}, "patch resolve-relations: 1 to-one relations not in the form written for (did gqlgen change?): _User_email"},
	} {
		if _, err := resolveRelations([]byte(group+plain), c.fields); err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("err = %v, want one containing %q", err, c.wantErr)
		}
	}
}
