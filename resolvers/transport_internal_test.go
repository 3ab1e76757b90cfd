package resolvers

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// TestEncodeResponseIsJSONMarshal holds encodeResponse to the bytes json.Marshal writes for
// the same response, on data it copies as it is and on data it leaves to json.Marshal.
func TestEncodeResponseIsJSONMarshal(t *testing.T) {
	errs := gqlerror.List{{Message: `bad "input" <here>`, Path: ast.Path{ast.PathName("a"), ast.PathIndex(0)},
		Extensions: map[string]any{"code": "BAD_USER_INPUT"}}}
	ext := map[string]any{"cost": 12, "note": "ok"}
	datas := []string{
		``,
		`null`,
		`{"a":[{"id":"TGljZW5zZUFzc2lnbm1lbnQ6MQ","name":"caf\u00e9 é \"q\" \\ \n"},null],"b":1.5e3,"c":true}`,
		`{"name":"<script>&amp;</script>"}`,
		"{\"name\":\"line\u2028separator\u2029\"}",
		"{\"name\":\"\xe2\x82\xac\"}", // €: starts with 0xe2, left to json.Marshal
	}
	for _, d := range datas {
		for _, r := range []*graphql.Response{
			{Data: json.RawMessage(d)},
			{Data: json.RawMessage(d), Errors: errs},
			{Data: json.RawMessage(d), Extensions: ext},
			{Data: json.RawMessage(d), Errors: errs, Extensions: ext},
		} {
			want, err := json.Marshal(wireResponse{Errors: r.Errors, Data: r.Data, Extensions: r.Extensions})
			if err != nil {
				t.Fatal(err)
			}
			got, err := encodeResponse(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("data %q, errors %d, extensions %d:\n got %s\nwant %s", d, len(r.Errors), len(r.Extensions), got, want)
			}
		}
	}
}

// TestEncodeResponseCopiesPlainData fences the fast path: data without a byte to escape is
// not re-encoded (a change that passed it through json.Marshal again would still be correct,
// and slower by a pass over every response).
func TestEncodeResponseCopiesPlainData(t *testing.T) {
	data := json.RawMessage(`{"x":"y"}`)
	got, err := encodeResponse(&graphql.Response{Data: data})
	if err != nil {
		t.Fatal(err)
	}
	if allocs := testing.AllocsPerRun(100, func() { _, _ = encodeResponse(&graphql.Response{Data: data}) }); allocs > 1 {
		t.Errorf("encodeResponse allocates %v times for plain data, want 1 (the output): is it encoding the data again?", allocs)
	}
	if string(got) != `{"data":{"x":"y"}}` {
		t.Errorf("got %s", got)
	}
}
