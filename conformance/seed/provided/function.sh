# The function: its argument is the event, its stdout the result; stderr goes to the logs.
handler() {
  echo "got: $1" >&2
  echo "{\"echoed\": $1}"
}
