package resolvers

import (
	"context"
	"fmt"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/validator"

	"orchard/graph"
)

// BenchmarkInputConstraints measures the check of @constraint alone, per operation: the nested
// page of BenchmarkNestedPage, an assignLicense as BenchmarkAssignLicenseConcurrent sends it,
// and the largest input the schema allows for assignLicenses (10,000 targets in a variable).
// The endpoint's own figures on a shared machine vary more than this costs.
func BenchmarkInputConstraints(b *testing.B) {
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	c := newInputConstraints(schema)
	targets := make([]any, 10000)
	for i := range targets {
		targets[i] = map[string]any{"serialNumber": fmt.Sprintf("SER%06d", i)}
	}
	cases := []struct {
		name, query string
		vars        map[string]any
	}{
		{"nested page", `query($first: Int) { licenseAssignments(first: $first) { edges { cursor node { id status
			pool { account { name } app { name } } device { serialNumber user { email } } user { email } } } pageInfo { hasNextPage endCursor } } }`,
			map[string]any{"first": 100}},
		{"assignLicense", `mutation($sn: String!) { assignLicense(input: {adamId: "910001", kind: DEVICE, target: {serialNumber: $sn}}) {
			assignment { id status } userErrors { code message } } }`, map[string]any{"sn": "SER000001"}},
		{"assignLicenses 10,000 targets", `mutation($t: [LicenseTargetInput!]!) { assignLicenses(input: {adamId: "910001", kind: DEVICE, targets: $t}) {
			assignedCount } }`, map[string]any{"t": targets}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			doc, errs := gqlparser.LoadQuery(schema, tc.query)
			if errs != nil {
				b.Fatal(errs)
			}
			vars, err := validator.VariableValues(schema, doc.Operations[0], tc.vars)
			if err != nil {
				b.Fatal(err)
			}
			rc := &graphql.OperationContext{Doc: doc, Operation: doc.Operations[0], Variables: vars}
			b.ReportAllocs()
			for b.Loop() {
				if err := c.MutateOperationContext(context.Background(), rc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
