package license

import (
	"context"
	"time"

	"orchard/model"
)

// Bulk assignment: one app to many devices or users in one call, with a result per target.
// Targets are handled in chunks, a transaction each; within a chunk the holders, their existing
// licenses and the R9 conflicts are read with a statement per kind of fact, licenses are
// reserved per pool in one conditional update, and assignments, outbox rows and audit events
// are written in batches. The rules and the planner are those of Assign.

const bulkChunk = 500

// bulkGather is how long a bulk request's outbox items wait at most for the rest of the
// request to be recorded.
const bulkGather = 2 * time.Minute

// AssignManyInput asks for licenses of one app for many targets.
type AssignManyInput struct {
	AppID     int64             `json:"appId"`
	AccountID int64             `json:"accountId,omitempty"`
	Kind      model.LicenseKind `json:"kind"`
	Targets   []Target          `json:"targets"`
	Reason    string            `json:"reason,omitempty"`
}

// TargetResult is what became of one target.
type TargetResult struct {
	Index        int          `json:"index"`
	AssignmentID int64        `json:"assignmentId,omitempty"`
	Error        *model.Error `json:"error,omitempty"`
}

// AssignMany records assignment intents for many targets: the planner (planner.go) with
// assignLicenses' wording, its outbox rows packed (Gather).
func (s *Service) AssignMany(ctx context.Context, actor Actor, in AssignManyInput, idempotencyKey string) ([]TargetResult, error) {
	if len(in.Targets) == 0 { // the most: @constraint on AssignLicensesInput.targets
		return nil, model.FieldError([]string{"input", "targets"}, "give at least one target")
	}
	if in.Kind != model.LicenseKindDevice && in.Kind != model.LicenseKindUser {
		return nil, model.FieldError([]string{"input", "kind"}, "kind must be USER or DEVICE")
	}
	// The reason is assignLicense's: the planner writes both (writeAssignments).
	req := &assignRequest{AppID: in.AppID, AccountID: in.AccountID, Kind: in.Kind, Targets: in.Targets,
		Origin: model.OriginAdmin, Reason: in.Reason, Gather: true}
	// Chunks commit one by one (10,000 targets in one transaction would hold pool locks for
	// long); a retry under the same key therefore replays the recorded answer, and a retry
	// without a key finds the targets already assigned.
	res, _, err := idempotentOutside(ctx, s, actor, idempotencyKey, "assignLicenses", in, func(resume bool) ([]TargetResult, error) {
		outs, err := s.assignTargets(ctx, actor, req, resume)
		if err != nil {
			return nil, err
		}
		out := make([]TargetResult, len(outs))
		for i, o := range outs {
			out[i] = TargetResult{Index: o.Index, AssignmentID: o.AssignmentID, Error: o.Error}
		}
		return out, nil
	})
	if err == nil {
		s.kick(0)
	}
	return res, err
}
