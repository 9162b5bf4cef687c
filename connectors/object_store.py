"""Object-store locations (`s3://bucket/prefix`), listed and downloaded through boto3.

`connectors.sources` reads a prefix like a folder (`<prefix>/<athlete>/...` belongs to that athlete,
objects directly under it to the default athlete; a URL naming one object is that object) with the
listing and downloads of this module.  Objects are listed, then streamed one by one into
the import's staging folder under the file-size limit (an object over it is not downloaded: its
first MiB is kept for the quarantine copy), and flow on like local files.  Endpoint, region and
credentials are boto3's own: `AWS_ENDPOINT_URL`, `AWS_REGION`/`AWS_DEFAULT_REGION`,
`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, `AWS_PROFILE`, instance roles.
A store that cannot be listed or read (no such bucket, access denied, no network) raises
`ObjectStoreError`, a message naming the bucket, before anything is imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from retrostride.connectors.archives import CHUNK, QUARANTINE_SAMPLE_BYTES, Refused, Staging

SCHEME = "s3://"
CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 10, 60


#: A place to import from: a local path, or an `s3://bucket/prefix` URL (kept a string: a Path would
#: fold its "//").
Location = Path | str


def is_object_url(value: object) -> bool:
    """Whether a path argument names an object-store location rather than a local path."""
    return isinstance(value, str) and value.lower().startswith(SCHEME)


def as_location(value: str | Path) -> Location:
    """A path argument as a Location: an `s3://` URL stays as it is, anything else is a Path."""
    return value if is_object_url(value) else Path(value)


class ObjectStoreError(Exception):
    """The store cannot be listed or read; the message names the bucket and says why, in a sentence."""


@dataclass(frozen=True)
class ObjectUrl:
    """`s3://bucket/key`: a bucket and a key or prefix inside it ("" for the whole bucket)."""

    bucket: str
    key: str

    @classmethod
    def parse(cls, url: str) -> ObjectUrl:
        if not is_object_url(url):
            raise ValueError(f"not an s3:// URL: {url!r}")
        bucket, _, key = url[len(SCHEME) :].partition("/")
        if not bucket:
            raise ObjectStoreError(f"{url}: no bucket named (expected s3://bucket/prefix)")
        return cls(bucket, key)

    def child(self, key: str) -> str:
        return f"{SCHEME}{self.bucket}/{key}"

    def __str__(self) -> str:
        return self.child(self.key)


@dataclass(frozen=True)
class StoredObject:
    """One object as listed: its name relative to the listed prefix, full key, size, ETag and age."""

    name: str
    key: str
    size: int
    etag: str
    modified_at: datetime | None


def client():
    """A boto3 S3 client configured the standard AWS way (env vars, profiles, roles)."""
    import boto3
    from botocore.config import Config

    # retries: boto3's (AWS_MAX_ATTEMPTS, AWS_RETRY_MODE); a store that does not answer fails within a minute
    return boto3.client("s3", config=Config(connect_timeout=CONNECT_TIMEOUT_S, read_timeout=READ_TIMEOUT_S))


class ObjectStore:
    """One bucket's objects, listed and downloaded with clear errors."""

    def __init__(self, s3=None):
        self._s3 = s3

    @property
    def s3(self):
        if self._s3 is None:
            try:
                self._s3 = client()
            except Exception as error:  # a bad region or endpoint setting
                raise ObjectStoreError(f"cannot set up the S3 client: {_describe(error)}") from None
        return self._s3

    def list(self, url: ObjectUrl) -> list[StoredObject]:
        """Objects under `url` (a prefix read as a folder, or one object), names relative to it,
        folder markers (keys ending in "/") left out, in key order."""
        prefix = url.key
        folder = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        found = []
        try:
            if prefix and not prefix.endswith("/"):
                single = self._page(url.bucket, prefix, limit=1)
                if single and single[0]["Key"] == prefix:  # the URL names one object
                    item = single[0]
                    return [_stored(PurePosixPath(prefix).name, item)]
            for item in self._objects(url.bucket, folder):
                name = item["Key"][len(folder) :]
                if name and not name.endswith("/"):
                    found.append(_stored(name, item))
        except ObjectStoreError:
            raise
        except Exception as error:
            raise ObjectStoreError(f"cannot list {url}: {_describe(error, url.bucket)}") from None
        return found

    def _page(self, bucket: str, prefix: str, limit: int) -> list[dict]:
        return self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=limit).get("Contents", [])

    def _objects(self, bucket: str, prefix: str):
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            yield from page.get("Contents", [])

    def download(self, bucket: str, item: StoredObject, staging: Staging, max_bytes: int) -> Path:
        """Stream one object into a fresh staging file, never past `max_bytes`.

        Refused (with the first MiB staged, for the quarantine copy) when the object is larger than
        the limit or cannot be read (deleted since listing, access denied to this key); a store that
        stops answering raises ObjectStoreError.
        """
        target = staging.new_path(item.name)
        url = f"{SCHEME}{bucket}/{item.key}"
        if item.size > max_bytes:
            self._fetch(bucket, item.key, target, QUARANTINE_SAMPLE_BYTES, url, sample=True)
            raise Refused(
                f"refused: file is {item.size} bytes, over the {max_bytes}-byte limit "
                "(max_file_mb in retrostride.toml; the object was not downloaded)",
                target,
            )
        written = self._fetch(bucket, item.key, target, max_bytes + 1, url)
        if written > max_bytes:  # it grew since it was listed
            os.truncate(target, QUARANTINE_SAMPLE_BYTES)
            raise Refused(f"refused: file is over the {max_bytes}-byte limit (max_file_mb in retrostride.toml)", target)
        return target

    def _fetch(self, bucket: str, key: str, target: Path, limit: int, url: str, sample: bool = False) -> int:
        """Copy at most `limit` bytes of the object to `target`; how many were written."""
        from botocore.exceptions import ClientError

        written = 0
        try:
            extra = {"Range": f"bytes=0-{limit - 1}"} if sample else {}
            body = self.s3.get_object(Bucket=bucket, Key=key, **extra)["Body"]
            with open(target, "wb") as out:
                while written < limit and (block := body.read(min(CHUNK, limit - written))):
                    out.write(block)
                    written += len(block)
            body.close()
        except ClientError as error:
            if _code(error) in ("NoSuchBucket",):
                raise ObjectStoreError(f"cannot read {url}: {_describe(error, bucket)}") from None
            raise Refused(
                f"could not download the object: {_describe(error, bucket)}", target if target.exists() else None
            ) from None
        except Exception as error:
            raise ObjectStoreError(f"cannot read {url}: {_describe(error, bucket)}") from None
        return written


def _stored(name: str, item: dict) -> StoredObject:
    modified = item.get("LastModified")
    if modified is not None and modified.tzinfo is None:
        modified = modified.replace(tzinfo=UTC)
    return StoredObject(name, item["Key"], int(item.get("Size", 0)), str(item.get("ETag", "")).strip('"'), modified)


def _code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _describe(error: Exception, bucket: str | None = None) -> str:
    """A sentence for what went wrong, naming the bucket."""
    from botocore import exceptions as boto

    where = f"bucket '{bucket}'" if bucket else "the store"
    code = _code(error)
    if code == "NoSuchBucket":
        return f"there is no {where}"
    if code in ("AccessDenied", "403", "AllAccessDisabled"):
        return f"access to {where} is denied (check the AWS credentials and the bucket policy)"
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken"):
        return f"the AWS credentials were refused for {where} ({code})"
    if code in ("NoSuchKey", "404"):
        return f"the object is no longer in {where}"
    if isinstance(error, boto.NoCredentialsError):
        return f"no AWS credentials found for {where} (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
    if isinstance(error, (boto.EndpointConnectionError, boto.ConnectTimeoutError, boto.ReadTimeoutError)):
        return f"cannot reach the store of {where}: {error}"
    if isinstance(error, boto.ClientError):
        message = (getattr(error, "response", None) or {}).get("Error", {}).get("Message", "")
        return f"{where} answered {code or 'an error'}" + (f": {message}" if message else "")
    return f"{where}: {type(error).__name__}: {error}"
