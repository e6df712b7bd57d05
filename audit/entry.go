package audit

import (
	"encoding/json"
	"fmt"
	"time"
)

// Entry is a record as read back from the log: the schema of docs/audit.md.
type Entry struct {
	Time           time.Time `json:"ts"`
	Event          Event     `json:"event"`
	Seq            uint64    `json:"seq"`
	Outcome        Outcome   `json:"outcome,omitempty"`
	Tenant         string    `json:"tenant,omitempty"`
	User           string    `json:"user,omitempty"`
	AuthMethod     string    `json:"auth_method,omitempty"`
	Client         *Client   `json:"client,omitempty"`
	Action         string    `json:"action,omitempty"`
	Channel        string    `json:"channel,omitempty"`
	Reason         string    `json:"reason,omitempty"`
	PolicyRevision string    `json:"policy_revision,omitempty"`
	Forced         bool      `json:"forced,omitempty"`
	PayloadSize    *int      `json:"payload_size,omitempty"`
	PayloadSHA256  string    `json:"payload_sha256,omitempty"`
	PayloadBase64  string    `json:"payload_base64,omitempty"`
	Prev           string    `json:"prev"`
	Hash           string    `json:"hash"`
}

// Client is the connection a record is about.
type Client struct {
	ID         int64  `json:"id,omitempty"`
	Addr       string `json:"addr,omitempty"`
	Name       string `json:"name,omitempty"`
	TLSVersion string `json:"tls_version,omitempty"`
	TLSSubject string `json:"tls_subject,omitempty"`
}

// parseEntry decodes one line (without its newline).
func parseEntry(line []byte) (*Entry, error) {
	var e Entry
	if err := json.Unmarshal(line, &e); err != nil {
		return nil, fmt.Errorf("not a JSON record: %v", err)
	}
	if e.Seq == 0 || e.Event == "" {
		return nil, fmt.Errorf("not an audit record: no seq or event")
	}
	return &e, nil
}
