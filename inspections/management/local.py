"""Where `make run` (scripts/run-local.sh) serves, for the commands that tell a person where to go."""

LOCAL_URL = "http://127.0.0.1:8000"
