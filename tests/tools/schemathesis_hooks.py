"""schemathesis hooks for sono's API test (tests/api_schema.rs): the WebRTC
offer is SDP text (`application/sdp`), which schemathesis has no serializer
for; it is sent as the text it is."""

import schemathesis


@schemathesis.serializer("application/sdp")
def sdp_serializer(ctx, value):
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")
