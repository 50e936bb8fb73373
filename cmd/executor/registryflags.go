package main

import "github.com/kilnbuild/kiln/registry"

// registryOptions maps the TLS and insecure flags onto pull and push option sets.
func registryOptions(c *config) (pull, push []registry.Option) {
	common := []registry.Option{registry.WithUserAgent("kiln-executor")}
	if len(c.insecureRegistries) > 0 {
		common = append(common, registry.WithInsecure(c.insecureRegistries...))
	}
	if len(c.skipTLSRegistries) > 0 {
		common = append(common, registry.WithSkipTLSVerify(c.skipTLSRegistries...))
	}
	pull = append(append([]registry.Option{}, common...),
		registry.WithInsecureAll(c.insecurePull), registry.WithSkipTLSVerifyAll(c.skipTLSVerifyPull),
		registry.WithRetries(c.imageDownloadRetry))
	push = append(append([]registry.Option{}, common...),
		registry.WithInsecureAll(c.insecure), registry.WithSkipTLSVerifyAll(c.skipTLSVerify),
		registry.WithRetries(c.pushRetry))
	return pull, push
}
