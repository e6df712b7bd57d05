package audit

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// Entry is a record as read back from the log: the schema of docs/audit.md.
//
// User, Channel and Client.Name are the names exactly as the client sent
// them: where the line has a *_b64 member (a name that is not UTF-8, whose
// JSON string is lossy), the Entry holds its decoded bytes, and the *B64
// fields keep the member as written.
type Entry struct {
	Time           time.Time `json:"ts"`
	Event          Event     `json:"event"`
	Seq            uint64    `json:"seq"`
	Outcome        Outcome   `json:"outcome,omitempty"`
	Tenant         string    `json:"tenant,omitempty"`
	User           string    `json:"user,omitempty"`
	UserB64        string    `json:"user_b64,omitempty"`
	AuthMethod     string    `json:"auth_method,omitempty"`
	Client         *Client   `json:"client,omitempty"`
	Action         string    `json:"action,omitempty"`
	Channel        string    `json:"channel,omitempty"`
	ChannelB64     string    `json:"channel_b64,omitempty"`
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
	NameB64    string `json:"name_b64,omitempty"`
	TLSVersion string `json:"tls_version,omitempty"`
	TLSSubject string `json:"tls_subject,omitempty"`
}

// parseEntry decodes one line (without its newline), names exact.
func parseEntry(line []byte) (*Entry, error) {
	e, err := decodeEntry(line)
	if err != nil {
		return nil, err
	}
	if err := e.exactNames(); err != nil {
		return nil, err
	}
	return e, nil
}

// decodeEntry decodes one line as it is written, names as their JSON
// strings.
func decodeEntry(line []byte) (*Entry, error) {
	var e Entry
	if err := json.Unmarshal(line, &e); err != nil {
		return nil, fmt.Errorf("not a JSON record: %v", err)
	}
	if e.Seq == 0 || e.Event == "" {
		return nil, fmt.Errorf("not an audit record: no seq or event")
	}
	return &e, nil
}

// exactNames replaces each lossy name by the bytes of its *_b64 member.
func (e *Entry) exactNames() error {
	if err := exact(&e.User, e.UserB64, "user_b64"); err != nil {
		return err
	}
	if err := exact(&e.Channel, e.ChannelB64, "channel_b64"); err != nil {
		return err
	}
	if e.Client != nil {
		return exact(&e.Client.Name, e.Client.NameB64, "client.name_b64")
	}
	return nil
}

func exact(name *string, b64, key string) error {
	if b64 == "" {
		return nil
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return fmt.Errorf("%s is not standard base64: %v", key, err)
	}
	*name = string(b)
	return nil
}
