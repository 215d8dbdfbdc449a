"""The paths of the server-sent-event endpoints (beyond etcd's API).

The lean gateway must know them before the FastAPI app that serves them is loaded: they answer their
own CORS preflight instead of etcd's blanket one.
"""

WATCH_SSE_PATH = "/watch/sse"
ELECTION_SSE_PATH = "/election/sse"
