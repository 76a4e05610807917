// Package greeting stands for a company's private Go module.
package greeting

// Hello greets someone by name.
func Hello(name string) string {
	return "Hello " + name + ", from a private module!"
}
