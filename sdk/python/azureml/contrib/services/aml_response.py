"""AMLResponse(message, status_code, response_headers={}, json_str=False):
an answer of run()'s own choosing, as on Azure ML's inference server. With
json_str the message is sent as JSON; otherwise as it is (text or bytes), as
text/html unless response_headers name a Content-Type. A header value with
commas is sent as one header per part, as the peer does."""

import json


class AMLResponse:
    def __init__(self, message, status_code, response_headers=None, json_str=False,
                 run_function_failed=False):
        headers = dict(response_headers or {})
        self.status_code = int(status_code)
        if message is None:
            message, json_str = {}, True
        if json_str:
            self.data = json.dumps(message).encode()
            self.content_type = "application/json"
        else:
            self.data = message.encode() if isinstance(message, str) else bytes(message)
            self.content_type = "text/html; charset=utf-8"
        for k in list(headers):
            if k.lower() == "content-type":
                self.content_type = headers.pop(k)
        self.headers = [("x-ms-run-function-failed", str(bool(run_function_failed)))]
        for name, value in headers.items():
            for v in str(value).split(","):
                self.headers.append((name, v.strip()))

    def get_data(self, as_text=False):
        return self.data.decode("utf-8", "replace") if as_text else self.data
