package server

import (
	"fmt"
	"strconv"

	"google.golang.org/grpc/codes"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/lanyard-dev/lanyard/broker/catalog"
)

// Strings a caller chooses reach the log and the audit trail before anyone
// has checked them, and even an unauthenticated caller chooses them, up to
// the size of a gRPC message. What is recorded of them is therefore either
// a value the broker could have issued or a short quoted excerpt.

// maxCredentialIDLen is the longest credential id the broker accepts. A
// sealed id holds at most 43 bytes of version, nonce, tag, lengths and
// expiry, the pod UID (36) and the Vault lease id (mount + "/creds/lanyard-"
// + a role of at most 40 characters + "/" + Vault's 24-character suffix):
// 169 bytes for the default mount, 226 characters in base64url. 1 KiB
// leaves room for a mount path of more than 500 characters.
const maxCredentialIDLen = 1024

// Recorded in place of a credential id that cannot be one.
const (
	idTooLong   = "(credential id too long)"
	idMalformed = "(credential id malformed)"
)

// excerptLen is how many bytes of an invalid string are recorded.
const excerptLen = 40

// recordedRole is what the log and audit record of a requested role name.
func recordedRole(name string) string {
	if name == "" || catalog.ValidRoleName(name) {
		return name
	}
	return excerpt(name)
}

// recordedNamespace is what the log and audit record of a requested
// namespace.
func recordedNamespace(ns string) string {
	if len(validation.IsDNS1123Label(ns)) == 0 {
		return ns
	}
	return excerpt(ns)
}

// recordedID is what the log and audit record of a credential id from a
// caller. A well-formed id is recorded whole: it names no secret, and it
// ties the revocation to the issue line that recorded the same id.
func recordedID(id string) string {
	switch {
	case len(id) > maxCredentialIDLen:
		return idTooLong
	case !base64URL(id):
		return idMalformed
	}
	return id
}

// checkRoleName refuses a requested role name that no catalog can hold,
// before the catalog sees it: the catalog's own refusal quotes the name.
func checkRoleName(name string) error {
	switch {
	case name == "":
		return refuse(codes.InvalidArgument, ReasonInvalidRequest, "role is required")
	case !catalog.ValidRoleName(name):
		return refuse(codes.InvalidArgument, ReasonInvalidRequest, fmt.Sprintf(
			"role %s is not a valid role name: want a DNS-1123 label of at most %d characters",
			excerpt(name), catalog.MaxRoleNameLength))
	}
	return nil
}

// excerpt quotes at most excerptLen bytes of s with Go escapes, so that
// control characters, line breaks and invalid UTF-8 cannot forge log
// lines, and says how long s was when it is cut.
func excerpt(s string) string {
	if len(s) <= excerptLen {
		return strconv.QuoteToASCII(s)
	}
	return fmt.Sprintf("%s... (%d bytes)", strconv.QuoteToASCII(s[:excerptLen]), len(s))
}

// base64URL tells whether s uses only the unpadded base64url alphabet of
// sealed ids.
func base64URL(s string) bool {
	for i := range len(s) {
		if !base64URLByte(s[i]) {
			return false
		}
	}
	return true
}

func base64URLByte(c byte) bool {
	switch {
	case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return true
	}
	return c == '-' || c == '_'
}
