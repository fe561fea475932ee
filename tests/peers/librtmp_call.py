#!/usr/bin/env python3
"""A third-party RTMP client (python-librtmp, on Debian's librtmp) calling sono's
phone API: connects, invokes a method with arguments, prints the answer as JSON.

usage: librtmp_call.py rtmp://127.0.0.1:PORT/APP METHOD [ARG ...]
An answer of _result prints {"result": ...}; an _error prints {"error": ...}.
"""
import json
import sys

import librtmp


def main() -> int:
    url, method, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    conn = librtmp.RTMP(url, live=True, timeout=5)
    conn.connect()
    errors = []
    # python-librtmp resolves calls on _result only; an _error reaches handlers.
    conn.register_invoke_handler("_error", lambda *info: errors.append(info))
    call = conn.call(method, *args)
    result = conn.process_packets(
        transaction_id=call.transaction_id, invoked_method="_error", timeout=5
    )
    if errors:
        info = errors[0][0] if errors[0] else None
        print(json.dumps({"error": info}))
    else:
        print(json.dumps({"result": result}))
    conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
