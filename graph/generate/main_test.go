package main

import (
	"os"
	"path/filepath"
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
