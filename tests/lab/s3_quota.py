"""S3 over real HTTP: moto's server, and a quota stand-in in front of it.

moto does not enforce quotas, so `QuotaProxy` forwards every request to moto
and, while a quota is set, answers writes that would take the bucket past it
with the chosen vendor's reply (../shared/notes/backup-facts.md):

    vendor       HTTP code                            message
    minio-quota  400  XMinioAdminBucketQuotaExceeded  Bucket quota exceeded
    minio-full   507  XMinioStorageFull               ...minimum free drive...
    ceph         403  QuotaExceeded
    versity      403  QuotaExceeded                   ...due to quota exceeded.
    garage       403  AccessDenied                    ... quota is reached
    seaweedfs    500  InternalError                   We encountered an internal...
    noobaa       403  ObjectQuotaExceeded
    ozone        403  QUOTA_EXCEEDED
    denied       403  AccessDenied                    Access Denied. (no quota)

Usage is what moto holds in the bucket (incomplete multipart uploads are not
counted). `rejections` counts the replies sent.
"""

from __future__ import annotations

import contextlib
import http.client
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from tests.lab._proc import free_port

ACCESS_KEY = "lab-access-key"
SECRET_KEY = "lab-secret-key-9f3c"


@dataclass(frozen=True)
class QuotaReply:
    status: int
    code: str
    message: str


VENDORS = {
    "minio-quota": QuotaReply(
        400, "XMinioAdminBucketQuotaExceeded", "Bucket quota exceeded"
    ),
    "minio-full": QuotaReply(
        507,
        "XMinioStorageFull",
        "Storage backend has reached its minimum free drive threshold. "
        "Please delete a few objects to proceed.",
    ),
    "ceph": QuotaReply(403, "QuotaExceeded", ""),
    "versity": QuotaReply(
        403, "QuotaExceeded", "Your request was denied due to quota exceeded."
    ),
    "garage": QuotaReply(
        403, "AccessDenied", "Forbidden: Bucket quota is reached (max size)"
    ),
    "seaweedfs": QuotaReply(
        500, "InternalError", "We encountered an internal error, please try again."
    ),
    "noobaa": QuotaReply(403, "ObjectQuotaExceeded", "Object quota exceeded"),
    "ozone": QuotaReply(403, "QUOTA_EXCEEDED", "Quota exceeded"),
    "denied": QuotaReply(403, "AccessDenied", "Access Denied."),
}
QUOTA_VENDORS = [v for v in VENDORS if v not in ("seaweedfs", "denied")]


class MotoS3:
    """moto's S3 on 127.0.0.1, one bucket created."""

    def __init__(self, bucket: str = "backups") -> None:
        self.bucket = bucket
        self.port = free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> MotoS3:
        self._server.start()
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def client(self, url: str | None = None) -> Any:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=url or self.url,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}),
        )

    def usage(self) -> int:
        total = 0
        for page in (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        ):
            total += sum(item["Size"] for item in page.get("Contents", []))
        return total

    def object_keys(self) -> list[str]:
        keys: list[str] = []
        for page in (
            self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        ):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return keys

    def reset(self) -> None:
        client = self.client()
        for key in self.object_keys():
            client.delete_object(Bucket=self.bucket, Key=key)
        for upload in client.list_multipart_uploads(Bucket=self.bucket).get(
            "Uploads", []
        ):
            client.abort_multipart_upload(
                Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )


class QuotaProxy:
    """An HTTP stand-in forwarding to moto, answering quota errors on demand."""

    def __init__(self, moto: MotoS3) -> None:
        self.moto = moto
        self.quota: int | None = None
        self.vendor = "minio-quota"
        self.always: QuotaReply | None = None
        self.rejections = 0
        self.lock = threading.Lock()
        handler = type("Handler", (_ProxyHandler,), {"proxy": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}
        )
        self._thread.daemon = True

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> QuotaProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def set_quota(self, limit: int | None, vendor: str = "minio-quota") -> None:
        with self.lock:
            self.quota, self.vendor, self.rejections = limit, vendor, 0

    def reject(self, incoming: int) -> QuotaReply | None:
        with self.lock:
            if self.always is not None:
                self.rejections += 1
                return self.always
            if self.quota is None:
                return None
            if self.moto.usage() + incoming <= self.quota:
                return None
            self.rejections += 1
            return VENDORS[self.vendor]


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: QuotaProxy

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        if self.command == "PUT" and url.path.strip("/").count("/") >= 1:
            reply = self.proxy.reject(length)
            if reply is not None:
                self._error(reply, url.path)
                return
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.proxy.moto.port, timeout=60
        )
        headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            answer = connection.getresponse()
            payload = answer.read()
            self.send_response_only(answer.status, answer.reason)
            skip = {"transfer-encoding", "connection"}
            if self.command != "HEAD":
                skip.add("content-length")
                self.send_header("Content-Length", str(len(payload)))
            for name, value in answer.getheaders():
                if name.lower() not in skip:
                    self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        finally:
            connection.close()

    def _error(self, reply: QuotaReply, resource: str) -> None:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Error>'
            f"<Code>{reply.code}</Code><Message>{reply.message}</Message>"
            f"<Resource>{resource}</Resource><RequestId>{uuid.uuid4().hex}</RequestId>"
            "</Error>"
        ).encode()
        self.send_response_only(reply.status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward
