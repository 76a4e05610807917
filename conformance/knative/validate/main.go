// Command validate checks a Knative Service with Knative Serving's own code, as its admission
// webhooks check one that is created: the Service (YAML or JSON) on stdin is decoded strictly
// (an unknown or repeated field is an error), defaulted with SetDefaults, then validated.
//
// It prints {"errors": [...], "warnings": [...]} and exits 1 when there is an error (warnings
// alone exit 0, as the webhook admits them), 2 when it cannot run.
//
// -config-defaults takes the data of a cluster's config-defaults ConfigMap as a JSON object
// (e.g. {"max-revision-timeout-seconds": "960"}); without it, Knative's built-in defaults apply.
//
// Not covered: the webhook's dry run of the pod against the Kubernetes API server
// (knative.dev/serving/pkg/webhook.ValidateService), which needs a cluster.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	authenticationv1 "k8s.io/api/authentication/v1"
	"knative.dev/pkg/apis"
	"sigs.k8s.io/yaml"

	"knative.dev/serving/pkg/apis/config"
	v1 "knative.dev/serving/pkg/apis/serving/v1"
	asconfig "knative.dev/serving/pkg/autoscaler/config"
)

type report struct {
	Errors   []string `json:"errors"`
	Warnings []string `json:"warnings"`
}

func main() {
	defaults := flag.String("config-defaults", "{}", "the config-defaults ConfigMap's data, as a JSON object")
	flag.Parse()
	ctx, err := webhookContext(*defaults)
	if err != nil {
		fail(err)
	}
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	r := check(ctx, input)
	out := json.NewEncoder(os.Stdout)
	out.SetEscapeHTML(false) // Knative's messages say "0 <= 902 <= 600"
	if err := out.Encode(r); err != nil {
		fail(err)
	}
	if len(r.Errors) > 0 {
		os.Exit(1)
	}
}

// webhookContext is the context the webhooks pass to SetDefaults and Validate on a create: the
// configuration their ConfigMap store attaches (apis/config's Defaults, Features and
// Autoscaler), the operation, and the user making the request.
func webhookContext(defaultsJSON string) (context.Context, error) {
	var data map[string]string
	if err := json.Unmarshal([]byte(defaultsJSON), &data); err != nil {
		return nil, fmt.Errorf("-config-defaults must be a JSON object of strings: %w", err)
	}
	defaults, err := config.NewDefaultsConfigFromMap(data)
	if err != nil {
		return nil, fmt.Errorf("-config-defaults: %w", err)
	}
	features, err := config.NewFeaturesConfigFromMap(map[string]string{})
	if err != nil {
		return nil, err
	}
	autoscaler, err := asconfig.NewConfigFromMap(map[string]string{})
	if err != nil {
		return nil, err
	}
	ctx := config.ToContext(context.Background(), &config.Config{
		Defaults:   defaults,
		Features:   features,
		Autoscaler: autoscaler,
	})
	ctx = apis.WithinCreate(ctx)
	return apis.WithUserInfo(ctx, &authenticationv1.UserInfo{Username: "klr-validate"}), nil
}

func check(ctx context.Context, input []byte) report {
	r := report{Errors: []string{}, Warnings: []string{}}
	var service v1.Service
	if err := yaml.UnmarshalStrict(input, &service); err != nil {
		r.Errors = append(r.Errors, "cannot decode the Service: "+err.Error())
		return r
	}
	if service.APIVersion != v1.SchemeGroupVersion.String() || service.Kind != "Service" {
		r.Errors = append(r.Errors, fmt.Sprintf("apiVersion %q, kind %q: expected %s, Service",
			service.APIVersion, service.Kind, v1.SchemeGroupVersion))
		return r
	}
	service.SetDefaults(ctx)
	result := service.Validate(ctx)
	r.Errors = messages(result.Filter(apis.ErrorLevel))
	r.Warnings = messages(result.Filter(apis.WarningLevel))
	return r
}

func messages(fe *apis.FieldError) []string {
	out := []string{}
	if fe == nil {
		return out
	}
	for _, e := range fe.WrappedErrors() {
		out = append(out, e.Error())
	}
	return out
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "validate:", err)
	os.Exit(2)
}
