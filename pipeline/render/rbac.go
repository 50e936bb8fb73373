package render

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/kilnbuild/kiln/pipeline/spec"
)

// JenkinsName names the Jenkins controller's objects and its agent account in jenkins.yaml and
// rbac.yaml.
const JenkinsName = "jenkins"

// Namespace is where the pipeline's rendered objects live: the pipeline's namespace, "default"
// when it names none.
func Namespace(p *spec.Pipeline) string {
	if p.Namespace != "" {
		return p.Namespace
	}
	return "default"
}

// ServiceAccountName is the account the pipeline pod (build pod, Job) runs as, and the deploy
// stage applies with: "<name>-pipeline".
func ServiceAccountName(p *spec.Pipeline) string { return p.Name + "-pipeline" }

// PipelineRBAC returns the deploy's least privilege: a ServiceAccount for the pipeline pod and a
// Role, bound to it, that allows in the pipeline's namespace only what applying Deployments and
// Services and following their rollout needs. No delete, no secrets, nothing cluster-wide.
func PipelineRBAC(p *spec.Pipeline) (*corev1.ServiceAccount, *rbacv1.Role, *rbacv1.RoleBinding) {
	name := ServiceAccountName(p)
	write := []string{"get", "list", "watch", "create", "update", "patch"}
	read := []string{"get", "list", "watch"}
	return roleFor(pipelineMeta(p, name), []rbacv1.PolicyRule{
		{APIGroups: []string{"apps"}, Resources: []string{"deployments"}, Verbs: write},
		{APIGroups: []string{""}, Resources: []string{"services"}, Verbs: write},
		// Pods and events explain a rollout that does not finish (image pulls, probes).
		{APIGroups: []string{""}, Resources: []string{"pods", "events"}, Verbs: read},
	})
}

// JenkinsRBAC returns the Jenkins controller's account: its Kubernetes plugin starts agent pods
// in the namespace, execs into their containers (container steps) and reads their logs.
func JenkinsRBAC(p *spec.Pipeline) (*corev1.ServiceAccount, *rbacv1.Role, *rbacv1.RoleBinding) {
	return roleFor(jenkinsMeta(p, JenkinsName), []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"create", "delete", "get", "list", "watch"}},
		{APIGroups: []string{""}, Resources: []string{"pods/exec"}, Verbs: []string{"create", "get"}},
		{APIGroups: []string{""}, Resources: []string{"pods/log"}, Verbs: []string{"get", "list", "watch"}},
	})
}

// roleFor makes a ServiceAccount, a Role with rules and a RoleBinding between them, all with
// meta's name and namespace.
func roleFor(meta metav1.ObjectMeta, rules []rbacv1.PolicyRule) (*corev1.ServiceAccount, *rbacv1.Role, *rbacv1.RoleBinding) {
	name, ns := meta.Name, meta.Namespace
	sa := &corev1.ServiceAccount{TypeMeta: typeMeta("v1", "ServiceAccount"), ObjectMeta: meta}
	role := &rbacv1.Role{TypeMeta: typeMeta("rbac.authorization.k8s.io/v1", "Role"), ObjectMeta: meta, Rules: rules}
	binding := &rbacv1.RoleBinding{
		TypeMeta:   typeMeta("rbac.authorization.k8s.io/v1", "RoleBinding"),
		ObjectMeta: meta,
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}},
	}
	return sa, role, binding
}

func typeMeta(apiVersion, kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}
}

// pipelineMeta is the metadata of the pipeline's own objects. Its labels never include
// app.kubernetes.io/name, so that the app's Service cannot select a pipeline pod by mistake.
// Each call returns a fresh map, so objects never share one.
func pipelineMeta(p *spec.Pipeline, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: Namespace(p), Labels: map[string]string{
		"app.kubernetes.io/part-of":    p.Name,
		"app.kubernetes.io/component":  "pipeline",
		"app.kubernetes.io/managed-by": "kiln",
	}}
}

// jenkinsMeta is the metadata of the Jenkins controller's objects.
func jenkinsMeta(p *spec.Pipeline, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: Namespace(p), Labels: jenkinsLabels()}
}

func jenkinsLabels() map[string]string {
	l := jenkinsSelector()
	l["app.kubernetes.io/managed-by"] = "kiln"
	return l
}

// jenkinsSelector selects the Jenkins controller's pod.
func jenkinsSelector() map[string]string {
	return map[string]string{"app.kubernetes.io/name": JenkinsName}
}

// rbac is rbac.yaml: the pipeline's account and Role, and the Jenkins controller's when
// withJenkins.
func (r *renderer) rbac(withJenkins bool) ([]byte, error) {
	sa, role, binding := PipelineRBAC(r.p)
	objs := []runtime.Object{sa, role, binding}
	lines := []string{
		fmt.Sprintf("Least privilege for %s's pipeline, rendered by kiln from %s: the pipeline pod", r.p.Name, r.file),
		"runs as " + sa.Name + ", which may apply Deployments and Services and read pods and events",
		"in the namespace " + sa.Namespace + ", and nothing else.",
	}
	if withJenkins {
		jsa, jrole, jbinding := JenkinsRBAC(r.p)
		objs = append(objs, jsa, jrole, jbinding)
		lines = append(lines, "The Jenkins controller runs as "+jsa.Name+": it starts agent pods in the namespace,",
			"execs into their containers and reads their logs.")
	}
	return kubeYAML(comment(lines...), objs...)
}
