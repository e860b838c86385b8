"""`openkms csr`: ask a running server for a certificate signing request and write it to a file.

An API caller like any SDK: it signs a GenerateCertificateSigningRequest call (an OpenKMS extension
action) with an access key and never sees key material. The CSR is written only after the server
answered with one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from openkms.cli.rpc import RpcError, call

# The algorithm used when --algorithm is not given, by the key's spec family.
_DEFAULT_ALGORITHM = {"RSA": "RSA_PKCS1_SHA_256", "EC": "ECDSA_SHA_256"}


def csr(
    key_id: Annotated[str, typer.Option("--key-id", help="Key id or ARN (a SIGN/VERIFY asymmetric key).")],
    key_version_id: Annotated[str, typer.Option("--key-version-id", help="The key version to certify.")],
    common_name: Annotated[str, typer.Option("--common-name", help="Subject CN.")],
    out: Annotated[Path, typer.Option("--out", help="File to write the PEM CSR to.")],
    algorithm: Annotated[
        str | None,
        typer.Option(
            help="RSA_PKCS1_SHA_256 or RSA_PSS_SHA_256 (RSA keys), ECDSA_SHA_256 (EC keys); "
            "default by key spec."
        ),
    ] = None,
    organization: Annotated[str | None, typer.Option(help="Subject O, exactly as registered.")] = None,
    organizational_unit: Annotated[str | None, typer.Option(help="Subject OU.")] = None,
    province: Annotated[str | None, typer.Option(help="Subject ST.")] = None,
    locality: Annotated[str | None, typer.Option(help="Subject L.")] = None,
    country: Annotated[str | None, typer.Option(help="Subject C, ISO 3166-1 alpha-2 (e.g. CN).")] = None,
    email: Annotated[str | None, typer.Option(help="Subject emailAddress.")] = None,
    endpoint: Annotated[
        str, typer.Option(envvar="OPENKMS_ENDPOINT", help="Server URL.")
    ] = "http://127.0.0.1:9600",
    region: Annotated[str | None, typer.Option(envvar="OPENKMS_REGION", help="RegionId to send.")] = None,
    access_key_id: Annotated[str, typer.Option(envvar="OPENKMS_ACCESS_KEY_ID", help="Access key id.")] = "",
) -> None:
    """Generate a CSR for an asymmetric key version on a running server and write it to --out.

    The access key secret is read from OPENKMS_ACCESS_KEY_SECRET only: on a command line it would be
    visible to other users of the machine in the process list.
    """
    access_key_secret = os.environ.get("OPENKMS_ACCESS_KEY_SECRET", "")
    if not access_key_id or not access_key_secret:
        typer.echo(
            "an access key is required: set OPENKMS_ACCESS_KEY_ID and OPENKMS_ACCESS_KEY_SECRET", err=True
        )
        raise typer.Exit(2)
    common = {"RegionId": region} if region else {}
    try:
        if algorithm is None:
            metadata = call(
                endpoint, "DescribeKey", {**common, "KeyId": key_id}, access_key_id, access_key_secret
            )
            described = metadata.get("KeyMetadata")
            spec = str(described.get("KeySpec", "")) if isinstance(described, dict) else ""
            algorithm = _DEFAULT_ALGORITHM.get(spec.split("_", 1)[0], "RSA_PKCS1_SHA_256")
        subject = {
            "CommonName": common_name,
            "Organization": organization,
            "OrganizationalUnit": organizational_unit,
            "Province": province,
            "Locality": locality,
            "Country": country,
            "Email": email,
        }
        params = {
            **common,
            "KeyId": key_id,
            "KeyVersionId": key_version_id,
            "Algorithm": algorithm,
            **{name: value for name, value in subject.items() if value is not None},
        }
        answer = call(endpoint, "GenerateCertificateSigningRequest", params, access_key_id, access_key_secret)
    except RpcError as exc:
        typer.echo(f"refused: {exc.code} ({exc.status}): {exc.message}", err=True)
        raise typer.Exit(1) from None
    pem = answer.get("Csr")
    if not isinstance(pem, str):
        typer.echo("the server's answer carries no Csr", err=True)
        raise typer.Exit(1)
    out.write_text(pem)
    typer.echo(f"wrote the CSR for {answer.get('KeyId')} version {answer.get('KeyVersionId')} to {out}")
