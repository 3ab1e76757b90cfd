package resolvers

import (
	"encoding/base64"
	"strconv"
	"strings"

	"orchard/model"
)

// Global ids are opaque to clients: base64url of "<Type>:<number>". Clients must not build
// or parse them; the encoding may change.

// Node type names used in global ids.
const (
	typeAccount       = "Account"
	typeApp           = "App"
	typePool          = "LicensePool"
	typeAssignment    = "LicenseAssignment"
	typeDevice        = "Device"
	typeUser          = "User"
	typeGroup         = "Group"
	typeAuditEvent    = "AuditEvent"
	typeSyncRun       = "SyncRun"
	typeDeviceCommand = "DeviceCommand"
	typeAPIKey        = "ApiKey"
)

// globalID encodes a node's global id (model.GlobalID, which the id fields use).
func globalID(typ string, id int64) string { return model.GlobalID(typ, id) }

// parseGlobalID decodes any global id into its type and number.
func parseGlobalID(gid string) (string, int64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(gid, "="))
	if err != nil {
		return "", 0, false
	}
	typ, num, ok := strings.Cut(string(b), ":")
	if !ok || typ == "" {
		return "", 0, false
	}
	id, err := strconv.ParseInt(num, 10, 64)
	if err != nil || id <= 0 {
		return "", 0, false
	}
	return typ, id, true
}

// decodeID decodes a global id that must be of type typ. field is the argument's path for
// the error, e.g. ["filter", "accountId"].
func decodeID(gid, typ string, field ...string) (int64, error) {
	t, id, ok := parseGlobalID(gid)
	if !ok {
		return 0, badInput(field, "%s is not a valid id", fieldName(field))
	}
	if t != typ {
		return 0, badInput(field, "%s must be the id of a %s, not of a %s", fieldName(field), typ, t)
	}
	return id, nil
}

// optionalID decodes an optional id argument; nil gives 0.
func optionalID(gid *string, typ string, field ...string) (int64, error) {
	if gid == nil {
		return 0, nil
	}
	return decodeID(*gid, typ, field...)
}

func fieldName(field []string) string {
	if len(field) == 0 {
		return "id"
	}
	return field[len(field)-1]
}

// badInput is a top-level BAD_USER_INPUT error for a query argument.
func badInput(field []string, format string, args ...any) error {
	e := model.Errorf(model.CodeBadUserInput, format, args...)
	e.Field = field
	return e
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
