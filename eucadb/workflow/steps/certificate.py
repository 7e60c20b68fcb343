"""Step 3: CA (once per deployment) + server key and certificate, uploaded as an IAM server certificate.

The CA and keys live in the local vault (sealed); the certificate's SAN is the deployment's stable DNS
name, so clients verify the server with libpq `hostaddr` + verify-full whatever IP the instance gets.
"""
from __future__ import annotations

from eucadb.properties.registry import WORKER
from eucadb.workflow.engine import StepContext
from eucadb.workflow.steps.base import BaseStep
from eucadb.workflow.vault import KeyMaterial


def key_material(ctx: StepContext) -> KeyMaterial:
    """The CA and server pair from the (fenced) vault, created or renewed as the lifetime asks."""
    return ctx.vault.ensure_key_material(ctx.properties[WORKER + "expiration_days"])


class ServerCertificateStep(BaseStep):
    name = "server_certificate"
    title = "server certificate"

    def _uploaded(self, ctx: StepContext) -> dict | None:
        found = self.call_absent_ok(ctx, "iam", "get_server_certificate",
                                    ServerCertificateName=self.names(ctx).server_certificate)
        return found["ServerCertificate"] if found else None

    def adopt(self, ctx: StepContext) -> dict | None:
        material = key_material(ctx)
        uploaded = self._uploaded(ctx)
        if uploaded and uploaded["CertificateBody"].strip() == material.server_cert.strip():
            return {"server_certificate_arn": uploaded["ServerCertificateMetadata"]["Arn"]}
        return None

    def apply(self, ctx: StepContext) -> dict:
        material = key_material(ctx)
        name = self.names(ctx).server_certificate
        if self._uploaded(ctx):  # an older certificate (renewal): replace it
            self.call(ctx, "iam", "delete_server_certificate", ServerCertificateName=name)
        meta = self.call(ctx, "iam", "upload_server_certificate", ServerCertificateName=name,
                         Path=f"/eucadb/{ctx.deployment}/", CertificateBody=material.server_cert,
                         PrivateKey=material.server_key, CertificateChain=material.ca_cert,
                         Tags=self.names(ctx).tags())["ServerCertificateMetadata"]
        return {"server_certificate_arn": meta["Arn"]}

    def rollback(self, ctx: StepContext) -> None:
        self.call_absent_ok(ctx, "iam", "delete_server_certificate",
                            ServerCertificateName=self.names(ctx).server_certificate)
