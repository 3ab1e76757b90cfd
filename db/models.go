package db

import "orchard/model"

// Models lists every entity mapped to a table. The schema test checks each against the
// migrated schema of both engines.
func Models() []any {
	return []any{
		&model.Account{}, &model.App{}, &model.AppCountry{}, &model.LicensePool{},
		&model.LicenseAssignment{}, &model.User{}, &model.AppleUser{}, &model.Device{},
		&model.DeviceApp{}, &model.Group{}, &model.GroupMember{}, &model.Label{},
		&model.LabelGroup{}, &model.OutboxItem{}, &model.AppleEvent{}, &model.AppleNotification{},
		&model.SyncRun{}, &model.Lease{}, &model.DeviceCommand{}, &model.AuditEvent{},
		&model.APIKey{}, &model.IdempotencyRecord{}, &model.Setting{},
		&model.GroupDevice{}, &model.LabelAccount{}, &model.PolicyQueueItem{}, &model.PolicyWaiting{}, &model.PolicyDeparture{},
	}
}
