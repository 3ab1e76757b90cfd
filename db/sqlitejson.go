package db

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A bulk statement on SQLite carries its rows as one JSON parameter, read back by json_each,
// instead of a VALUES list of placeholders. Its driver (glebarez/go-sqlite) prepares every
// statement anew, and SQLite compiles a VALUES list row by row (a multi-row INSERT spends
// more time in the parser and code generator than in the b-trees), then binds parameters in
// time quadratic in their number (sqliteParamsPerInsert). One statement with one parameter
// per thousand rows costs a parse, a bind and a JSON scan: a first pass over 100,000
// assignments writes them some twice as fast. MySQL keeps its lists (its driver interpolates,
// and JSON_TABLE is not in every MySQL-compatible engine).

// sqliteJSONTimeLayout is how the driver writes a time.Time parameter (go-sqlite's first
// parseTimeFormats entry): a time inside the JSON must read back as one bound directly does.
const sqliteJSONTimeLayout = "2006-01-02 15:04:05.999999999-07:00"

// sqliteJSONRows encodes rows (values in column order) as a JSON array of arrays, with the
// values the driver would have bound: integers, reals, text, booleans as 1/0, times in the
// driver's layout, NULL. It refuses values JSON cannot carry faithfully (blobs).
func sqliteJSONRows(rows [][]any) (string, error) {
	var sb strings.Builder
	sb.WriteByte('[')
	for i, r := range rows {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteByte('[')
		for j, v := range r {
			if j > 0 {
				sb.WriteByte(',')
			}
			if err := appendSQLiteJSON(&sb, v); err != nil {
				return "", fmt.Errorf("row %d column %d: %w", i, j, err)
			}
		}
		sb.WriteByte(']')
	}
	sb.WriteByte(']')
	return sb.String(), nil
}

func appendSQLiteJSON(sb *strings.Builder, v any) error {
	if vr, ok := v.(driver.Valuer); ok {
		x, err := vr.Value()
		if err != nil {
			return err
		}
		v = x
	}
	switch x := v.(type) {
	case nil:
		sb.WriteString("null")
		return nil
	case string:
		b, err := json.Marshal(x)
		if err != nil {
			return err
		}
		sb.Write(b)
		return nil
	case time.Time:
		sb.WriteByte('"')
		sb.WriteString(x.Format(sqliteJSONTimeLayout))
		sb.WriteByte('"')
		return nil
	case *time.Time:
		if x == nil {
			sb.WriteString("null")
			return nil
		}
		return appendSQLiteJSON(sb, *x)
	case *string:
		if x == nil {
			sb.WriteString("null")
			return nil
		}
		return appendSQLiteJSON(sb, *x)
	case *int64:
		if x == nil {
			sb.WriteString("null")
			return nil
		}
		return appendSQLiteJSON(sb, *x)
	}
	dv, err := driver.DefaultParameterConverter.ConvertValue(v)
	if err != nil {
		return err
	}
	switch x := dv.(type) {
	case nil:
		sb.WriteString("null")
	case int64:
		sb.WriteString(strconv.FormatInt(x, 10))
	case float64:
		sb.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
	case bool:
		if x {
			sb.WriteByte('1')
		} else {
			sb.WriteByte('0')
		}
	case string:
		return appendSQLiteJSON(sb, x)
	case time.Time:
		return appendSQLiteJSON(sb, x)
	default:
		return fmt.Errorf("a %T does not travel in JSON", v)
	}
	return nil
}

// sqliteJSONColumns renders "value->>0, value->>1, …" for n columns of a json_each row.
func sqliteJSONColumns(alias string, n int) string {
	var sb strings.Builder
	for i := range n {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(alias)
		sb.WriteString(".value->>")
		sb.WriteString(strconv.Itoa(i))
	}
	return sb.String()
}

// sqliteJSONInts encodes ids as a JSON array.
func sqliteJSONInts(ids []int64) string {
	b := make([]byte, 0, 2+8*len(ids))
	b = append(b, '[')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	return string(append(b, ']'))
}
