"""KLR runtime server: serves a Lambda function over HTTP and speaks the Lambda Runtime API to
its bootstrap processes. Standard library only: it runs on the distribution's python3 (3.9+)."""
