"""Step 3: CA (once per deployment) + server key and certificate, uploaded as an IAM server certificate.

The CA and keys live in the local vault (sealed); the certificate's SAN is the deployment's stable DNS
name, so clients verify the server with libpq `hostaddr` + verify-full whatever IP the instance gets.
"""
from __future__ import annotations

from eucadb.properties.registry import WORKER
from eucadb.workflow import pki
from eucadb.workflow.engine import StepContext
from eucadb.workflow.steps.base import BaseStep

CA_KEY, CA_CERT, SERVER_KEY, SERVER_CERT = "ca_key", "ca_cert", "server_key", "server_cert"


def ensure_key_material(ctx: StepContext, vault) -> dict[str, str]:
    """CA and server certificate from the vault, created (or renewed at 2/3 of lifetime) as needed."""
    days = ctx.properties[WORKER + "expiration_days"]
    names = BaseStep.names(ctx)
    ca_key, ca_cert, server_cert = vault.get(CA_KEY), vault.get(CA_CERT), vault.get(SERVER_CERT)
    fresh: dict[str, str] = {}
    if ca_cert is None or pki.needs_renewal(ca_cert):
        ca_key, ca_cert = pki.create_ca(f"eucadb {ctx.deployment} CA", days=max(days * 3, 3650))
        fresh = {CA_KEY: ca_key, CA_CERT: ca_cert}
    if fresh or not server_cert or pki.needs_renewal(server_cert):
        key, server_cert = pki.issue_server_certificate(ca_key, ca_cert, names.dns_name, days=days)
        # one write: a crash must never leave a certificate of the old CA beside the new CA, or a
        # key beside another key's certificate (TLS verification would then fail for good)
        vault.put_many({**fresh, SERVER_KEY: key, SERVER_CERT: server_cert})
    return {CA_CERT: ca_cert, SERVER_CERT: server_cert, SERVER_KEY: vault.get(SERVER_KEY)}


class ServerCertificateStep(BaseStep):
    name = "server_certificate"
    title = "server certificate"

    def _uploaded(self, ctx: StepContext) -> dict | None:
        found = self.call_absent_ok(ctx, "iam", "get_server_certificate",
                                    ServerCertificateName=self.names(ctx).server_certificate)
        return found["ServerCertificate"] if found else None

    def adopt(self, ctx: StepContext) -> dict | None:
        material = ensure_key_material(ctx, self.vault(ctx))
        uploaded = self._uploaded(ctx)
        if uploaded and uploaded["CertificateBody"].strip() == material[SERVER_CERT].strip():
            return {"server_certificate_arn": uploaded["ServerCertificateMetadata"]["Arn"]}
        return None

    def apply(self, ctx: StepContext) -> dict:
        material = ensure_key_material(ctx, self.vault(ctx))
        name = self.names(ctx).server_certificate
        if self._uploaded(ctx):  # an older certificate (renewal): replace it
            self.call(ctx, "iam", "delete_server_certificate", ServerCertificateName=name)
        meta = self.call(ctx, "iam", "upload_server_certificate", ServerCertificateName=name,
                         Path=f"/eucadb/{ctx.deployment}/", CertificateBody=material[SERVER_CERT],
                         PrivateKey=material[SERVER_KEY], CertificateChain=material[CA_CERT],
                         Tags=self.names(ctx).tags())["ServerCertificateMetadata"]
        return {"server_certificate_arn": meta["Arn"]}

    def rollback(self, ctx: StepContext) -> None:
        self.call_absent_ok(ctx, "iam", "delete_server_certificate",
                            ServerCertificateName=self.names(ctx).server_certificate)
