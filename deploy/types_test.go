package deploy_test

// Minimal typed views of the manifests: only the fields deploy/ uses. They
// are decoded with sigs.k8s.io/yaml's UnmarshalStrict, so a field that is
// misspelt, misplaced or not listed here fails the test — add a field here
// deliberately when a manifest starts using it. (No k8s client libraries:
// they are huge, and these few structs are the contract we rely on.)

type typeMeta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
}

type objectMeta struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type labelSelector struct {
	MatchLabels map[string]string `json:"matchLabels"`
}

type configMap struct {
	typeMeta
	Metadata objectMeta        `json:"metadata"`
	Data     map[string]string `json:"data"`
}

type secret struct {
	typeMeta
	Metadata   objectMeta        `json:"metadata"`
	Type       string            `json:"type"`
	StringData map[string]string `json:"stringData,omitempty"`
	Data       map[string]string `json:"data,omitempty"`
}

type deployment struct {
	typeMeta
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		Replicas             *int          `json:"replicas,omitempty"`
		RevisionHistoryLimit *int          `json:"revisionHistoryLimit,omitempty"`
		Selector             labelSelector `json:"selector"`
		Strategy             *struct {
			Type          string `json:"type"`
			RollingUpdate *struct {
				MaxUnavailable any `json:"maxUnavailable"`
				MaxSurge       any `json:"maxSurge"`
			} `json:"rollingUpdate,omitempty"`
		} `json:"strategy,omitempty"`
		Template struct {
			Metadata objectMeta `json:"metadata"`
			Spec     podSpec    `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int  `json:"terminationGracePeriodSeconds,omitempty"`
	AutomountServiceAccountToken  *bool `json:"automountServiceAccountToken,omitempty"`
	SecurityContext               *struct {
		RunAsNonRoot   *bool  `json:"runAsNonRoot,omitempty"`
		RunAsUser      *int64 `json:"runAsUser,omitempty"`
		RunAsGroup     *int64 `json:"runAsGroup,omitempty"`
		FSGroup        *int64 `json:"fsGroup,omitempty"`
		SeccompProfile *struct {
			Type string `json:"type"`
		} `json:"seccompProfile,omitempty"`
	} `json:"securityContext,omitempty"`
	Containers []container `json:"containers"`
	Volumes    []struct {
		Name   string `json:"name"`
		Secret *struct {
			SecretName  string `json:"secretName"`
			DefaultMode *int   `json:"defaultMode,omitempty"`
			Items       []struct {
				Key  string `json:"key"`
				Path string `json:"path"`
			} `json:"items,omitempty"`
		} `json:"secret,omitempty"`
	} `json:"volumes,omitempty"`
}

type container struct {
	Name            string          `json:"name"`
	Image           string          `json:"image"`
	ImagePullPolicy string          `json:"imagePullPolicy,omitempty"`
	Command         []string        `json:"command,omitempty"`
	Args            []string        `json:"args,omitempty"`
	Ports           []containerPort `json:"ports,omitempty"`
	EnvFrom         []struct {
		ConfigMapRef *nameRef `json:"configMapRef,omitempty"`
		SecretRef    *nameRef `json:"secretRef,omitempty"`
	} `json:"envFrom,omitempty"`
	Env       []envVar `json:"env,omitempty"`
	Resources struct {
		Requests map[string]string `json:"requests,omitempty"`
		Limits   map[string]string `json:"limits,omitempty"`
	} `json:"resources"`
	LivenessProbe  *probe `json:"livenessProbe,omitempty"`
	ReadinessProbe *probe `json:"readinessProbe,omitempty"`
	StartupProbe   *probe `json:"startupProbe,omitempty"`
	Lifecycle      *struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `json:"seconds"`
			} `json:"sleep,omitempty"`
		} `json:"preStop,omitempty"`
	} `json:"lifecycle,omitempty"`
	VolumeMounts []struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
		ReadOnly  bool   `json:"readOnly,omitempty"`
	} `json:"volumeMounts,omitempty"`
	SecurityContext *struct {
		AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation,omitempty"`
		ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem,omitempty"`
		Capabilities             *struct {
			Drop []string `json:"drop,omitempty"`
		} `json:"capabilities,omitempty"`
	} `json:"securityContext,omitempty"`
}

type containerPort struct {
	Name          string `json:"name"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol,omitempty"`
}

type nameRef struct {
	Name string `json:"name"`
}

type envVar struct {
	Name      string `json:"name"`
	Value     string `json:"value,omitempty"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name string `json:"name"`
			Key  string `json:"key"`
		} `json:"secretKeyRef,omitempty"`
		FieldRef *struct {
			FieldPath string `json:"fieldPath"`
		} `json:"fieldRef,omitempty"`
	} `json:"valueFrom,omitempty"`
}

type probe struct {
	HTTPGet *struct {
		Path string `json:"path"`
		Port any    `json:"port"` // name or number
	} `json:"httpGet"`
	InitialDelaySeconds int `json:"initialDelaySeconds,omitempty"`
	PeriodSeconds       int `json:"periodSeconds,omitempty"`
	TimeoutSeconds      int `json:"timeoutSeconds,omitempty"`
	FailureThreshold    int `json:"failureThreshold,omitempty"`
}

type service struct {
	typeMeta
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		Type     string            `json:"type"`
		Selector map[string]string `json:"selector"`
		Ports    []struct {
			Name       string `json:"name"`
			Port       int    `json:"port"`
			TargetPort any    `json:"targetPort"`
			Protocol   string `json:"protocol,omitempty"`
		} `json:"ports"`
	} `json:"spec"`
}

type podDisruptionBudget struct {
	typeMeta
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		MaxUnavailable any           `json:"maxUnavailable,omitempty"`
		MinAvailable   any           `json:"minAvailable,omitempty"`
		Selector       labelSelector `json:"selector"`
	} `json:"spec"`
}

type serviceMonitor struct {
	typeMeta
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		Selector  labelSelector `json:"selector"`
		Endpoints []struct {
			Port          string `json:"port"`
			Path          string `json:"path"`
			Interval      string `json:"interval,omitempty"`
			ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

type scaledObject struct {
	typeMeta
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		ScaleTargetRef struct {
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount *int `json:"minReplicaCount,omitempty"`
		MaxReplicaCount *int `json:"maxReplicaCount,omitempty"`
		PollingInterval *int `json:"pollingInterval,omitempty"`
		CooldownPeriod  *int `json:"cooldownPeriod,omitempty"`
		Advanced        *struct {
			HorizontalPodAutoscalerConfig *struct {
				Behavior *struct {
					ScaleDown *struct {
						StabilizationWindowSeconds *int `json:"stabilizationWindowSeconds,omitempty"`
						Policies                   []struct {
							Type          string `json:"type"`
							Value         int    `json:"value"`
							PeriodSeconds int    `json:"periodSeconds"`
						} `json:"policies,omitempty"`
					} `json:"scaleDown,omitempty"`
				} `json:"behavior,omitempty"`
			} `json:"horizontalPodAutoscalerConfig,omitempty"`
		} `json:"advanced,omitempty"`
		Triggers []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

type kustomization struct {
	typeMeta
	Namespace string `json:"namespace"`
	Labels    []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels,omitempty"`
	Resources []string `json:"resources"`
}

// compose.yaml, the subset of the Compose specification deploy/ uses.
type composeFile struct {
	Name     string                    `json:"name"`
	Services map[string]composeService `json:"services"`
	Volumes  map[string]struct{}       `json:"volumes,omitempty"`
}

type composeService struct {
	Image string `json:"image,omitempty"`
	Build *struct {
		Context    string `json:"context"`
		Dockerfile string `json:"dockerfile"`
	} `json:"build,omitempty"`
	Command     []string          `json:"command,omitempty"`
	Environment map[string]string `json:"environment,omitempty"`
	Ports       []string          `json:"ports,omitempty"`
	Volumes     []string          `json:"volumes,omitempty"`
	Deploy      *struct {
		Replicas int `json:"replicas"`
	} `json:"deploy,omitempty"`
	StopGracePeriod string `json:"stop_grace_period,omitempty"`
	Healthcheck     *struct {
		Test     []string `json:"test"`
		Interval string   `json:"interval,omitempty"`
		Timeout  string   `json:"timeout,omitempty"`
		Retries  int      `json:"retries,omitempty"`
	} `json:"healthcheck,omitempty"`
	DependsOn map[string]struct {
		Condition string `json:"condition"`
	} `json:"depends_on,omitempty"`
}

// prometheus.yml, the subset used.
type prometheusConfig struct {
	Global struct {
		ScrapeInterval     string `json:"scrape_interval"`
		EvaluationInterval string `json:"evaluation_interval"`
	} `json:"global"`
	ScrapeConfigs []struct {
		JobName      string `json:"job_name"`
		MetricsPath  string `json:"metrics_path"`
		DNSSDConfigs []struct {
			Names []string `json:"names"`
			Type  string   `json:"type"`
			Port  int      `json:"port"`
		} `json:"dns_sd_configs,omitempty"`
		StaticConfigs []struct {
			Targets []string `json:"targets"`
		} `json:"static_configs,omitempty"`
	} `json:"scrape_configs"`
}

type networkPolicyPeer struct {
	NamespaceSelector *labelSelector `json:"namespaceSelector,omitempty"`
	PodSelector       *labelSelector `json:"podSelector,omitempty"`
	IPBlock           *struct {
		CIDR   string   `json:"cidr"`
		Except []string `json:"except,omitempty"`
	} `json:"ipBlock,omitempty"`
}

type networkPolicyPort struct {
	Port     any    `json:"port"` // number or a named container port
	Protocol string `json:"protocol,omitempty"`
}

type networkPolicy struct {
	typeMeta
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		PodSelector labelSelector `json:"podSelector"`
		PolicyTypes []string      `json:"policyTypes"`
		Ingress     []struct {
			From  []networkPolicyPeer `json:"from,omitempty"`
			Ports []networkPolicyPort `json:"ports,omitempty"`
		} `json:"ingress,omitempty"`
		Egress []struct {
			To    []networkPolicyPeer `json:"to,omitempty"`
			Ports []networkPolicyPort `json:"ports,omitempty"`
		} `json:"egress,omitempty"`
	} `json:"spec"`
}
