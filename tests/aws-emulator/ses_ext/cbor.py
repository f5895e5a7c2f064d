"""CloudWatch's Smithy RPC v2 CBOR protocol in front of moto.

The Rust SDK (aws-sdk-cloudwatch 1.1xx) speaks only rpc-v2-cbor:
`POST /service/GraniteServiceVersion20100801/operation/{Operation}` with a
CBOR body. moto 5.2.5 answers CloudWatch over the query and JSON protocols
only, so this middleware decodes the CBOR request with botocore's parser,
re-encodes it as the awsJson1_0 request boto3 would send, runs it through
moto (counting and faults included), and encodes moto's answer back to CBOR
with botocore's serializer, both guided by CloudWatch's service model.
"""

from __future__ import annotations

import io
from typing import Any, Callable

import botocore.session
from botocore.parsers import create_parser
from botocore.serialize import RpcV2CBORSerializer, create_serializer

PREFIX = "/service/GraniteServiceVersion20100801/operation/"


class CloudWatchCbor:
    def __init__(self, app: Callable) -> None:
        self.app = app
        self.model = botocore.session.get_session().get_service_model("cloudwatch")

    def __call__(self, environ: dict[str, Any], start_response: Callable) -> Any:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX) or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        operation = self.model.operation_model(path[len(PREFIX):])
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        params: dict[str, Any] = {}
        if raw and operation.input_shape is not None:
            params = create_parser("smithy-rpc-v2-cbor").parse(
                {"body": raw, "headers": {}, "status_code": 200}, operation.input_shape
            )
            params.pop("ResponseMetadata", None)
        request = create_serializer("json").serialize_to_request(params, operation)
        body = request["body"] if isinstance(request["body"], bytes) else request["body"].encode()

        inner = dict(environ)
        inner.update({
            "PATH_INFO": "/",
            "wsgi.input": io.BytesIO(body),
            "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": request["headers"]["Content-Type"],
            "HTTP_X_AMZ_TARGET": request["headers"]["X-Amz-Target"],
        })
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list, exc_info: Any = None) -> Callable:
            captured["status"], captured["headers"] = status, headers
            return lambda _data: None

        chunks = self.app(inner, capture)
        try:
            answer = b"".join(chunks)
        finally:
            if hasattr(chunks, "close"):
                chunks.close()
        status = int(captured["status"].split()[0])
        headers = {k.lower(): v for k, v in captured["headers"]}
        parsed = create_parser("json").parse(
            {"body": answer, "headers": headers, "status_code": status}, operation.output_shape
        )
        out_headers = [("Content-Type", "application/cbor"), ("smithy-protocol", "rpc-v2-cbor")]
        if "x-amzn-requestid" in headers:
            out_headers.append(("x-amzn-RequestId", headers["x-amzn-requestid"]))
        serializer = RpcV2CBORSerializer()
        encoded = bytearray()
        if status >= 300:
            error = parsed.get("Error", {})
            code = error.get("Code") or "InternalFailure"
            # awsQueryCompatible: the SDK takes the query error code from this header.
            fault = "Receiver" if status >= 500 else "Sender"
            out_headers.append(("x-amzn-query-error", headers.get("x-amzn-query-error", f"{code};{fault}")))
            body = {"__type": f"com.amazonaws.cloudwatch#{code}", "message": error.get("Message", "")}
            serializer._serialize_type_map(encoded, body, _STRING_MAP, None)
        elif operation.output_shape is not None:
            parsed.pop("ResponseMetadata", None)
            serializer._serialize_data_item(encoded, parsed, operation.output_shape)
        out_headers.append(("Content-Length", str(len(encoded))))
        start_response(captured["status"], out_headers)
        return [bytes(encoded)]


class _StringMap:
    """Just enough of a botocore map shape (string -> string) for error bodies."""

    class _String:
        type_name = "string"

    type_name = "map"
    key = _String()
    value = _String()


_STRING_MAP = _StringMap()
