"""The backup bucket step — where the instance archives its WAL and writes base backups.

One bucket per deployment, `eucadb-<deployment>-backups`, found again by name. S3 tagging is not
something every AWS-compatible store has (the embedded one has none), so ownership is a marker
object `<prefix>/eucadb-deployment` holding the deployment id: a bucket of that name without our
marker is someone else's and is never taken over.

Teardown keeps the bucket and its backups (they are the way back after a mistaken teardown), like
the data volume; `--delete-volume` — "delete the data" — deletes the deployment's prefix and the
bucket too. A first launch that fails is rolled back without deleting a bucket it did not create.
"""
from __future__ import annotations

from botocore.exceptions import ClientError

from eucadb.cloud.client import error_code
from eucadb.errors import WorkflowError
from eucadb.workflow.engine import StepContext
from eucadb.workflow.steps.base import BaseStep

MARKER = "eucadb-deployment"
ABSENT = frozenset({"404", "NoSuchBucket", "NoSuchKey"})
DELETE_BATCH = 1000                 # DeleteObjects' limit per request


class BackupBucketStep(BaseStep):
    name = "backup_bucket"
    title = "backup bucket"

    def _marker_key(self, ctx: StepContext) -> str:
        return f"{self.names(ctx).backup_prefix}/{MARKER}"

    def _owner(self, ctx: StepContext, bucket: str) -> str | None:
        """The deployment id in the bucket's marker ('' for a bucket without one), None: no bucket."""
        try:
            self.call(ctx, "s3", "head_bucket", Bucket=bucket)
        except ClientError as exc:
            if error_code(exc) in ABSENT:
                return None
            raise
        try:
            body = self.call(ctx, "s3", "get_object", Bucket=bucket, Key=self._marker_key(ctx))["Body"]
            return body.read().decode(errors="replace").strip()
        except ClientError as exc:
            if error_code(exc) in ABSENT:
                return ""
            raise

    def _result(self, ctx: StepContext, created: bool = False) -> dict:
        names = self.names(ctx)
        return {"backup_bucket": names.backup_bucket, "backup_prefix": names.backup_prefix,
                **({"backup_bucket_created": True} if created else {})}

    def adopt(self, ctx: StepContext) -> dict | None:
        return self._result(ctx) if self._owner(ctx, self.names(ctx).backup_bucket) == ctx.deployment \
            else None

    def apply(self, ctx: StepContext) -> dict:
        bucket = self.names(ctx).backup_bucket
        owner = self._owner(ctx, bucket)
        if owner not in (None, "", ctx.deployment):
            raise WorkflowError(f"bucket {bucket} belongs to eucadb deployment {owner}, not {ctx.deployment}")
        if owner == "" and self._has_objects(ctx, bucket, ""):
            raise WorkflowError(f"a bucket named {bucket} already exists and is not this deployment's "
                                f"(no {self._marker_key(ctx)} object); delete or rename it")
        if owner is None:
            region = self.clients(ctx).config["cloud.region"]
            extra = {} if region == "us-east-1" else {
                "CreateBucketConfiguration": {"LocationConstraint": region}}
            try:
                self.call(ctx, "s3", "create_bucket", Bucket=bucket, **extra)
            except ClientError as exc:
                if error_code(exc) != "BucketAlreadyOwnedByYou":
                    raise WorkflowError(f"cannot create bucket {bucket}: {exc}") from None
        self.call(ctx, "s3", "put_object", Bucket=bucket, Key=self._marker_key(ctx),
                  Body=ctx.deployment.encode())
        return self._result(ctx, created=owner is None)

    def _has_objects(self, ctx: StepContext, bucket: str, prefix: str) -> bool:
        return bool(self.call(ctx, "s3", "list_objects_v2", Bucket=bucket, Prefix=prefix,
                              MaxKeys=1).get("KeyCount"))

    def rollback(self, ctx: StepContext) -> None:
        delete = ctx.options.get("delete_volume") or (
            ctx.rolling_back and ctx.resources.get("backup_bucket_created"))
        bucket = self.names(ctx).backup_bucket
        if not delete or self._owner(ctx, bucket) != ctx.deployment:
            return
        prefix = self.names(ctx).backup_prefix + "/"
        while True:
            page = self.call(ctx, "s3", "list_objects_v2", Bucket=bucket, Prefix=prefix,
                             MaxKeys=DELETE_BATCH).get("Contents", [])
            if not page:
                break
            self.call(ctx, "s3", "delete_objects", Bucket=bucket,
                      Delete={"Objects": [{"Key": o["Key"]} for o in page], "Quiet": True})
        if not self._has_objects(ctx, bucket, ""):   # someone else's keys in it: leave the bucket
            self.call_absent_ok(ctx, "s3", "delete_bucket", Bucket=bucket)
