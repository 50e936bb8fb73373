package executor

import (
	"fmt"
	"os"

	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
)

// DockerConfigKeychain returns a keychain reading the Docker config.json in dir (or the file
// dir itself, when it is one): "auths" entries, "credHelpers" and "credsStore", looked up the
// way authn.DefaultKeychain looks them up in $DOCKER_CONFIG. The file is read at each
// lookup, so a credential refreshed during a long build is seen. A missing file means
// anonymous access; a malformed one is an error naming it.
func DockerConfigKeychain(dir string) authn.Keychain { return configKeychain{path: dir} }

type configKeychain struct{ path string }

// Resolve implements authn.Keychain.
func (k configKeychain) Resolve(target authn.Resource) (authn.Authenticator, error) {
	cf, err := k.load()
	if err != nil {
		return nil, err
	}
	var empty types.AuthConfig
	for _, key := range []string{target.String(), target.RegistryStr()} {
		if key == name.DefaultRegistry {
			key = authn.DefaultAuthKey // the key Docker writes for Docker Hub
		}
		ac, err := cf.GetAuthConfig(key)
		if err != nil {
			return nil, fmt.Errorf("credentials for %s from %s: %w", key, k.path, err)
		}
		ac.ServerAddress = "" // GetAuthConfig fills it in; it says nothing about credentials
		if ac != empty {
			return authn.FromConfig(authn.AuthConfig{Username: ac.Username, Password: ac.Password,
				Auth: ac.Auth, IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken}), nil
		}
	}
	return authn.Anonymous, nil
}

func (k configKeychain) load() (*configfile.ConfigFile, error) {
	if fi, err := os.Stat(k.path); err == nil && fi.Mode().IsRegular() {
		f, err := os.Open(k.path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		cf, err := config.LoadFromReader(f)
		if err != nil {
			return nil, fmt.Errorf("docker config %s: %w", k.path, err)
		}
		return cf, nil
	}
	return config.Load(k.path)
}
