// A function that needs a private module.
package main

import (
	"context"

	"example.com/private"

	"github.com/aws/aws-lambda-go/lambda"
)

type event struct {
	Name string `json:"name"`
}

func main() {
	lambda.Start(func(ctx context.Context, e event) (string, error) { return greeting.Hello(e.Name), nil })
}
