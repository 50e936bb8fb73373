package render

import (
	"fmt"
	"path"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kilnbuild/kiln/pipeline/imagestage"
	"github.com/kilnbuild/kiln/pipeline/spec"
)

// job is job.yaml: the whole pipeline in one pod, no CI server. Init containers run in order
// (fetch the source, build, build and push the image) and the deploy is the pod's container;
// the first failure fails the Job, which never retries.
func (r *renderer) job() ([]byte, error) {
	src := r.p.Source
	if src == nil || src.Git == "" {
		return nil, r.errAt("source", "the job target needs source.git: the Job fetches the code itself")
	}
	env := r.jobEnv()
	ws := corev1.VolumeMount{Name: workspaceVolume, MountPath: spec.DefaultWorkdir}
	checkout := []string{"/kaniko/pipeline", "checkout", "--git", src.Git}
	if src.Ref != "" {
		checkout = append(checkout, "--ref", src.Ref)
	}
	steps := []corev1.Container{{
		Name: containerSource, Image: r.executorImage(),
		Command:      r.kubeValues(append(checkout, "--dir", spec.DefaultWorkdir)),
		Env:          env,
		VolumeMounts: []corev1.VolumeMount{ws},
	}}
	if b := r.p.Build; b != nil {
		steps = append(steps, corev1.Container{
			Name: containerBuild, Image: b.Image,
			WorkingDir:   r.workdir(spec.DefaultWorkdir),
			Command:      r.jobBuildCommand(),
			Env:          append(append([]corev1.EnvVar{}, env...), r.buildEnv()...),
			VolumeMounts: []corev1.VolumeMount{ws},
		})
	}
	if img := r.p.Image; img != nil {
		steps = append(steps, corev1.Container{
			Name: containerImage, Image: r.executorImage(),
			Command:      []string{"/kaniko/executor"},
			Args:         r.kubeValues(imagestage.ExecutorArgs(img, r.inWorkspace(spec.DefaultWorkdir, ""))),
			Env:          env,
			VolumeMounts: []corev1.VolumeMount{ws, dockerConfigMount()},
		})
	}
	if r.p.Deploy != nil {
		steps = append(steps, corev1.Container{
			Name: containerDeploy, Image: r.executorImage(),
			Command:      r.kubeValues(r.deployCommand(path.Join(spec.DefaultWorkdir, r.file), "${BUILD_NUMBER}")),
			Env:          env,
			VolumeMounts: []corev1.VolumeMount{ws},
		})
	}
	meta := pipelineMeta(r.p, "")
	if r.o.BuildNumber != "" {
		meta.Name = r.p.Name + "-" + r.o.BuildNumber
		// The Job controller labels its pods with the name: it must be a label value too.
		if errs := validation.IsValidLabelValue(meta.Name); len(errs) > 0 {
			return nil, fmt.Errorf("build number %q cannot name the Job %q: %s", r.o.BuildNumber, meta.Name, strings.Join(errs, "; "))
		}
	} else {
		meta.GenerateName = r.p.Name + "-"
	}
	podMeta := pipelineMeta(r.p, "")
	podMeta.Namespace = ""
	last := len(steps) - 1
	job := &batchv1.Job{
		TypeMeta:   typeMeta("batch/v1", "Job"),
		ObjectMeta: meta,
		Spec: batchv1.JobSpec{
			BackoffLimit: new(int32(0)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: podMeta,
				Spec: corev1.PodSpec{
					ServiceAccountName: ServiceAccountName(r.p),
					RestartPolicy:      corev1.RestartPolicyNever,
					InitContainers:     steps[:last],
					Containers:         steps[last:],
					Volumes: []corev1.Volume{
						{Name: workspaceVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
						r.dockerConfig(),
					},
				},
			},
		},
	}
	return kubeYAML(r.jobHeader(), job)
}

// jobEnv are the variables a run of the pipeline needs (BUILD_NUMBER among them), each with
// the value the options give, or the placeholder ${NAME} for whoever submits the Job to fill
// in. Args refer to them as $(NAME), which Kubernetes expands.
func (r *renderer) jobEnv() []corev1.EnvVar {
	var env []corev1.EnvVar
	for _, v := range r.env {
		val, ok := r.known[v]
		if !ok {
			val = "${" + v + "}"
		}
		env = append(env, corev1.EnvVar{Name: v, Value: val})
	}
	return env
}

// buildEnv is the build stage's env, sorted, after jobEnv so that its values can refer to the
// pipeline's variables.
func (r *renderer) buildEnv() []corev1.EnvVar {
	var env []corev1.EnvVar
	for _, k := range sortedKeys(r.p.Build.Env) {
		env = append(env, corev1.EnvVar{Name: k, Value: kubeValue(r.p.Build.Env[k], r.known)})
	}
	return env
}

// jobBuildCommand is the build stage's command for the container: a shell line through
// /bin/sh -c, whose shell expands the variables from the env (Kubernetes must leave the line
// alone), or an exec form with its references as $(NAME).
func (r *renderer) jobBuildCommand() []string {
	c := r.p.Build.Command
	if c.Exec != nil {
		return r.kubeValues(c.Exec)
	}
	return []string{"/bin/sh", "-c", kubeEscape(shellLine(c.Shell), 0)}
}

// kubeValues applies kubeValue to each string.
func (r *renderer) kubeValues(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = kubeValue(s, r.known)
	}
	return out
}

// jobHeader says how to submit the Job.
func (r *renderer) jobHeader() string {
	lines := []string{
		fmt.Sprintf("%s's whole pipeline as one Kubernetes Job, rendered by kiln from %s.", r.p.Name, r.file),
		"It needs rbac.yaml applied and the registry Secret " + r.registrySecret() + " (regcred.sh).",
	}
	var placeholders []string
	for _, e := range r.jobEnv() {
		if e.Value == "${"+e.Name+"}" {
			placeholders = append(placeholders, "$"+e.Name)
		}
	}
	if len(placeholders) > 0 {
		lines = append(lines, "Its env holds placeholders to fill in when submitting it, for instance:",
			fmt.Sprintf("  envsubst '%s' < %s | kubectl create -f -", strings.Join(placeholders, " "), FileJob))
	} else {
		lines = append(lines, "Submit it with: kubectl create -f "+FileJob)
	}
	return comment(lines...)
}
