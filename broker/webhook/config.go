package webhook

import (
	"errors"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Names the injector reserves in every pod it mutates. An init container or volume that
// already uses them is replaced by the injector's own definition unless it is exactly
// that; an app container named lanyard-agent gets the pod refused.
//
//nolint:gosec // G101: volume and container names, not credentials
const (
	AgentContainerName   = "lanyard-agent"
	TokenVolumeName      = "lanyard-token"
	CredentialVolumeName = "lanyard-credential"
)

// Paths inside the agent container.
//
//nolint:gosec // G101: file system paths, not credentials
const (
	agentTokenDir  = "/var/run/secrets/lanyard"
	agentOutputDir = "/var/run/lanyard"
)

// Roles tells the injector which catalog roles exist. The catalog watcher of the serving
// webhook implements it; tests use a map.
type Roles interface {
	// MaxTTL returns the longest lifetime an agent may ask for, and false for an
	// unknown role.
	MaxTTL(role string) (time.Duration, bool)
}

// CASource returns the PEM of the CA that signed the broker's serving certificate.
type CASource func() ([]byte, error)

// Config is what the injector puts into pods.
type Config struct {
	// AgentImage is the agent's image reference.
	AgentImage string
	// AgentImagePullPolicy is IfNotPresent unless set.
	AgentImagePullPolicy string
	// BrokerAddr is the broker's gRPC address as the agent dials it.
	BrokerAddr string
	// Audience of the projected token the agent presents to the broker.
	Audience string
	// TokenExpiration of that projected token; Kubernetes' minimum is 10 minutes.
	TokenExpiration time.Duration
	// HealthPort is where the agent serves /readyz and /healthz on the pod IP.
	HealthPort int32
	// BrokerCA supplies the CA PEM written into the pod's lanyard.dev/broker-ca
	// annotation. Unused when ClusterTrustBundle is set.
	BrokerCA CASource
	// ClusterTrustBundle, when set, names a ClusterTrustBundle projected into the agent
	// instead of the annotation: the CA can then rotate without recreating pods.
	ClusterTrustBundle string
	// Resources of the agent container.
	CPURequest, MemoryRequest, CPULimit, MemoryLimit resource.Quantity
	// CredentialSizeLimit bounds the in-memory volume holding the credential.
	CredentialSizeLimit resource.Quantity
	// DefaultUID runs the agent when the pod names no user: the image's 65532.
	DefaultUID int64
}

// DefaultConfig returns a Config with every default filled in; callers set AgentImage,
// BrokerAddr and a CA source.
func DefaultConfig() Config {
	return Config{
		AgentImagePullPolicy: "IfNotPresent",
		Audience:             "lanyard",
		TokenExpiration:      10 * time.Minute,
		HealthPort:           8099,
		CPURequest:           resource.MustParse("5m"),
		MemoryRequest:        resource.MustParse("16Mi"),
		CPULimit:             resource.MustParse("100m"),
		MemoryLimit:          resource.MustParse("48Mi"),
		CredentialSizeLimit:  resource.MustParse("1Mi"),
		DefaultUID:           65532,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.AgentImage == "":
		return errors.New("agent image is required")
	case c.BrokerAddr == "":
		return errors.New("broker address is required")
	case c.Audience == "":
		return errors.New("audience is required")
	case c.TokenExpiration < 10*time.Minute:
		return fmt.Errorf("token expiration %s is below the 10m Kubernetes allows",
			c.TokenExpiration)
	case c.HealthPort < 1 || c.HealthPort > 65535:
		return fmt.Errorf("agent health port %d is out of range", c.HealthPort)
	case c.ClusterTrustBundle == "" && c.BrokerCA == nil:
		return errors.New("a broker CA file or a ClusterTrustBundle name is required")
	}
	return nil
}
