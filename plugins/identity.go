package plugins

import (
	"fmt"
	"time"
)

// IdentityCredentials are a user's materialised credentials (§4.10). They
// print as "<IdentityCredentials redacted>"; JSON is not redacted.
// TokenType defaults to "Bearer" when decoded.
type IdentityCredentials struct {
	AccessToken  string         `json:"access_token"`
	TokenType    string         `json:"token_type"`
	ExpiresAt    *time.Time     `json:"expires_at"`
	RefreshToken *string        `json:"refresh_token"`
	Scopes       []string       `json:"scopes"`
	Extra        map[string]any `json:"extra"`
}

const redactedIdentity = "<IdentityCredentials redacted>"

func (c IdentityCredentials) String() string             { return redactedIdentity }
func (c IdentityCredentials) GoString() string           { return redactedIdentity }
func (c IdentityCredentials) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redactedIdentity)) }

func (c IdentityCredentials) MarshalJSON() ([]byte, error) {
	type plain IdentityCredentials
	return encodeModel(plain(c))
}

func (c *IdentityCredentials) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("IdentityCredentials", data)
	if err != nil {
		return err
	}
	v := IdentityCredentials{TokenType: "Bearer"}
	field(d, "access_token", &v.AccessToken, required, parseString)
	field(d, "token_type", &v.TokenType, withDefault, parseString)
	field(d, "expires_at", &v.ExpiresAt, nullable, optTime)
	field(d, "refresh_token", &v.RefreshToken, nullable, optStr)
	field(d, "scopes", &v.Scopes, withDefault, strList)
	field(d, "extra", &v.Extra, withDefault, anyMap)
	return store(d, c, v)
}

// IdentityProfile is who a user is upstream (§4.10).
type IdentityProfile struct {
	Subject       string         `json:"subject"`
	Email         *string        `json:"email"`
	EmailVerified bool           `json:"email_verified"`
	Name          *string        `json:"name"`
	AvatarURL     *string        `json:"avatar_url"`
	Groups        []string       `json:"groups"`
	RawClaims     map[string]any `json:"raw_claims"`
}

func (p IdentityProfile) MarshalJSON() ([]byte, error) {
	type plain IdentityProfile
	return encodeModel(plain(p))
}

func (p *IdentityProfile) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("IdentityProfile", data)
	if err != nil {
		return err
	}
	var v IdentityProfile
	field(d, "subject", &v.Subject, required, parseString)
	field(d, "email", &v.Email, nullable, optStr)
	field(d, "email_verified", &v.EmailVerified, withDefault, parseBool)
	field(d, "name", &v.Name, nullable, optStr)
	field(d, "avatar_url", &v.AvatarURL, nullable, optStr)
	field(d, "groups", &v.Groups, withDefault, strList)
	field(d, "raw_claims", &v.RawClaims, withDefault, anyMap)
	return store(d, p, v)
}

// PollingDescriptor drives a device-code flow (§4.10). Interval defaults
// to 5 seconds when decoded.
type PollingDescriptor struct {
	UserCode                string  `json:"user_code"`
	VerificationURI         string  `json:"verification_uri"`
	VerificationURIComplete *string `json:"verification_uri_complete"`
	Interval                int     `json:"interval"`
	ExpiresIn               int     `json:"expires_in"`
}

func (p PollingDescriptor) MarshalJSON() ([]byte, error) {
	type plain PollingDescriptor
	return encodeModel(plain(p))
}

func (p *PollingDescriptor) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("PollingDescriptor", data)
	if err != nil {
		return err
	}
	v := PollingDescriptor{Interval: 5}
	field(d, "user_code", &v.UserCode, required, parseString)
	field(d, "verification_uri", &v.VerificationURI, required, parseString)
	field(d, "verification_uri_complete", &v.VerificationURIComplete, nullable, optStr)
	field(d, "interval", &v.Interval, withDefault, parseInt)
	field(d, "expires_in", &v.ExpiresIn, required, parseInt)
	return store(d, p, v)
}

// AuthorizationRequest starts an identity flow (§4.10).
// RegisteredCredentials (nil = JSON null) are credentials minted during
// the call that the host persists into the plugin's configuration.
type AuthorizationRequest struct {
	AuthorizationURL      string             `json:"authorization_url"`
	State                 string             `json:"state"`
	CodeVerifier          *string            `json:"code_verifier"`
	Polling               *PollingDescriptor `json:"polling"`
	RegisteredCredentials map[string]string  `json:"registered_credentials" imbi:"nullable"`
}

func (a AuthorizationRequest) MarshalJSON() ([]byte, error) {
	type plain AuthorizationRequest
	return encodeModel(plain(a))
}

func (a *AuthorizationRequest) UnmarshalJSON(data []byte) error {
	d, err := newObjectDecoder("AuthorizationRequest", data)
	if err != nil {
		return err
	}
	var v AuthorizationRequest
	field(d, "authorization_url", &v.AuthorizationURL, required, parseString)
	field(d, "state", &v.State, required, parseString)
	field(d, "code_verifier", &v.CodeVerifier, nullable, optStr)
	field(d, "polling", &v.Polling, nullable, ptr(model[PollingDescriptor]()))
	field(d, "registered_credentials", &v.RegisteredCredentials, nullable, strMap)
	return store(d, a, v)
}
