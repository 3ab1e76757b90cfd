package db

import (
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"gorm.io/gorm"
)

// tracer names the database's OpenTelemetry spans (a no-op until the server installs a
// provider, so this costs nothing when tracing is off).
var tracer = otel.Tracer("orchard/db")

// spanKey holds a statement's span between GORM's before and after callbacks.
const spanKey = "orchard:span"

// registerTracing gives every GORM statement a client span, child of the span in the
// statement's context (the GraphQL operation's, or a sync pass's): the operation and the
// table, and the statement as GORM wrote it, with placeholders (never the values: they may
// hold personal data).
func registerTracing(g *gorm.DB) error {
	before := func(tx *gorm.DB) {
		if tx.Statement == nil || tx.Statement.Context == nil || !trace.SpanFromContext(tx.Statement.Context).SpanContext().IsValid() {
			return // no trace to join: no span (a background statement alone is noise)
		}
		ctx, span := tracer.Start(tx.Statement.Context, "db", trace.WithSpanKind(trace.SpanKindClient))
		tx.Statement.Context = ctx
		tx.InstanceSet(spanKey, span)
	}
	after := func(tx *gorm.DB) {
		v, ok := tx.InstanceGet(spanKey)
		if !ok {
			return
		}
		span := v.(trace.Span)
		sql := tx.Statement.SQL.String()
		op, _, _ := strings.Cut(strings.TrimSpace(sql), " ")
		op = strings.ToUpper(op)
		span.SetName("db " + op + " " + tx.Statement.Table)
		span.SetAttributes(
			attribute.String("db.system.name", tx.Dialector.Name()),
			attribute.String("db.operation.name", op),
			attribute.String("db.collection.name", tx.Statement.Table),
			attribute.String("db.query.text", truncate(sql, 2000)),
			attribute.Int64("db.response.returned_rows", tx.Statement.RowsAffected),
		)
		if err := tx.Error; err != nil && err != gorm.ErrRecordNotFound {
			span.RecordError(err)
			span.SetStatus(codes.Error, "statement failed")
		}
		span.End()
	}
	cb := g.Callback()
	for _, err := range []error{
		cb.Query().Before("gorm:query").Register("orchard:trace_query_start", before),
		cb.Query().After("gorm:query").Register("orchard:trace_query_end", after),
		cb.Create().Before("gorm:create").Register("orchard:trace_create_start", before),
		cb.Create().After("gorm:create").Register("orchard:trace_create_end", after),
		cb.Update().Before("gorm:update").Register("orchard:trace_update_start", before),
		cb.Update().After("gorm:update").Register("orchard:trace_update_end", after),
		cb.Delete().Before("gorm:delete").Register("orchard:trace_delete_start", before),
		cb.Delete().After("gorm:delete").Register("orchard:trace_delete_end", after),
		cb.Row().Before("gorm:row").Register("orchard:trace_row_start", before),
		cb.Row().After("gorm:row").Register("orchard:trace_row_end", after),
		cb.Raw().Before("gorm:raw").Register("orchard:trace_raw_start", before),
		cb.Raw().After("gorm:raw").Register("orchard:trace_raw_end", after),
	} {
		if err != nil {
			return err
		}
	}
	return nil
}
