package deploystage

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

// requestTimeout bounds each discovery request, so an address that swallows packets fails
// instead of hanging; apply requests are bounded by the caller's context, watches by theirs.
const requestTimeout = 30 * time.Second

// cluster is a connection to one API server and what the kubeconfig says about it.
type cluster struct {
	host      string
	from      string // where the configuration came from, for messages
	namespace string // the kubeconfig context's (or the pod's) namespace
	kube      kubernetes.Interface
	dyn       dynamic.Interface
	mapper    *restmapper.DeferredDiscoveryRESTMapper
}

// kubeconfig is a loaded client configuration.
type kubeconfig struct {
	config    *rest.Config
	from      string
	namespace string
}

// loadKubeconfig loads path, or with "" client-go's default rules ($KUBECONFIG, then
// ~/.kube/config), falling back to the pod's service account when neither has a configuration.
func loadKubeconfig(path string) (*kubeconfig, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = path
	where := configWhere(path)
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{})
	raw, err := cc.RawConfig()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: %w", where, err)
	}
	cfg, err := cc.ClientConfig()
	switch {
	case err != nil && clientcmd.IsEmptyConfig(err) && path != "":
		return nil, fmt.Errorf("kubeconfig %s: no current-context, or it names no cluster", where)
	case err != nil && clientcmd.IsEmptyConfig(err):
		return nil, fmt.Errorf("no Kubernetes configuration: %s has none, and %s; give --kubeconfig or set KUBECONFIG", where, whyNotInCluster())
	case err != nil && path == "" && len(raw.Clusters) == 0 && len(raw.Contexts) == 0:
		return nil, fmt.Errorf("in-cluster configuration (%s has none): %w", where, err)
	case err != nil:
		return nil, fmt.Errorf("kubeconfig %s: %w", where, err)
	}
	ns, _, err := cc.Namespace()
	if err != nil {
		return nil, fmt.Errorf("kubeconfig %s: namespace: %w", where, err)
	}
	from := fmt.Sprintf("kubeconfig %s, context %q", where, raw.CurrentContext)
	if len(raw.Contexts) == 0 && len(raw.Clusters) == 0 {
		from = "the pod's service account (in-cluster configuration)"
	}
	return &kubeconfig{config: cfg, from: from, namespace: ns}, nil
}

// configWhere names the kubeconfig the default rules would read, for messages.
func configWhere(path string) string {
	if path != "" {
		return path
	}
	if env := os.Getenv(clientcmd.RecommendedConfigPathEnvVar); env != "" {
		return "$KUBECONFIG=" + env
	}
	return clientcmd.RecommendedHomeFile
}

// serviceAccountToken is where a pod's service account token is mounted.
const serviceAccountToken = "/var/run/secrets/kubernetes.io/serviceaccount/token"

// whyNotInCluster says why client-go found no in-cluster configuration.
func whyNotInCluster() string {
	if os.Getenv("KUBERNETES_SERVICE_HOST") == "" || os.Getenv("KUBERNETES_SERVICE_PORT") == "" {
		return "this is not a pod (KUBERNETES_SERVICE_HOST or KUBERNETES_SERVICE_PORT is unset)"
	}
	return "the pod has no service account token mounted at " + serviceAccountToken + " (automountServiceAccountToken: false?)"
}

// connect builds the clients and checks that the server answers, so an unreachable server or
// refused credentials fail here with a message naming both, not later on the first object.
func connect(ctx context.Context, kc *kubeconfig, log Logger) (*cluster, error) {
	cfg := rest.CopyConfig(kc.config)
	cfg.UserAgent = "kiln-pipeline"
	cfg.WarningHandler = warningLogger{log}
	cfg.QPS, cfg.Burst = 50, 100
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kc.from, err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kc.from, err)
	}
	dcfg := rest.CopyConfig(cfg)
	dcfg.Timeout = requestTimeout
	dc, err := discovery.NewDiscoveryClientForConfig(dcfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", kc.from, err)
	}
	v, err := dc.ServerVersion()
	switch {
	case apierrors.IsUnauthorized(err):
		return nil, fmt.Errorf("the API server %s refused the credentials of %s (401 Unauthorized: a wrong or expired token or client certificate): %w", cfg.Host, kc.from, err)
	case err != nil:
		return nil, fmt.Errorf("cannot reach the Kubernetes API server %s (from %s): %w", cfg.Host, kc.from, err)
	}
	c := &cluster{
		host: cfg.Host, from: kc.from, namespace: kc.namespace, kube: kube, dyn: dyn,
		mapper: restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)),
	}
	log.Infof("Kubernetes API server %s (%s), from %s, as %s", cfg.Host, v.GitVersion, kc.from, c.user(ctx))
	return c, nil
}

// user asks the server who we are; only for the log, so failures just say "unknown user".
func (c *cluster) user(ctx context.Context) string {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	r, err := c.kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authnv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || r.Status.UserInfo.Username == "" {
		return "an unknown user"
	}
	return r.Status.UserInfo.Username
}

// warningLogger passes the server's warnings (deprecated APIs, ignored fields) to the log.
type warningLogger struct{ log Logger }

func (w warningLogger) HandleWarningHeader(code int, agent, text string) {
	if code == 299 && text != "" {
		w.log.Warnf("API server: %s", text)
	}
}

// errNotReachable tells whether err is the transport failing, not the server answering.
func errNotReachable(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue)
}
