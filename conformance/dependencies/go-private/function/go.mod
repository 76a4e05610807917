module example.com/function

go 1.26

require (
	example.com/private v1.0.0
	github.com/aws/aws-lambda-go v1.55.1
)
