package resolvers

import (
	"context"
	"errors"
	"strings"

	"orchard/graph"
	"orchard/license"
	"orchard/model"
)

// Decoding of mutation inputs into the domain's terms. Malformed input becomes INVALID_INPUT
// userErrors naming the field.

// licenseTarget decodes a target: exactly one of device id, serial number, user id, external id.
func licenseTarget(in *graph.LicenseTargetInput, field ...string) (license.Target, error) {
	var t license.Target
	if in == nil {
		return t, model.FieldError(field, "give a target")
	}
	n := 0
	var err error
	if in.DeviceID != nil {
		n++
		if t.DeviceID, err = decodeID(*in.DeviceID, typeDevice, append(field, "deviceId")...); err != nil {
			return t, err
		}
	}
	if in.SerialNumber != nil {
		n++
		t.SerialNumber = strings.TrimSpace(*in.SerialNumber)
	}
	if in.UserID != nil {
		n++
		if t.UserID, err = decodeID(*in.UserID, typeUser, append(field, "userId")...); err != nil {
			return t, err
		}
	}
	if in.ExternalID != nil {
		n++
		t.ExternalID = strings.TrimSpace(*in.ExternalID)
	}
	if n != 1 {
		return t, model.FieldError(field, "give exactly one of deviceId, serialNumber, userId and externalId")
	}
	return t, nil
}

// deviceRef decodes a device reference: exactly one of device id and serial number.
func deviceRef(in *graph.DeviceRefInput, field ...string) (license.Target, error) {
	var t license.Target
	if in == nil || (in.DeviceID == nil) == (in.SerialNumber == nil) {
		return t, model.FieldError(field, "give exactly one of deviceId and serialNumber")
	}
	if in.DeviceID != nil {
		id, err := decodeID(*in.DeviceID, typeDevice, append(field, "deviceId")...)
		return license.Target{DeviceID: id}, err
	}
	return license.Target{SerialNumber: strings.TrimSpace(*in.SerialNumber)}, nil
}

// appRef decodes an app given by global id or by adamId.
func (r *Resolver) appRef(ctx context.Context, id, adamID *string, required bool) (int64, error) {
	switch {
	case id != nil && adamID != nil:
		return 0, model.FieldError([]string{"input", "appId"}, "give appId or adamId, not both")
	case id != nil:
		return decodeID(*id, typeApp, "input", "appId")
	case adamID != nil:
		app, err := r.DB.AppByAdamID(ctx, strings.TrimSpace(*adamID))
		if errors.Is(err, model.ErrNotFound) {
			return 0, &model.Error{Code: model.CodeNotFound, Field: []string{"input", "adamId"}, Message: "no account has bought an app with this adamId"}
		}
		if err != nil {
			return 0, err
		}
		return app.ID, nil
	case required:
		return 0, model.FieldError([]string{"input", "appId"}, "give appId or adamId")
	}
	return 0, nil
}

// refusal splits a domain error into userErrors (the client's to fix) and anything else (a
// top-level error). Argument decoding errors become INVALID_INPUT; contradictory arguments
// (license.ErrContradictory) stay a top-level BAD_USER_INPUT error, as the README promises.
func refusal(err error) ([]*model.Error, error) {
	e, ok := model.AsError(err)
	if !ok || errors.Is(err, license.ErrContradictory) {
		return nil, err
	}
	if e.Code == model.CodeBadUserInput {
		return inputErrors(err), nil
	}
	return []*model.Error{e}, nil
}

func optional(id *string, typ string, field ...string) (int64, error) {
	return optionalID(id, typ, field...)
}

func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

func strOr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
