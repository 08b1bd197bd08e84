package informant

import (
	"fmt"

	"github.com/informant-dev/informant/guest-sdk/go/internal/wit"
)

// Code says why something failed.
type Code uint8

const (
	// Invalid: the request was malformed (bad JSON, a bad selector, bad settings).
	Invalid Code = iota
	// Forbidden: the plugin's manifest does not grant it.
	Forbidden
	// LimitExceeded: a per-call limit was reached (too many actions, too large a value).
	LimitExceeded
	// NotFound: the thing named does not exist (an unknown index).
	NotFound
	// Failed: the plugin itself failed.
	Failed
)

var codeNames = [...]string{"invalid", "forbidden", "limit-exceeded", "not-found", "failed"}

// String is the code as the host names it: "limit-exceeded".
func (c Code) String() string {
	if int(c) < len(codeNames) {
		return codeNames[c]
	}
	return "failed"
}

// Error is an error with a code: the host's refusals arrive as one, and a
// plugin returns one to fail a call (or refuse settings) with its code.
type Error struct {
	Code    Code
	Message string
}

// Errorf is an [*Error] with code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	return e.Code.String() + ": " + e.Message
}

func (e *Error) toWit() wit.Error {
	codes := [...]wit.ErrorCode{wit.ErrorCodeInvalid, wit.ErrorCodeForbidden, wit.ErrorCodeLimitExceeded, wit.ErrorCodeNotFound, wit.ErrorCodeFailed}
	code := wit.ErrorCodeFailed
	if int(e.Code) < len(codes) {
		code = codes[e.Code]
	}
	return wit.Error{Code: code, Message: e.Message}
}

// FromWit is the host's error as an [*Error]. For the SDK's own packages.
func FromWit(e wit.Error) *Error {
	codes := map[wit.ErrorCode]Code{wit.ErrorCodeInvalid: Invalid, wit.ErrorCodeForbidden: Forbidden, wit.ErrorCodeLimitExceeded: LimitExceeded, wit.ErrorCodeNotFound: NotFound, wit.ErrorCodeFailed: Failed}
	code, ok := codes[e.Code]
	if !ok {
		code = Failed
	}
	return &Error{Code: code, Message: e.Message}
}
