package render

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The Jenkins controller of jenkins.yaml.
const (
	jenkinsImage     = "jenkins/jenkins:lts"
	jenkinsHome      = "/var/jenkins_home"
	jenkinsHomeClaim = "jenkins-home"
	jenkinsHTTPPort  = 8080
	jenkinsAgentPort = 50000 // agents' inbound (JNLP) connections
	jenkinsUID       = 1000  // the jenkins user of the image, owner of its home
)

// jenkinsServer is jenkins.yaml: a Jenkins controller with its home on a PersistentVolumeClaim,
// running as the Jenkins account of rbac.yaml, and a Service for its web UI and its agents.
func (r *renderer) jenkinsServer() ([]byte, error) {
	pvc := &corev1.PersistentVolumeClaim{
		TypeMeta:   typeMeta("v1", "PersistentVolumeClaim"),
		ObjectMeta: jenkinsMeta(r.p, jenkinsHomeClaim),
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources: corev1.VolumeResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("8Gi")},
			},
		},
	}
	login := func(initialDelay int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/login", Port: intstr.FromString("http"),
			}},
			InitialDelaySeconds: initialDelay, PeriodSeconds: 10, TimeoutSeconds: 5, FailureThreshold: 12,
		}
	}
	container := corev1.Container{
		Name: JenkinsName, Image: jenkinsImage,
		Ports: []corev1.ContainerPort{
			{Name: "http", ContainerPort: jenkinsHTTPPort},
			{Name: "agent", ContainerPort: jenkinsAgentPort},
		},
		VolumeMounts:   []corev1.VolumeMount{{Name: jenkinsHomeClaim, MountPath: jenkinsHome}},
		ReadinessProbe: login(30),
		LivenessProbe:  login(90),
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("1Gi")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")},
		},
	}
	deploy := &appsv1.Deployment{
		TypeMeta:   typeMeta("apps/v1", "Deployment"),
		ObjectMeta: jenkinsMeta(r.p, JenkinsName),
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(1)),
			// One pod at a time: the home volume is ReadWriteOnce.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
			Selector: &metav1.LabelSelector{MatchLabels: jenkinsSelector()},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: jenkinsLabels()},
				Spec: corev1.PodSpec{
					ServiceAccountName: JenkinsName,
					// The home volume is writable by the image's jenkins user.
					SecurityContext: &corev1.PodSecurityContext{
						RunAsUser: new(int64(jenkinsUID)), FSGroup: new(int64(jenkinsUID)),
					},
					Containers: []corev1.Container{container},
					Volumes: []corev1.Volume{{Name: jenkinsHomeClaim, VolumeSource: corev1.VolumeSource{
						PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: jenkinsHomeClaim},
					}}},
				},
			},
		},
	}
	svc := &corev1.Service{
		TypeMeta:   typeMeta("v1", "Service"),
		ObjectMeta: jenkinsMeta(r.p, JenkinsName),
		Spec: corev1.ServiceSpec{
			Selector: jenkinsSelector(),
			Ports: []corev1.ServicePort{
				{Name: "http", Port: jenkinsHTTPPort, TargetPort: intstr.FromString("http")},
				{Name: "agent", Port: jenkinsAgentPort, TargetPort: intstr.FromString("agent")},
			},
		},
	}
	host := fmt.Sprintf("%s.%s.svc", JenkinsName, Namespace(r.p))
	return kubeYAML(comment(
		"A Jenkins controller for "+r.p.Name+"'s pipeline, rendered by kiln. Apply rbac.yaml first.",
		fmt.Sprintf("In its Kubernetes cloud settings: namespace %s, Jenkins URL http://%s:%d,", Namespace(r.p), host, jenkinsHTTPPort),
		fmt.Sprintf("Jenkins tunnel %s:%d.", host, jenkinsAgentPort),
	), pvc, deploy, svc)
}
