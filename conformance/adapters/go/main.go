// A net/http handler behind aws-lambda-go-api-proxy's httpadapter, which turns each event
// mode's event into the *http.Request it hands the handler: what the library made of the
// request. _HANDLER names the adapter for the mode.
package main

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

func echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	cookies := []string{}
	for _, cookie := range r.Cookies() {
		cookies = append(cookies, cookie.Name+"="+cookie.Value)
	}
	var header any
	if values := r.Header.Values("X-Test"); len(values) > 0 {
		header = strings.Join(values, ",")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Adapter", "aws-lambda-go-api-proxy")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{
		"method":      r.Method,
		"path":        r.URL.Path,
		"query":       r.URL.Query(),
		"header":      header,
		"largeHeader": len(r.Header.Get("X-Large")),
		"cookies":     cookies,
		"body":        base64.StdEncoding.EncodeToString(body),
	})
}

func main() {
	handler := http.HandlerFunc(echo)
	switch os.Getenv("_HANDLER") {
	case "rest":
		lambda.Start(httpadapter.New(handler).ProxyWithContext)
	case "http", "url": // a Function URL's event is payload 2.0, as HTTP API's
		lambda.Start(httpadapter.NewV2(handler).ProxyWithContext)
	case "alb":
		lambda.Start(httpadapter.NewALB(handler).ProxyWithContext)
	default:
		panic("unknown _HANDLER " + os.Getenv("_HANDLER"))
	}
}
