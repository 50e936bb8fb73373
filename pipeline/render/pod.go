package render

import (
	"github.com/kilnbuild/kiln/pipeline/imagestage"

	corev1 "k8s.io/api/core/v1"
)

// Names shared by the rendered pods.
const (
	// dockerConfigVolume holds the registry Secret as /kaniko/.docker/config.json, where the
	// executor (and Kaniko) reads registry credentials.
	dockerConfigVolume = "docker-config"
	dockerConfigDir    = "/kaniko/.docker"
	// workspaceVolume is the Job's checkout, shared by its containers at spec.DefaultWorkdir.
	workspaceVolume = "workspace"
	// Container names: Jenkins' container() steps and the Job's init containers use them.
	containerBuild  = "build"
	containerKaniko = "kaniko"
	containerSource = "source"
	containerImage  = "image"
	containerDeploy = "deploy"
)

// shellExecutorArgs is the executor command line for a container in which a shell goes on
// after the executor: the executor builds into the container's own root, so it must leave the
// debug image's busybox alone (Docker keeps it as a VOLUME; Kubernetes does not).
func (r *renderer) shellExecutorArgs(workspace string) []string {
	args := imagestage.ExecutorArgs(r.p.Image, r.inWorkspace(workspace, ""))
	return append(append([]string{"/kaniko/executor"}, args...), "--ignore-path=/busybox")
}

// dockerConfig is the volume of the registry Secret, its .dockerconfigjson key as config.json.
func (r *renderer) dockerConfig() corev1.Volume {
	return corev1.Volume{Name: dockerConfigVolume, VolumeSource: corev1.VolumeSource{
		Secret: &corev1.SecretVolumeSource{
			SecretName: r.registrySecret(),
			Items:      []corev1.KeyToPath{{Key: corev1.DockerConfigJsonKey, Path: "config.json"}},
		},
	}}
}

func dockerConfigMount() corev1.VolumeMount {
	return corev1.VolumeMount{Name: dockerConfigVolume, MountPath: dockerConfigDir, ReadOnly: true}
}

// buildPod is build-pod.yaml: the Jenkins agent pod. Jenkins' Kubernetes plugin adds its own
// jnlp container and the workspace volume; the others are kept alive (cat on a tty) so that
// container() steps can exec into them.
func (r *renderer) buildPod() ([]byte, error) {
	var containers []corev1.Container
	if r.p.Build != nil {
		containers = append(containers, corev1.Container{
			Name: containerBuild, Image: r.p.Build.Image,
			Command: []string{"cat"}, TTY: true,
		})
	}
	// The :debug executor image has busybox at /busybox; it runs the image and deploy stages.
	containers = append(containers, corev1.Container{
		Name: containerKaniko, Image: r.executorImage(),
		Command: []string{"/busybox/cat"}, TTY: true,
		VolumeMounts: []corev1.VolumeMount{dockerConfigMount()},
	})
	pod := &corev1.Pod{
		TypeMeta:   typeMeta("v1", "Pod"),
		ObjectMeta: pipelineMeta(r.p, r.p.Name+"-build"),
		Spec: corev1.PodSpec{
			ServiceAccountName: ServiceAccountName(r.p),
			Containers:         containers,
			Volumes:            []corev1.Volume{r.dockerConfig()},
		},
	}
	return kubeYAML(comment(
		"The Jenkins agent pod of "+r.p.Name+"'s pipeline, rendered by kiln: the Jenkinsfile",
		"names it with yamlFile. It runs as the pipeline's service account (rbac.yaml) and",
		"mounts the registry Secret "+r.registrySecret()+" (regcred.sh) at "+dockerConfigDir+".",
	), pod)
}
