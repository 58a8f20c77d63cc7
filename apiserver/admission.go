package apiserver

import (
	"github.com/skiffhq/skiff/apiserver/validation"
	"github.com/skiffhq/skiff/kinds"
)

// Admission: defaulting and validation of what is written. The rules live in
// apiserver/validation; this file is the seam the handlers call.

func admitCreate(obj kinds.Object) error {
	validation.Default(obj)
	return validation.Validate(obj)
}

func admitUpdate(old, obj kinds.Object) error {
	validation.Default(obj)
	return validation.ValidateUpdate(old, obj)
}

func admitStatusUpdate(old, obj kinds.Object) error { return validation.ValidateStatus(obj) }
