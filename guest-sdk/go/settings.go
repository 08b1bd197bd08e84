package informant

import (
	"bytes"
	"encoding/json"
)

// Settings are the plugin's settings: the JSON the operator gave (from
// NAME.json, NAME.yaml or NAME.toml beside the plugin, or --settings), or
// null when none were given.
type Settings struct {
	raw string
}

// NewSettings wraps settings JSON, for a plugin's own unit tests.
func NewSettings(json string) Settings { return Settings{raw: json} }

// Raw is the settings' JSON ("null" when none were given).
func (s Settings) Raw() string { return s.raw }

// IsNull says whether no settings were given.
func (s Settings) IsNull() bool {
	t := bytes.TrimSpace([]byte(s.raw))
	return len(t) == 0 || string(t) == "null"
}

// Decode reads the settings into v (a pointer to a struct with json tags,
// already holding the defaults), refusing fields v does not have. Without
// settings it leaves v as it is. As with encoding/json, a map field that
// already holds entries gets the settings' entries added to them: leave
// maps nil and fill in their defaults after Decode when a setting should
// replace them. A failure is an [*Error] with code
// [Invalid] that names the field.
func (s Settings) Decode(v any) error {
	if s.IsNull() {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader([]byte(s.raw)))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return &Error{Code: Invalid, Message: "settings: " + err.Error()}
	}
	return nil
}
